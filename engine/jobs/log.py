"""Jobs: units of long work recorded in the workspace with their state, progress and events.

Each update is its own short transaction, so other processes can read the workspace while a
job runs. A job records the pid and host that run it, and while it works its process writes a
heartbeat every `HEARTBEAT_S`. A job whose process is gone (seen from its own host), or whose
heartbeat is older than `STALE_AFTER_S` (seen from anywhere: its host may be gone, its container
recreated), is marked interrupted rather than shown running forever.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
from pathlib import Path

from engine.concepts import JobState
from engine.errors import NotFound
from engine.progress import CancelToken
from engine.store import jobs as store
from engine.store.jobs import JobEvent, JobRecord

FINAL_STATES = frozenset(state for state in JobState if state.is_final)
HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0  # twelve missed heartbeats: a busy workspace delays one by at most its busy timeout


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


def why_stale(job: JobRecord, now_s: float | None = None) -> str | None:
    """Why a live job is no longer running (its process ended, or it went silent), or None."""
    if not job.state.is_live:
        return None
    if not _process_alive(job.pid, job.host):
        return "its process ended without finishing"
    now_s = time.time() if now_s is None else now_s
    if job.heartbeat_s is not None and now_s - job.heartbeat_s > STALE_AFTER_S:
        return (f"no heartbeat for {now_s - job.heartbeat_s:.0f} s: its process "
                f"(pid {job.pid} on {job.host}) stopped or lost the workspace")
    return None


class _Heartbeat(threading.Thread):
    """Writes a job's heartbeat every `HEARTBEAT_S` until stopped or the job's log is gone."""

    def __init__(self, job: JobLog) -> None:
        super().__init__(name=f"heartbeat {job.job_id}", daemon=True)
        self._job = weakref.ref(job)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_S):
            job = self._job()
            if job is None:
                return
            job.beat()
            del job


class _Writes:
    """The writes a job (or a sweep and its trials, written together) has kept to make together, in
    order: (store function, job id, its other arguments); an event is (store.insert_events, job id,
    seq, kind, data)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # a heartbeat thread and the work never write a job's row at once
        self.pending: list[tuple] = []
        self.every_s = 0.0
        self.written = time.monotonic()

    def make(self, con) -> None:
        """The jobs recorded since the last write, all the events in one statement, then the rest in
        order; a job's progress is set once, to its last (each set replaces the whole of the one before)."""
        for function, *args in self.pending:
            if function is store.insert_job:
                function(con, *args)
        events = [tuple(args) for function, *args in self.pending if function is store.insert_events]
        if events:
            store.insert_events(con, events)
        last_progress = {args[0]: i for i, (function, *args) in enumerate(self.pending)
                         if function is store.set_progress}
        for i, (function, *args) in enumerate(self.pending):
            if function in (store.insert_job, store.insert_events) or \
                    (function is store.set_progress and last_progress[args[0]] != i):
                continue
            function(con, *args)


