"""Several processes on one workspace (README, "Workspace"):

Two processes using one workspace at once (a long `features extract` and a `stats`) either both
work or the second gets a clear "workspace busy" error after a short wait — never a crash or a
corrupt file. A process killed midway leaves a workspace that opens, a job shown as interrupted,
and a cache that kept what was committed.

Every command here runs as a real `workbench` process (`python -m cli.main`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import numpy as np
import pytest
import soundfile

from conftest import copy_workspace
from engine.workspace import Workspace

# Enough short clips that `features extract --extractor mel --workers 1` runs for a few seconds
# (about 3.5 ms a clip here, plus the start of the process).
N_CLIPS = 1200
CLASSES = ("kick", "snare", "hihat_closed")
RATE = 22050
WORKBENCH = [sys.executable, "-m", "cli.main"]
BUSY_TIMEOUT_S = 10


# -- helpers ----------------------------------------------------------------------------------

def environment(busy_timeout: float = BUSY_TIMEOUT_S) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "WORKBENCH_WORKSPACE"}
    env["WORKBENCH_BUSY_TIMEOUT"] = str(busy_timeout)
    return env


def command(ws: Path, *args) -> list[str]:
    return [*WORKBENCH, "--headless", "--workspace", str(ws), *[str(a) for a in args]]


def wb(ws: Path, *args, busy_timeout: float = BUSY_TIMEOUT_S, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command(ws, *args), capture_output=True, text=True, env=environment(busy_timeout),
                          timeout=timeout)


def explain(process) -> str:
    return f"exit {process.returncode}\n--- stdout ---\n{process.stdout}\n--- stderr ---\n{process.stderr}"


def document(process) -> dict:
    """Exactly one JSON document on stdout."""
    try:
        doc = json.loads(process.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(f"stdout is not exactly one JSON document ({error})\n{explain(process)}") from None
    assert doc["exit_code"] == process.returncode, explain(process)
    return doc


def ok(ws: Path, *args, **kwargs) -> dict:
    process = wb(ws, *args, "--json", **kwargs)
    assert process.returncode == 0, explain(process)
    doc = document(process)
    assert doc["ok"] is True
    return doc


class Background:
    """A workbench command running in its own process, its output going to files."""

    def __init__(self, ws: Path, folder: Path, *args) -> None:
        self.stdout_path, self.stderr_path = folder / "bg.stdout", folder / "bg.stderr"
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.process = subprocess.Popen(command(ws, *args), stdout=out, stderr=err, env=environment())

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float = 120) -> subprocess.CompletedProcess:
        code = self.process.wait(timeout=timeout)
        return subprocess.CompletedProcess(self.process.args, code, self.stdout_path.read_text(),
                                           self.stderr_path.read_text())

    def stop(self) -> None:
        if self.running:
            self.process.kill()
        self.process.wait()


def cache_entries(ws: Path) -> int:
    """How many features the workspace's LMDB cache holds (0 before it exists); never blocks a writer."""
    if not (ws / "cache.lmdb" / "data.mdb").exists():
        return 0
    env = lmdb.open(str(ws / "cache.lmdb"), readonly=True, lock=True, subdir=True)
    try:
        return env.stat()["entries"]
    finally:
        env.close()


