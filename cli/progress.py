"""Progress bars on stderr and Ctrl-C as a polite cancel for headless commands."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cli.output import stderr
from engine.progress import CancelToken


class RichReporter:
    """The engine's Reporter, drawn as a rich progress bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = None

    def start(self, task: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(task, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def note(self, message: str) -> None:
        self._progress.console.print(message, markup=False)


@contextmanager
def progress_bar() -> Iterator[RichReporter]:
    """A bar on stderr while the work runs, gone when it ends; on a stderr that is not a terminal
    (a log file, a pipe) only the notes, and no blank line left behind."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True, disable=not stderr.is_interactive) as progress:
        yield RichReporter(progress)


@contextmanager
def cancel_on_ctrl_c() -> Iterator[CancelToken]:
    """The first Ctrl-C asks the work to stop and keep what is done; a second one interrupts at once."""
    token = CancelToken()
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum, frame):
        if token.cancelled:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        token.cancel()
        stderr.print("[yellow]Stopping after the work in hand… (Ctrl-C again to interrupt now)[/]")

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)
