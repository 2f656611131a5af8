"""Jobs and their events: the rows of `jobs` and `job_events`.

Every function takes an open connection, so callers decide what shares one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from engine.concepts import JobState

_COLUMNS = ("job_id, kind, state, progress, message, pid, host, created_at, finished_at, error, params, result, "
            "heartbeat_s")


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    kind: str
    state: JobState
    progress: float
    message: str | None
    pid: int | None
    host: str | None
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    params: dict
    result: dict | None
    heartbeat_s: float | None = None  # when its process last said it is alive (seconds since the epoch)

    def to_dict(self) -> dict:
        return {
            "job_id": self.job_id, "kind": self.kind, "state": self.state, "progress": self.progress,
            "message": self.message, "pid": self.pid, "host": self.host,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "error": self.error, "params": self.params, "result": self.result, "heartbeat_s": self.heartbeat_s,
        }


class JobEvent(NamedTuple):
    """One of a job's events (progress, epoch, metric, log, state …), numbered from 1 in order."""

    seq: int
    kind: str
    data: dict


def _record(row) -> JobRecord:
    job_id, kind, state, *middle, params, result, heartbeat_s = row
    return JobRecord(job_id, kind, JobState(state), *middle, json.loads(params) if params else {},
                     json.loads(result) if result else None, heartbeat_s)


def _dumps(value) -> str:
    return json.dumps(value, default=str)


def insert_job(con, job_id: str, kind: str, state: JobState, params: dict, pid: int, host: str,
               heartbeat_s: float) -> None:
    con.execute("INSERT INTO jobs (job_id, kind, state, params, pid, host, started_at, heartbeat_s) "
                "VALUES (?, ?, ?, ?, ?, ?, current_timestamp, ?)",
                [job_id, kind, state, _dumps(params), pid, host, heartbeat_s])


def claim_job(con, job_id: str, pid: int, host: str, heartbeat_s: float) -> None:
    """The process `pid` on `host` now runs the job (a worker taking over the job it was started for)."""
    con.execute("UPDATE jobs SET pid = ?, host = ?, started_at = current_timestamp, heartbeat_s = ? WHERE job_id = ?",
                [pid, host, heartbeat_s, job_id])


def set_heartbeat(con, job_id: str, heartbeat_s: float) -> None:
    """The job's process is alive at `heartbeat_s` (seconds since the epoch)."""
    con.execute("UPDATE jobs SET heartbeat_s = ? WHERE job_id = ?", [heartbeat_s, job_id])


def set_pending_pid(con, job_id: str, pid: int) -> None:
    """Record the process started for a job, unless it already moved past pending (and wrote its own)."""
    con.execute("UPDATE jobs SET pid = ? WHERE job_id = ? AND state = ?", [pid, job_id, JobState.PENDING])


def set_state(con, job_id: str, state: JobState, message: str | None) -> None:
    con.execute("UPDATE jobs SET state = ?, message = ? WHERE job_id = ?", [state, message, job_id])


def set_progress(con, job_id: str, progress: float, message: str | None) -> None:
    con.execute("UPDATE jobs SET progress = ?, message = ? WHERE job_id = ?", [progress, message, job_id])


def finish_job(con, job_id: str, state: JobState, result: dict | None, error: str | None) -> None:
    """The job ended in `state`; a completed one's progress becomes 1."""
    con.execute(
        "UPDATE jobs SET state = ?, finished_at = now(), result = ?, error = ?, "
        "progress = CASE WHEN ? THEN 1.0 ELSE progress END WHERE job_id = ?",
        [state, _dumps(result) if result is not None else None, error, state == JobState.COMPLETED, job_id],
    )


def mark_interrupted(con, job_ids: list[str], error: str) -> None:
    con.execute("UPDATE jobs SET state = ?, finished_at = now(), error = ? WHERE job_id IN (SELECT unnest(?))",
                [JobState.INTERRUPTED, error, job_ids])


def live_jobs(con) -> list[JobRecord]:
    """The jobs not in a final state, newest first."""
    finals = [state.value for state in JobState if state.is_final]
    rows = con.execute(f"SELECT {_COLUMNS} FROM jobs WHERE state NOT IN (SELECT unnest(?)) ORDER BY created_at DESC",
                       [finals]).fetchall()
    return [_record(row) for row in rows]


def request_cancel(con, job_id: str) -> None:
    """Raise the job's cancel flag, which its worker reads."""
    con.execute("UPDATE jobs SET cancel_requested = true WHERE job_id = ?", [job_id])


def cancel_requested(con, job_id: str) -> bool:
    row = con.execute("SELECT cancel_requested FROM jobs WHERE job_id = ?", [job_id]).fetchone()
    return bool(row and row[0])


def recent_jobs(con, limit: int) -> list[JobRecord]:
    """Jobs newest first."""
    rows = con.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT ?", [limit]).fetchall()
    return [_record(row) for row in rows]


def jobs_by_id(con, job_id: str, limit: int) -> list[JobRecord]:
    """The job of this id, or those whose id ends with it when it is 6 or more characters; newest first."""
    rows = con.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ? OR (length(?) >= 6 AND ends_with(job_id, ?)) "
                       "ORDER BY created_at DESC LIMIT ?", [job_id, job_id, job_id, limit]).fetchall()
    return [_record(row) for row in rows]


def insert_events(con, events: list[tuple[str, int, str, dict]]) -> None:
    """Several events, (job_id, seq, kind, data) each, in one statement (many cost little more than one)."""
    con.execute("INSERT INTO job_events (job_id, seq, kind, data) VALUES " + ", ".join(["(?, ?, ?, ?)"] * len(events)),
                [value for job_id, seq, kind, data in events for value in (job_id, seq, kind, _dumps(data))])


def last_event_seq(con, job_id: str) -> int:
    """The number of the job's newest event; 0 before its first."""
    return con.execute("SELECT coalesce(max(seq), 0) FROM job_events WHERE job_id = ?", [job_id]).fetchone()[0]


def events_after(con, job_id: str, after_seq: int = 0) -> list[JobEvent]:
    """The job's events numbered after `after_seq`, oldest first."""
    rows = con.execute("SELECT seq, kind, data FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq",
                       [job_id, after_seq]).fetchall()
    return [JobEvent(seq, kind, json.loads(data) if data else {}) for seq, kind, data in rows]