def wait_for(condition, what: str, timeout: float = 60, still_running: Background | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if still_running is not None and not still_running.running:
            result = still_running.wait()
            pytest.fail(f"the command ended before {what}; raise N_CLIPS?\n{explain(result)}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def jobs(ws: Path) -> list[dict]:
    return ok(ws, "jobs", "list")["jobs"]


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A workspace with N_CLIPS distinct labelled one-shots imported (curated folders)."""
    root = tmp_path_factory.mktemp("concurrency")
    library = root / "library"
    rng = np.random.default_rng(7)
    n = RATE
    envelope = np.exp(-np.arange(n) / RATE / 0.15)
    for index in range(N_CLIPS):
        folder = library / CLASSES[index % len(CLASSES)] / f"pack{index % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        burst = 0.5 * rng.standard_normal(n) * envelope
        soundfile.write(folder / f"hit_{index:04d}.wav", burst.astype(np.float32), RATE, subtype="PCM_16")
    ws = root / "ws"
    doc = ok(ws, "import", library, "--curated")
    assert doc["added"] == N_CLIPS and doc["labelled"] == N_CLIPS
    return ws


@pytest.fixture
def ws(template, tmp_path) -> Path:
    return copy_workspace(template, tmp_path)


# -- (a) a long extract and stats side by side -------------------------------------------------

def test_stats_and_edits_work_while_a_long_extract_runs(ws, tmp_path):
    extract = Background(ws, tmp_path, "features", "extract", "--extractor", "mel", "--workers", 1, "--json")
    try:
        wait_for(lambda: cache_entries(ws) > 0, "the extract wrote its first features", still_running=extract)
        overlapping = 0
        rounds = 0
        while extract.running and rounds < 30:
            rounds += 1
            started_during = extract.running
            # two readers at once, against the writer
            readers = [subprocess.Popen(command(ws, "stats", "--json"), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=environment()) for _ in range(2)]
            for reader in readers:
                out, err = reader.communicate(timeout=60)
                result = subprocess.CompletedProcess(reader.args, reader.returncode, out, err)
                assert result.returncode == 0, explain(result)
                doc = document(result)
                assert doc["ok"] is True and doc["clips"] == N_CLIPS, explain(result)
            # and a writer
            if rounds == 1:
                label = ok(ws, "labels", "add", "hit_0000.wav", "--label", "perc", "--start", 0.0, "--end", 0.2)
                assert label["label"]["label"] == "perc"
            overlapping += started_during  # (batched extraction may end before a round of stats does)
        assert overlapping >= 1, "no stats call started while the extract was running"
        print(f"{overlapping} of {rounds} rounds of stats ran during the extract")

        result = extract.wait()
        assert result.returncode == 0, explain(result)
        report = document(result)
        assert report["ok"] is True and report["extracted"] == N_CLIPS and report["rejected"] == 0
    finally:
        extract.stop()

    stats = ok(ws, "stats")
    assert stats["clips"] == N_CLIPS and stats["label_origins"] == {"import": N_CLIPS, "user": 1}
    (job,) = jobs(ws)
    assert (job["kind"], job["state"], job["progress"]) == ("extract", "completed", 1.0)
    assert job["result"]["extracted"] == N_CLIPS
    assert cache_entries(ws) == N_CLIPS
    assert ok(ws, "cache", "stats")["entries"] == N_CLIPS


# -- (b) a process that holds the database too long --------------------------------------------

HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
con.execute("SELECT count(*) FROM clips").fetchone()
print("holding", flush=True)
sys.stdin.readline()  # until the test lets go (or dies)
con.close()
"""


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_a_held_workspace_gives_a_clear_busy_error(ws, mode, tmp_path):
    Workspace.open(tmp_path / "free_ws")
    started = time.monotonic()
    assert wb(tmp_path / "free_ws", "stats", "--json", busy_timeout=1).returncode == 0
    startup = time.monotonic() - started  # starting the CLI on this machine, now, without any wait
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ws / "workbench.duckdb"), mode],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding", holder.stderr.read()
        started = time.monotonic()
        result = wb(ws, "stats", "--json", busy_timeout=1)
        elapsed = time.monotonic() - started
        assert result.returncode == 1, explain(result)
        doc = document(result)
        assert doc["ok"] is False
        assert doc["error"]["type"] == "WorkspaceBusy" and doc["error"]["busy"] is True
        assert "workspace busy" in doc["error"]["message"]
        assert "WORKBENCH_BUSY_TIMEOUT" in doc["error"]["message"]  # and says what to do
        assert "workspace busy" in result.stderr
        assert "Traceback" not in result.stderr
        # about the 1 s wait beyond a plain start-up (which a loaded CI box can make slow); far below
        # the 15 s default
        assert elapsed - startup < 3.0, f"the busy error took {elapsed:.1f} s (start-up alone {startup:.1f} s)"
        print(f"busy error after {elapsed:.2f} s (start-up {startup:.2f} s)")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0
    stats = ok(ws, "stats", busy_timeout=1)
    assert stats["clips"] == N_CLIPS


# -- (c) a killed extract ----------------------------------------------------------------------

def test_a_killed_extract_leaves_a_usable_workspace_and_keeps_committed_features(ws, tmp_path):
    extract = Background(ws, tmp_path, "features", "extract", "--extractor", "mel", "--workers", 1, "--json")
    try:
        wait_for(lambda: cache_entries(ws) > 0, "the extract wrote its first features", still_running=extract)
        assert extract.running, "the extract ended before it could be killed; raise N_CLIPS"
        os.kill(extract.process.pid, signal.SIGKILL)
        assert extract.wait().returncode == -signal.SIGKILL
    finally:
        extract.stop()
    kept = cache_entries(ws)
    assert 0 < kept < N_CLIPS

    stats = ok(ws, "stats")
    assert stats["clips"] == N_CLIPS
    (job,) = jobs(ws)
    assert job["kind"] == "extract" and job["state"] == "interrupted"
    assert job["pid"] == extract.process.pid and job["finished_at"] is not None and job["error"]
    assert ok(ws, "cache", "stats")["entries"] == kept

    again = ok(ws, "features", "extract", "--extractor", "mel", "--workers", 1)
    assert again["cached"] == kept and again["extracted"] == N_CLIPS - kept
    assert again["targets"] == N_CLIPS and again["rejected"] == 0
    newest, older = jobs(ws)
    assert newest["state"] == "completed" and older["state"] == "interrupted"
    assert cache_entries(ws) == N_CLIPS


# -- Ctrl-C: exit 130, the job cancelled, finished work kept -----------------------------------

def test_ctrl_c_stops_an_extract_and_keeps_finished_work(ws, tmp_path):
    extract = Background(ws, tmp_path, "features", "extract", "--extractor", "mel", "--workers", 1, "--json")
    try:
        wait_for(lambda: cache_entries(ws) > 0, "the extract wrote its first features", still_running=extract)
        assert extract.running, "the extract ended before it could be interrupted; raise N_CLIPS"
        extract.process.send_signal(signal.SIGINT)
        result = extract.wait(timeout=60)
    finally:
        extract.stop()
    assert result.returncode == 130, explain(result)
    doc = document(result)
    assert doc["ok"] is False and doc["cancelled"] is True
    assert 0 < doc["extracted"] < N_CLIPS
    assert cache_entries(ws) == doc["extracted"]  # everything it finished is in the cache
    (job,) = jobs(ws)
    assert job["state"] == "cancelled"
    again = ok(ws, "features", "extract", "--extractor", "mel", "--workers", 1)
    assert again["cached"] == doc["extracted"] and again["extracted"] == N_CLIPS - doc["extracted"]
