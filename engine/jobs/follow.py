"""Following a job from any process: read its record and new events every poll until it ends.

The headless CLI prints what `follow_job` yields; the TUI's job line runs it in a worker thread
and turns each update into a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from engine.jobs.log import get_job, job_events
from engine.store.jobs import JobEvent, JobRecord

POLL_S = 0.5


@dataclass(frozen=True)
class JobUpdate:
    """One poll: the job's record as read, and the events new since the poll before."""

    job: JobRecord
    events: list[JobEvent]


def newest_progress_only(events: list[JobEvent]) -> list[JobEvent]:
    """The events in order, with every progress event but the last left out (a newer one replaces
    the older); epochs, metrics, logs and states are all kept."""
    last = max((event.seq for event in events if event.kind == "progress"), default=None)
    return [event for event in events if event.kind != "progress" or event.seq == last]


def follow_job(workspace, job_id: str, *, after_seq: int = 0, poll_s: float = POLL_S,
               stop: Callable[[], bool] = lambda: False) -> Iterator[JobUpdate]:
    """Updates of a job (by its id or the last 6+ characters of it) from event `after_seq` on,
    one per poll every `poll_s`, ending after the first that finds it in a final state, or
    when `stop()` says so after a pause between polls."""
    job_id = get_job(workspace, job_id).job_id
    while True:
        job = get_job(workspace, job_id)  # before the events: a job in a final state has written all its events
        events = job_events(workspace, job_id, after_seq)
        if events:
            after_seq = events[-1].seq
        yield JobUpdate(job, newest_progress_only(events))
        if job.state.is_final:
            return
        time.sleep(poll_s)
        if stop():
            return
