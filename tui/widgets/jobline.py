"""A screen's status line that follows a job running in a process of its own: a message and a
progress bar, read with the engine's follower (`follow_job`) in a worker thread (never on the event
loop), whose updates come back as messages.

`follow(job_id, what)` starts following; `cancel()` asks the job to stop; each read posts
`JobLine.Updated` (the job's record and its curve so far, folded from its events) and when the job
reaches a final state the bar hides and `JobLine.Ended` (with the job's record) goes to the screen,
which says what came of it. Between jobs, `say` puts any text in the line. The line says "what:
doing" unless the screen gives a `describe` of its own. Used by the Train, Gates and Models
screens; the screen's stylesheet styles the line by the ids it gives.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Label, ProgressBar
from textual.worker import get_current_worker

from engine.errors import WorkbenchError
from engine.text import printable
from engine.jobs.follow import POLL_S, JobUpdate, follow_job
from engine.jobs.log import request_cancel
from engine.store.jobs import JobRecord
from engine.training.curve import TrainingCurve
from tui.workers import ReportsWorkerErrors, in_thread

FOLLOW_GROUP = "job-line-follow"


class JobLine(ReportsWorkerErrors, Horizontal):
    class Updated(Message):
        """The followed job was read: its record now and whether events came (`line.curve` holds
        them all)."""

        def __init__(self, line: JobLine, job: JobRecord, new_events: bool) -> None:
            super().__init__()
            self.line = line
            self.job = job
            self.new_events = new_events

        @property
        def control(self) -> JobLine:
            return self.line

    class Ended(Message):
        """The followed job reached a final state (completed, failed, cancelled, interrupted)."""

        def __init__(self, line: JobLine, job: JobRecord) -> None:
            super().__init__()
            self.line = line
            self.job = job

        @property
        def control(self) -> JobLine:
            return self.line

    class Polled(Message, bubble=False):
        def __init__(self, following: int, update: JobUpdate | None, error: str | None) -> None:
            super().__init__()
            self.following, self.update, self.error = following, update, error

    def __init__(self, *, message_id: str, progress_id: str,
                 describe: Callable[[JobRecord, TrainingCurve], str | Text] | None = None,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self._message_id = message_id
        self._progress_id = progress_id
        self._describe = describe
        self.job_id: str | None = None
        self.what = ""
        self.curve = TrainingCurve()
        self._cancelling = False
        self._following = 0  # counts the follows started; a read of an earlier one is dropped

    def compose(self):
        yield Label("", id=self._message_id)
        yield ProgressBar(id=self._progress_id, show_eta=False)

    def on_mount(self) -> None:
        self.bar.display = False

    @property
    def bar(self) -> ProgressBar:
        return self.query_one(ProgressBar)

    def say(self, text: str | Text) -> None:
        """Show `text`: a string literally (it may quote a file name), a Text as styled."""
        self.query_one(Label).update(text if isinstance(text, Text) else Text(printable(text)))

    def follow(self, job_id: str, what: str = "") -> None:
        """Follow a job (replacing any followed before); `what` leads its line (until the first read
        when the screen describes the job itself)."""
        self.job_id = job_id
        self.what = what
        self.curve = TrainingCurve()
        self._cancelling = False
        self.bar.display = True
        self.bar.update(total=1.0, progress=0)
        if what:
            self.say(f"{what} · c cancels")
        self.resume()

    def pause(self) -> None:
        """Stop reading the followed job until `resume` (while the screen is not shown)."""
        self._following += 1
        self.workers.cancel_group(self, FOLLOW_GROUP)

    def resume(self) -> None:
        """Read the followed job again, from the events not yet seen."""
        if self.job_id is not None:
            self._following += 1
            self._follow(self.job_id, self.curve.seen, self._following)

    def cancel(self) -> bool:
        """Ask the followed job to stop (it does at its next check); False when none is followed."""
        if self.job_id is None:
            return False
        self._cancelling = True
        self.say(f"{self.what}: cancelling…")
        self._request_cancel(self.job_id)
        return True

    @in_thread(FOLLOW_GROUP, exclusive=True)
    def _follow(self, job_id: str, after_seq: int, following: int) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                for update in follow_job(self.app.workspace, job_id, after_seq=after_seq,
                                         stop=lambda: worker.is_cancelled):
                    after_seq = update.events[-1].seq if update.events else after_seq
                    self.post_message(self.Polled(following, update, None))
                return
            except WorkbenchError as error:
                self.post_message(self.Polled(following, None, str(error)))
                time.sleep(POLL_S)  # and read again

    @in_thread("job-line-cancel")
    def _request_cancel(self, job_id: str) -> None:
        try:
            request_cancel(self.app.workspace, job_id)
        except WorkbenchError as error:
            self.app.call_from_thread(self.say, f"{self.what}: {error}")

    def doing(self, job: JobRecord) -> str:
        """What the line says of a live job unless the screen describes it."""
        doing = job.message or job.state
        return f"{self.what}: cancelling… ({doing})" if self._cancelling else f"{self.what}: {doing} · c cancels"

    def on_job_line_polled(self, message: Polled) -> None:
        if message.following != self._following:
            return  # a read for a follow since replaced or paused
        if message.update is None:
            self.say(message.error if self._describe else f"{self.what}: {message.error} · c cancels")
            return
        job = message.update.job
        new_events = self.curve.extend(message.update.events)
        self.bar.update(progress=job.progress)
        if self._describe is not None:
            self.say(self._describe(job, self.curve))
        elif job.state.is_live:
            self.say(self.doing(job))
        self.post_message(self.Updated(self, job, new_events))
        if job.state.is_live:
            return
        self.job_id = None
        self.bar.display = False
        self.post_message(self.Ended(self, job))
