"""A screen's status line that can follow a job running in a process of its own: a message and a
progress bar, read from the workspace every POLL_S in a worker thread (never on the event loop).

`follow(job_id, what)` starts following; `cancel()` asks the job to stop; when the job reaches a
final state the bar hides and `JobLine.Ended` (with the job's record) goes to the screen, which
says what came of it. Between jobs, `say` puts any text in the line. Used by the Gates and Models
screens; the screen's stylesheet styles the line by the ids it gives.
"""

from __future__ import annotations

from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Label, ProgressBar

from engine.errors import WorkbenchError
from engine.jobs.log import FINAL_STATES, JobRecord, get_job, request_cancel
from tui.workers import ReportsWorkerErrors, in_thread

POLL_S = 0.5


class JobLine(ReportsWorkerErrors, Horizontal):
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
        def __init__(self, job_id: str, job: JobRecord | None, error: str | None) -> None:
            super().__init__()
            self.job_id, self.job, self.error = job_id, job, error

    def __init__(self, *, message_id: str, progress_id: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self._message_id = message_id
        self._progress_id = progress_id
        self.job_id: str | None = None
        self.what = ""
        self._cancelling = False
        self._timer: Timer | None = None

    def compose(self):
        yield Label("", id=self._message_id)
        yield ProgressBar(id=self._progress_id, show_eta=False)

    def on_mount(self) -> None:
        self.bar.display = False

    @property
    def bar(self) -> ProgressBar:
        return self.query_one(ProgressBar)

    def say(self, text: str) -> None:
        self.query_one(Label).update(text)

    def follow(self, job_id: str, what: str) -> None:
        """Follow a job (replacing any followed before); `what` leads its line."""
        self.job_id = job_id
        self.what = what
        self._cancelling = False
        self.bar.display = True
        self.bar.update(total=1.0, progress=0)
        self.say(f"{what} · c cancels")
        if self._timer is None:
            self._timer = self.set_interval(POLL_S, self._poll)
        else:
            self._timer.resume()

    def cancel(self) -> bool:
        """Ask the followed job to stop (it does at its next check); False when none is followed."""
        if self.job_id is None:
            return False
        self._cancelling = True
        self.say(f"{self.what}: cancelling…")
        self._request_cancel(self.job_id)
        return True

    def _poll(self) -> None:
        if self.job_id is not None:
            self._read(self.job_id)

    @in_thread("job-line-read", exclusive=True)
    def _read(self, job_id: str) -> None:
        try:
            self.post_message(self.Polled(job_id, get_job(self.app.workspace, job_id), None))
        except WorkbenchError as error:
            self.post_message(self.Polled(job_id, None, str(error)))

    @in_thread("job-line-cancel")
    def _request_cancel(self, job_id: str) -> None:
        try:
            request_cancel(self.app.workspace, job_id)
        except WorkbenchError as error:
            self.app.call_from_thread(self.say, f"{self.what}: {error}")

    def on_job_line_polled(self, message: Polled) -> None:
        if message.job_id != self.job_id:
            return  # a read of a job no longer followed
        if message.job is None:
            self.say(f"{self.what}: {message.error} · c cancels")  # read again at the next tick
            return
        job = message.job
        self.bar.update(progress=job.progress)
        if job.state not in FINAL_STATES:
            doing = job.message or job.state
            self.say(f"{self.what}: cancelling… ({doing})" if self._cancelling else f"{self.what}: {doing} · c cancels")
            return
        self._timer.pause()
        self.job_id = None
        self.bar.display = False
        self.post_message(self.Ended(self, job))
