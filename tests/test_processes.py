"""Processes end cleanly: pool workers die with their parent, and a signalled foreground `train`
cancels its job and exits with the signal's code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import curated_library

ROOT = Path(__file__).resolve().parents[1]


def _children() -> dict[int, int]:
    """Every live process's parent, by pid (zombies, which are dead, left out)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    return parents


def descendants(pid: int) -> set[int]:
    parents = _children()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return pids & set(_children())


def wait_until(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_pool_workers_end_when_their_parent_is_killed():
    # a map whose work never ends on its own: the workers are busy when the parent dies
    script = ("import time; from engine.jobs.parallel import parallel_map\n"
              "for _ in parallel_map(time.sleep, [600] * 8, workers=2, chunk_size=1, inline_below=1): pass\n")
    process = subprocess.Popen([sys.executable, "-c", script], env=environment(), cwd=ROOT)
    try:
        workers = wait_until(lambda: descendants(process.pid) if len(descendants(process.pid)) >= 2 else None,
                             60, "two pool workers")
        process.kill()
        process.wait()
        wait_until(lambda: not alive(workers), 10, f"workers {sorted(alive(workers))} to end after their parent")
    finally:
        process.kill()
        process.wait()


def test_extract_workers_end_when_features_extract_is_killed(workspace, tmp_path):
    from engine.library.importer import import_folder

    import_folder(workspace, curated_library(tmp_path / "lib", per_pack=10), curated=True, workers=1)
    command = [sys.executable, "-m", "cli.main", "--headless", "--workspace", str(workspace.root),
               "features", "extract", "--extractor", "dsp", "--workers", "2"]
    process = subprocess.Popen(command, env=environment(), cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        workers = wait_until(lambda: descendants(process.pid) or process.poll() is not None, 120,
                             "extract to start its workers")
        if workers is True:
            pytest.fail("features extract ended before its workers were seen; give it more clips")
        process.kill()
        process.wait()
        wait_until(lambda: not alive(workers), 10, f"workers {sorted(alive(workers))} to end after extract")
    finally:
        process.kill()
        process.wait()
