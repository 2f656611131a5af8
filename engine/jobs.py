"""Jobs: units of long work recorded in the workspace with their state, progress and events.

Each update is its own short transaction, so other processes can read the workspace while a
job runs. A job records the pid and host that run it; a job whose process is gone is shown as
interrupted rather than running forever.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from engine.errors import NotFound

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
    if pid is None or host != socket.gethostname():
        return True  # cannot tell from here; trust the record
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobLog:
    """Writes one job's state, progress and events; rate-limits progress writes."""

    def __init__(self, workspace, kind: str, params: dict, min_interval_s: float = 1.0) -> None:
        self.workspace = workspace
        self.job_id = new_job_id(kind)
        self.min_interval_s = min_interval_s
        self._last_write = 0.0
        self._seq = 0
        with workspace.db.transaction() as con:
            con.execute(
                "INSERT INTO jobs (job_id, kind, state, params, pid, host, started_at) "
                "VALUES (?, ?, 'running', ?, ?, ?, current_timestamp)",
                [self.job_id, kind, json.dumps(params, default=str), os.getpid(), socket.gethostname()],
            )

    def progress(self, fraction: float, message: str | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval_s:
            return
        self._last_write = now
        self._seq += 1
        with self.workspace.db.transaction() as con:
            con.execute("UPDATE jobs SET progress = ?, message = ? WHERE job_id = ?", [fraction, message, self.job_id])
            con.execute("INSERT INTO job_events (job_id, seq, kind, data) VALUES (?, ?, 'progress', ?)",
                        [self.job_id, self._seq, json.dumps({"progress": fraction, "message": message})])

    def finish(self, state: str, result: dict | None = None, error: str | None = None) -> None:
        with self.workspace.db.transaction() as con:
            con.execute(
                "UPDATE jobs SET state = ?, finished_at = now(), result = ?, error = ?, "
                "progress = CASE WHEN ? = 'completed' THEN 1.0 ELSE progress END WHERE job_id = ?",
                [state, json.dumps(result, default=str) if result is not None else None, error, state, self.job_id],
            )


def list_jobs(workspace, limit: int = 50) -> list[JobRecord]:
    """Recent jobs, newest first; a job whose process died is marked interrupted on the way."""
    with workspace.db.transaction() as con:
        rows = con.execute(f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT ?", [limit]).fetchall()
        jobs = [_job_from_row(row) for row in rows]
        for job in jobs:
            if job.state in ACTIVE_STATES and not _process_alive(job.pid, job.host):
                con.execute("UPDATE jobs SET state = 'interrupted', finished_at = now(), "
                            "error = 'its process ended without finishing' WHERE job_id = ?", [job.job_id])
        rows = con.execute(f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT ?", [limit]).fetchall()
    return [_job_from_row(row) for row in rows]


def get_job(workspace, job_id: str) -> JobRecord:
    for job in list_jobs(workspace, limit=1000):
        if job.job_id == job_id:
            return job
    raise NotFound(f"no job {job_id!r}")
