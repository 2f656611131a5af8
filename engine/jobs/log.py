"""Jobs: units of long work recorded in the workspace with their state, progress and events.

Each update is its own short transaction, so other processes can read the workspace while a
job runs. A job records the pid and host that run it; a job whose process is gone is shown as
interrupted rather than running forever.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from dataclasses import dataclass
from datetime import datetime

from engine.errors import NotFound
from engine.progress import CancelToken

ACTIVE_STATES = ("pending", "preparing", "running", "training", "evaluating")
FINAL_STATES = ("completed", "failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    kind: str
    state: str
    progress: float
    message: str | None
    pid: int | None
    host: str | None
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    params: dict
    result: dict | None

    def to_dict(self) -> dict:
        return {
            "job_id": self.job_id, "kind": self.kind, "state": self.state, "progress": self.progress,
            "message": self.message, "pid": self.pid, "host": self.host,
            "created_at": self.created_at.isoformat(), "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "error": self.error, "params": self.params, "result": self.result,
        }


JOB_COLUMNS = "job_id, kind, state, progress, message, pid, host, created_at, finished_at, error, params, result"


def _job_from_row(row) -> JobRecord:
    *head, params, result = row
    return JobRecord(*head, json.loads(params) if params else {}, json.loads(result) if result else None)


def new_job_id(kind: str) -> str:
    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _process_alive(pid: int | None, host: str | None) -> bool:
    """Whether a job's process still runs; a zombie (dead, not yet reaped by its parent) does not."""
    if pid is None or host != socket.gethostname():
        return True  # cannot tell from here; trust the record
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class JobLog:
    """Writes one job's state, progress and events; rate-limits progress writes."""

    def __init__(self, workspace, kind: str, params: dict, min_interval_s: float = 1.0, *, state: str = "running",
                 job_id: str | None = None) -> None:
        """Record a new job, or with `job_id` take over one created earlier (a spawned worker does)."""
        self.workspace = workspace
        self.min_interval_s = min_interval_s
        self._last_write = 0.0
        with workspace.db.transaction() as con:
            if job_id is None:
                self.job_id = new_job_id(kind)
                con.execute(
                    "INSERT INTO jobs (job_id, kind, state, params, pid, host, started_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, current_timestamp)",
                    [self.job_id, kind, state, json.dumps(params, default=str), os.getpid(), socket.gethostname()],
                )
                self._seq = 0
            else:
                self.job_id = job_id
                con.execute("UPDATE jobs SET pid = ?, host = ?, started_at = current_timestamp WHERE job_id = ?",
                            [os.getpid(), socket.gethostname(), job_id])
                self._seq = con.execute("SELECT coalesce(max(seq), 0) FROM job_events WHERE job_id = ?",
                                        [job_id]).fetchone()[0]

    def event(self, kind: str, data: dict, *, progress: float | None = None, message: str | None = None) -> None:
        """An event every follower sees (epoch, metric, log, state), with the job's progress and
        message updated in the same transaction when given."""
        self._seq += 1
        with self.workspace.db.transaction() as con:
            con.execute("INSERT INTO job_events (job_id, seq, kind, data) VALUES (?, ?, ?, ?)",
                        [self.job_id, self._seq, kind, json.dumps(data, default=str)])
            if progress is not None:
                con.execute("UPDATE jobs SET progress = ?, message = ? WHERE job_id = ?",
                            [progress, message, self.job_id])

    def state(self, state: str, message: str | None = None) -> None:
        with self.workspace.db.transaction() as con:
            con.execute("UPDATE jobs SET state = ?, message = ? WHERE job_id = ?", [state, message, self.job_id])
        self.event("state", {"state": state, "message": message})

    def cancel_requested(self) -> bool:
        with self.workspace.db.transaction() as con:
            row = con.execute("SELECT cancel_requested FROM jobs WHERE job_id = ?", [self.job_id]).fetchone()
        return bool(row and row[0])

    def progress(self, fraction: float, message: str | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval_s:
            return
        self._last_write = now
        self.event("progress", {"progress": fraction, "message": message}, progress=fraction, message=message)

    def finish(self, state: str, result: dict | None = None, error: str | None = None) -> None:
        with self.workspace.db.transaction() as con:
            con.execute(
                "UPDATE jobs SET state = ?, finished_at = now(), result = ?, error = ?, "
                "progress = CASE WHEN ? = 'completed' THEN 1.0 ELSE progress END WHERE job_id = ?",
                [state, json.dumps(result, default=str) if result is not None else None, error, state, self.job_id],
            )


class JobReporter:
    """A progress reporter (engine.progress.Reporter) that writes into a job's record, so work
    written for the CLI's progress bar reports the same way inside a worker process."""

    def __init__(self, job: JobLog) -> None:
        self.job = job
        self.task = ""
        self.total: int | None = None
        self.completed = 0

    def start(self, task: str, total: int | None) -> None:
        self.task, self.total, self.completed = task, total, 0
        self.job.progress(0.0, task, force=True)

    def advance(self, amount: int = 1) -> None:
        self.completed += amount
        if self.total:
            self.job.progress(min(self.completed / self.total, 1.0), f"{self.task} {self.completed}/{self.total}")

    def note(self, message: str) -> None:
        self.job.event("log", {"message": message})


def _jobs_where(workspace, condition: str, params: list, limit: int) -> list[JobRecord]:
    """Jobs matching a condition, newest first; one whose process died is marked interrupted first."""
    query = f"SELECT {JOB_COLUMNS} FROM jobs WHERE {condition} ORDER BY created_at DESC LIMIT ?"
    with workspace.db.transaction() as con:
        dead = [job.job_id for job in map(_job_from_row, con.execute(query, [*params, limit]).fetchall())
                if job.state in ACTIVE_STATES and not _process_alive(job.pid, job.host)]
        if dead:
            con.execute("UPDATE jobs SET state = 'interrupted', finished_at = now(), "
                        "error = 'its process ended without finishing' WHERE job_id IN (SELECT unnest(?))", [dead])
        return [_job_from_row(row) for row in con.execute(query, [*params, limit]).fetchall()]


def list_jobs(workspace, limit: int = 50) -> list[JobRecord]:
    """Recent jobs, newest first; a job whose process died is marked interrupted on the way."""
    return _jobs_where(workspace, "true", [], limit)


def get_job(workspace, job_id: str) -> JobRecord:
    """A job by its id, or by the last 6 or more characters of it."""
    condition = "job_id = ? OR (length(?) >= 6 AND ends_with(job_id, ?))"
    found = _jobs_where(workspace, condition, [job_id, job_id, job_id], 2)
    if len(found) != 1:
        raise NotFound(f"no job {job_id!r} (see `jobs list`)" if not found else
                       f"{job_id!r} matches more than one job; give more of its id")
    return found[0]


def job_events(workspace, job_id: str, after_seq: int = 0) -> list[tuple[int, str, dict]]:
    """(seq, kind, data) of a job's events after `after_seq`, oldest first."""
    with workspace.db.transaction() as con:
        rows = con.execute("SELECT seq, kind, data FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq",
                           [job_id, after_seq]).fetchall()
    return [(seq, kind, json.loads(data) if data else {}) for seq, kind, data in rows]


def request_cancel(workspace, job_id: str) -> JobRecord:
    """Ask a job to stop. No signal is sent (a worker still starting up would die of it): the
    worker's cancel token reads this flag, between files while preparing and between epochs."""
    job = get_job(workspace, job_id)
    if job.state in ACTIVE_STATES:
        with workspace.db.transaction() as con:
            con.execute("UPDATE jobs SET cancel_requested = true WHERE job_id = ?", [job.job_id])
    return get_job(workspace, job.job_id)


class JobCancelToken(CancelToken):
    """Cancelled by a signal in this process or by `request_cancel` from any process; the job's
    flag is read at most every `interval_s`."""

    def __init__(self, job: JobLog, interval_s: float = 0.5) -> None:
        super().__init__()
        self.job = job
        self.interval_s = interval_s
        self._last_read = 0.0

    @property
    def cancelled(self) -> bool:
        if not super().cancelled and time.monotonic() - self._last_read > self.interval_s:
            self._last_read = time.monotonic()
            if self.job.cancel_requested():
                self.cancel()
        return super().cancelled


def spawn_job(workspace, kind: str, params: dict) -> str:
    """Record a pending job and start a worker process for it, detached from this terminal: it
    keeps running when the terminal or SSH session that started it goes away."""
    job = JobLog(workspace, kind, params, state="pending")
    log_dir = workspace.runs_dir / job.job_id
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "worker.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.services.worker", str(workspace.root), job.job_id],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
    with workspace.db.transaction() as con:
        con.execute("UPDATE jobs SET pid = ? WHERE job_id = ? AND state = 'pending'", [process.pid, job.job_id])
    return job.job_id
