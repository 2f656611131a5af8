"""Processes end cleanly: pool workers die with their parent, and a signalled foreground `train`
cancels its job and exits with the signal's code."""

from __future__ import annotations

import json
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


# -- a foreground train stopped by a signal ----------------------------------------------------

@pytest.fixture(scope="module")
def drum_workspace(tmp_path_factory) -> Path:
    from engine.library.importer import import_folder
    from engine.workspace import Workspace

    root = tmp_path_factory.mktemp("signals")
    workspace = Workspace.open(root / "ws")
    import_folder(workspace, curated_library(root / "curated", per_pack=4), curated=True, workers=1)
    return workspace.root


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a non-interactive shell starts a job with `&`


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_to_a_foreground_train_cancels_its_job_and_exits_with_its_code(drum_workspace, signum):
    from engine.jobs.log import list_jobs
    from engine.models.registry import list_versions
    from engine.workspace import Workspace

    workspace = Workspace.open(drum_workspace)
    before = {job.job_id for job in list_jobs(workspace)}
    command = [sys.executable, "-m", "cli.main", "--headless", "--workspace", str(drum_workspace), "train",
               "--name", f"long_{signum.name.lower()}", "--model", "mlp", "--epochs", "5000", "--patience", "5000",
               "--device", "cpu", "--min-class-samples", "2", "--split", "clip"]
    process = subprocess.Popen(command, env=environment(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=_ignore_sigint)
    try:
        job = wait_until(lambda: next((job for job in list_jobs(workspace)
                                       if job.job_id not in before and job.state == "training"), None),
                         180, "the training job to train")
        process.send_signal(signum)
        process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 128 + signum
    record = next(j for j in list_jobs(workspace) if j.job_id == job.job_id)
    assert record.state == "cancelled" and "cancelled after" in record.error
    assert list_versions(workspace, job.params["name"]) == []


# -- heartbeats and stale jobs ----------------------------------------------------------------

def _job_elsewhere(workspace, heartbeat_s: float | None):
    """A training job recorded as running on another host, last heard from at `heartbeat_s`."""
    from engine.concepts import JobState
    from engine.jobs.log import new_job_id
    from engine.store import jobs as store

    job_id = new_job_id("train")
    with workspace.db.transaction() as con:
        store.insert_job(con, job_id, "train", JobState.TRAINING, {}, 4242, "a-recreated-container", heartbeat_s)
    return job_id


def test_a_job_silent_past_the_timeout_is_interrupted_wherever_it_ran(workspace):
    from engine.jobs.log import STALE_AFTER_S, interrupt_stale_jobs, list_jobs, stale_jobs

    silent = _job_elsewhere(workspace, time.time() - STALE_AFTER_S - 5)
    fresh = _job_elsewhere(workspace, time.time())
    assert [job.job_id for job, _ in stale_jobs(workspace)] == [silent]
    assert [job.job_id for job, _ in stale_jobs(workspace)] == [silent]  # looking changed nothing
    states = {job.job_id: job for job in list_jobs(workspace)}
    assert states[silent].state == "interrupted" and "no heartbeat for" in states[silent].error
    assert "a-recreated-container" in states[silent].error
    assert states[fresh].state == "training"
    assert interrupt_stale_jobs(workspace) == []


def test_a_running_job_writes_its_heartbeat_until_it_finishes(workspace, monkeypatch):
    import engine.jobs.log as log

    monkeypatch.setattr(log, "HEARTBEAT_S", 0.02)
    job = log.JobLog(workspace, "extract", {})
    first = log.get_job(workspace, job.job_id).heartbeat_s
    wait_until(lambda: log.get_job(workspace, job.job_id).heartbeat_s > first, 30, "a newer heartbeat")
    job.finish(log.JobState.COMPLETED)
    assert not job._heartbeat.is_alive() or wait_until(lambda: not job._heartbeat.is_alive(), 10, "the beat to stop")
    pending = log.JobLog(workspace, "train", {}, state=log.JobState.PENDING)
    assert pending._heartbeat is None  # its worker beats once it takes the job over
    pending.state(log.JobState.PREPARING)
    assert pending._heartbeat.is_alive()
    pending.finish(log.JobState.CANCELLED)


def test_jobs_cancel_always_ends_a_job_that_no_longer_runs(workspace):
    from typer.testing import CliRunner

    from cli.main import app
    from engine.jobs.log import STALE_AFTER_S, get_job

    def cancel(job_id: str) -> dict:
        result = CliRunner().invoke(app, ["--headless", "--workspace", str(workspace.root), "jobs", "cancel",
                                          job_id, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["job"]

    silent = _job_elsewhere(workspace, time.time() - STALE_AFTER_S - 1)
    assert cancel(silent)["state"] == "interrupted"
    unknown = _job_elsewhere(workspace, None)  # recorded before heartbeats: nothing says whether it runs
    ended = cancel(unknown)
    assert ended["state"] == "cancelled" and "cannot be reached" in ended["error"]
    alive_elsewhere = _job_elsewhere(workspace, time.time())  # its worker reads the request
    assert cancel(alive_elsewhere)["state"] == "training"
    with workspace.db.transaction() as con:
        from engine.store.jobs import cancel_requested

        assert cancel_requested(con, alive_elsewhere)
    assert get_job(workspace, alive_elsewhere).state == "training"


def test_one_blas_thread_limits_the_blas_libraries_and_restores_them():
    from threadpoolctl import threadpool_info

    from engine.jobs.parallel import one_blas_thread

    before = {info["filepath"]: info["num_threads"] for info in threadpool_info()}
    with one_blas_thread():
        inside = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    assert inside and set(inside) == {1}
    assert {info["filepath"]: info["num_threads"] for info in threadpool_info()} == before
