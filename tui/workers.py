"""Background work in the TUI: thread workers whose failures become notifications instead of
ending the app (a busy workspace or a bad file must never close the screen someone labels in)."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual import work
from textual.worker import Worker, WorkerState

from engine.errors import WorkbenchError
from engine.text import printable
from engine.settings import load_settings


def in_thread(group: str, *, exclusive: bool = False):
    """`@work` in a thread, in `group`, reporting failures through `ReportsWorkerErrors`."""
    return work(thread=True, group=group, exclusive=exclusive, exit_on_error=False)


def failure_text(error: BaseException | None) -> str:
    """A failure as a person reads it: the engine's own message, or the type and message of a bug,
    with any control character of a file name it quotes shown (show it with markup off)."""
    return printable(str(error) if isinstance(error, WorkbenchError) else f"{type(error).__name__}: {error}")


class ReportsWorkerErrors:
    """Mixed into a screen or widget that starts workers: a failed worker is shown as an error
    notification (worker messages do not bubble, so each node that starts workers says so)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            raise_if_strict(event.worker.error)
            self.notify(failure_text(event.worker.error), title=type(self).__name__, severity="error", timeout=8,
                        markup=False)


def raise_if_strict(error: BaseException | None) -> None:
    """With the tui_strict setting (the test suite turns it on), a bug (anything but a WorkbenchError)
    in a worker fails the test that met it instead of becoming a notification nobody reads."""
    if error is not None and not isinstance(error, WorkbenchError) and load_settings().tui_strict:
        raise error


class StatusReporter:
    """An engine `Reporter` for work in a worker thread: "task done/total" handed to `show` on the
    event loop (from any thread), at most every `every_s` seconds and at the end of a task."""

    def __init__(self, app, show: Callable[[str], None], every_s: float = 0.2) -> None:
        self.app, self.show, self.every_s = app, show, every_s
        self.task, self.total, self.completed, self.shown_at = "", None, 0, 0.0

    def start(self, task: str, total: int | None) -> None:
        self.task, self.total, self.completed = task, total, 0
        self._post(force=True)

    def advance(self, amount: int = 1) -> None:
        self.completed += amount
        self._post(force=self.total is not None and self.completed >= self.total)

    def note(self, message: str) -> None:
        self.app.call_from_thread(self.show, message)

    def _post(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.shown_at >= self.every_s:
            self.shown_at = now
            done = f"{self.completed}/{self.total}" if self.total else str(self.completed)
            self.app.call_from_thread(self.show, f"{self.task} {done}")