class JobLog:
    """Writes one job's state, progress and events; rate-limits progress writes. While the job
    works (any live state but pending) a thread writes its heartbeat.

    After `write_every(seconds)` the job's events and state changes are kept and written together,
    at most that often: by the next write after that long, by a heartbeat, by `flush` or with
    `finish` (a job of many short steps writes a few transactions, not one per step); followers see
    them that much later, and a kill loses at most that much of them. A job made `write_with` such
    job (a sweep's trial, with its sweep) shares its writes: its record is kept with them too, and
    is written with their next write (a later trial's, a heartbeat, a flush), so a sweep of short
    trials writes a transaction every few seconds, not one per trial; a trial appears in `jobs list`
    that much later, and a worker killed before then leaves no record of it (its sweep job's does)."""

    def __init__(self, workspace, kind: str, params: dict, min_interval_s: float = 1.0, *,
                 state: JobState = JobState.RUNNING, job_id: str | None = None,
                 write_with: JobLog | None = None) -> None:
        """Record a new job, or with `job_id` take over one created earlier (a spawned worker does)."""
        self.workspace = workspace
        self.min_interval_s = min_interval_s
        self._last_write = 0.0
        self._writes = write_with._writes if write_with is not None else _Writes()
        self._defers_finish = write_with is not None
        self._heartbeat: _Heartbeat | None = None
        if write_with is not None and job_id is None and self._writes.every_s > 0:
            self.job_id, self._seq = new_job_id(kind), 0
            self._write((store.insert_job, kind, state, params, os.getpid(), socket.gethostname(), time.time()))
            if state != JobState.PENDING:
                self._start_heartbeat()
            return
        with self._writes.lock, workspace.db.transaction() as con:
            if job_id is None:
                self.job_id = new_job_id(kind)
                store.insert_job(con, self.job_id, kind, state, params, os.getpid(), socket.gethostname(),
                                 time.time())
                self._seq = 0
            else:
                self.job_id = job_id
                store.claim_job(con, job_id, os.getpid(), socket.gethostname(), time.time())
                self._seq = store.last_event_seq(con, job_id)
            self._writes.make(con)
            self._made()
        if job_id is not None or state != JobState.PENDING:
            self._start_heartbeat()

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = _Heartbeat(self)
            self._heartbeat.start()

    def _made(self) -> None:
        self._writes.pending.clear()
        self._writes.written = time.monotonic()

    def _write(self, *writes: tuple, now: bool = False) -> None:
        """Make `writes` (store functions with their arguments after the job id): at once, or, after
        `write_every`, once that long has passed since the last write (until then they wait)."""
        with self._writes.lock:
            self._writes.pending.extend((function, self.job_id, *args) for function, *args in writes)
            if (now and self._writes.pending) or time.monotonic() - self._writes.written >= self._writes.every_s:
                with self.workspace.db.transaction() as con:
                    self._writes.make(con)
                self._made()

    def _next_seq(self) -> int:
        with self._writes.lock:
            self._seq += 1
            return self._seq

    def write_every(self, seconds: float) -> None:
        """From now on keep events and state changes and write them together at most every `seconds`."""
        self._writes.every_s = seconds

    def flush(self) -> None:
        """Make the writes that wait now."""
        self._write(now=True)

    def beat(self) -> None:
        """Record that the job's process is alive, with the writes that wait; a busy or vanished
        workspace skips this beat."""
        try:
            self._write((store.set_heartbeat, time.time()), now=True)
        except Exception:  # the next beat tries again; the work itself reports real errors
            with self._writes.lock:
                self._writes.pending = [w for w in self._writes.pending if w[0] is not store.set_heartbeat]

    def event(self, kind: str, data: dict, *, progress: float | None = None, message: str | None = None) -> None:
        """An event every follower sees (epoch, metric, log, state), with the job's progress and
        message updated in the same transaction when given."""
        self.events([(kind, data)], progress=progress, message=message)

    def events(self, batch: list[tuple[str, dict]], *, progress: float | None = None,
               message: str | None = None) -> None:
        """Several events in one transaction (a burst of short epochs writes once, not once each)."""
        if not batch:
            return
        writes = [(store.insert_events, self._next_seq(), kind, data) for kind, data in batch]
        if progress is not None:
            writes.append((store.set_progress, progress, message))
        self._write(*writes)

    def state(self, state: JobState, message: str | None = None) -> None:
        """The job's new state, and its "state" event, in one transaction."""
        self._write((store.set_state, state, message),
                    (store.insert_events, self._next_seq(), "state", {"state": state, "message": message}))
        if state.is_live and state != JobState.PENDING:
            self._start_heartbeat()

    def cancel_requested(self) -> bool:
        with self.workspace.db.transaction() as con:
            return store.cancel_requested(con, self.job_id)

    def progress(self, fraction: float, message: str | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval_s:
            return
        self._last_write = now
        self.event("progress", {"progress": fraction, "message": message}, progress=fraction, message=message)

    def finish(self, state: JobState, result: dict | None = None, error: str | None = None) -> None:
        """The job's end, written with the writes that wait (a job made `write_with` another: with
        that one's next write)."""
        if self._heartbeat is not None:
            self._heartbeat.stopped.set()
        self._write((store.finish_job, state, result, error), now=not self._defers_finish)


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


def _interrupt_stale(con, jobs: list[JobRecord]) -> list[tuple[JobRecord, str]]:
    """Mark the jobs among `jobs` that are no longer running interrupted; returns them with the reason."""
    stale = [(job, reason) for job in jobs if (reason := why_stale(job)) is not None]
    for job, reason in stale:
        store.mark_interrupted(con, [job.job_id], reason)
    return stale


def _read_jobs(workspace, read) -> list[JobRecord]:
    """The jobs `read(con)` finds; one whose process died or went silent is marked interrupted first."""
    with workspace.db.transaction() as con:
        _interrupt_stale(con, read(con))
        return read(con)


def stale_jobs(workspace) -> list[tuple[JobRecord, str]]:
    """The jobs recorded as live that no longer run, each with why; nothing is changed."""
    with workspace.db.transaction() as con:
        return [(job, reason) for job in store.live_jobs(con) if (reason := why_stale(job)) is not None]


def interrupt_stale_jobs(workspace) -> list[tuple[JobRecord, str]]:
    """Mark every job that no longer runs interrupted; returns them with why."""
    with workspace.db.transaction() as con:
        return _interrupt_stale(con, store.live_jobs(con))


def list_jobs(workspace, limit: int = 50) -> list[JobRecord]:
    """Recent jobs, newest first; a job whose process died is marked interrupted on the way."""
    return _read_jobs(workspace, lambda con: store.recent_jobs(con, limit))


def get_job(workspace, job_id: str) -> JobRecord:
    """A job by its id, or by the last 6 or more characters of it."""
    found = _read_jobs(workspace, lambda con: store.jobs_by_id(con, job_id, 2))
    if len(found) != 1:
        raise NotFound(f"no job {job_id!r} (see `jobs list`)" if not found else
                       f"{job_id!r} matches more than one job; give more of its id")
    return found[0]


def job_events(workspace, job_id: str, after_seq: int = 0) -> list[JobEvent]:
    """A job's events after `after_seq`, oldest first."""
    with workspace.db.transaction() as con:
        return store.events_after(con, job_id, after_seq)


def request_cancel(workspace, job_id: str) -> JobRecord:
    """Ask a job to stop. No signal is sent (a worker still starting up would die of it): the
    worker's cancel token reads this flag, between files while preparing and between epochs.
    A job that no longer runs ends at once: interrupted when its process is gone or silent,
    cancelled when nothing can tell whether it runs (another host, and no heartbeat recorded)."""
    job = get_job(workspace, job_id)  # marks a dead or silent job interrupted
    if job.state.is_live:
        with workspace.db.transaction() as con:
            store.request_cancel(con, job.job_id)
            if job.heartbeat_s is None and job.host != socket.gethostname():
                store.finish_job(con, job.job_id, JobState.CANCELLED, None,
                                 f"cancelled; its process on {job.host} cannot be reached or seen from here")
    return get_job(workspace, job.job_id)


class WatchedCancelToken(CancelToken):
    """Cancelled by `request_cancel` of any of some jobs (a sweep's, say), or when one of the `also`
    tokens is cancelled in this process (a signal): a thread reads the jobs' flags every `interval_s`
    in one transaction, so checking the token never waits on the database. `linked` gives a token
    for one more job (a sweep's trial) read by the same thread. `stop()` ends the thread."""

    def __init__(self, workspace, job_ids: list[str], interval_s: float = 1.0, *also: CancelToken) -> None:
        super().__init__()
        self.also = also
        self._linked: dict[str, _LinkedCancelToken] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(workspace, list(job_ids), interval_s),
                                        name="cancel watch", daemon=True)
        self._thread.start()

    def _watch(self, workspace, job_ids: list[str], interval_s: float) -> None:
        while not self._stopped.wait(interval_s):
            linked = dict(self._linked)
            try:
                with workspace.db.transaction() as con:
                    flagged = [job_id for job_id in [*job_ids, *linked] if store.cancel_requested(con, job_id)]
            except Exception:  # a busy workspace: read again next time
                continue
            for job_id in flagged:
                (linked[job_id] if job_id in linked else self).cancel()
            if super().cancelled:
                return

    @property
    def cancelled(self) -> bool:
        return super().cancelled or any(token.cancelled_here for token in self.also)

    def linked(self, job_id: str) -> CancelToken:
        """A token cancelled with this one, or by `request_cancel` of `job_id` alone; `unlink` it
        when that job ends."""
        token = self._linked[job_id] = _LinkedCancelToken(self)
        return token

    def unlink(self, job_id: str) -> None:
        self._linked.pop(job_id, None)

    def stop(self) -> None:
        self._stopped.set()


class _LinkedCancelToken(CancelToken):
    def __init__(self, parent: CancelToken) -> None:
        super().__init__()
        self.parent = parent

    @property
    def cancelled(self) -> bool:
        return super().cancelled or self.parent.cancelled


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
    job = JobLog(workspace, kind, params, state=JobState.PENDING)
    log_dir = workspace.runs_dir / job.job_id
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "worker.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.services.worker", str(workspace.root), job.job_id],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
    with workspace.db.transaction() as con:
        store.set_pending_pid(con, job.job_id, process.pid)
    return job.job_id
