"""A reader that closes the pipe early (`workbench --headless stats | head -2`) ends the command
quietly, as it ends `cat`: exit 141 (128 + SIGPIPE), or 0 when all was written before it left, and
nothing on stderr: no traceback, no "Exception ignored"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.output import ExitCode
from engine.taxonomy import taxonomy_toml
from engine.workspace import Workspace

WORKBENCH = [sys.executable, "-m", "cli.main", "--headless"]


@pytest.fixture
def ws(tmp_path) -> Path:
    """A workspace with a taxonomy of 1,500 labels, whose table is longer than a pipe holds."""
    workspace = Workspace.open(tmp_path / "ws")
    (workspace.taxonomies_dir / "big.toml").write_text(taxonomy_toml("big", [f"label_{n}" for n in range(1500)], 5))
    return workspace.root


def with_reader_gone(*args) -> subprocess.CompletedProcess:
    """Run workbench with stdout a pipe whose reader has left before the first write."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([*WORKBENCH, *args], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [["--help"], ["stats"], ["stats", "--json"], ["taxonomy", "show", "big"]],
                         ids=" ".join)
def test_a_closed_stdout_ends_the_command_quietly(ws, args):
    done = with_reader_gone("--workspace", str(ws), *args)
    assert (done.returncode, done.stderr) == (ExitCode.CUT_OFF, "")


def test_a_reader_that_stops_after_a_few_lines_ends_the_command_quietly(ws):
    process = subprocess.Popen([*WORKBENCH, "--workspace", str(ws), "taxonomy", "show", "big"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = [process.stdout.readline() for _ in range(2)]
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) in (ExitCode.OK, ExitCode.CUT_OFF) and stderr == ""
    assert first[0].startswith("big")


def test_an_error_still_fails_with_its_message_when_stdout_is_closed(tmp_path):
    done = with_reader_gone("--workspace", str(tmp_path / "nothing"), "stats")
    assert done.returncode == ExitCode.FAILED and "no workspace at" in done.stderr
