"""How long work reports progress and is told to stop, without knowing who is listening.

The headless CLI renders a rich progress bar; the TUI turns the same calls into messages; tests
pass nothing (a quiet reporter). Cancellation is a flag the work checks between units.
"""

from __future__ import annotations

import threading
from typing import Protocol


class Reporter(Protocol):
    def start(self, task: str, total: int | None) -> None: ...

    def advance(self, amount: int = 1) -> None: ...

    def note(self, message: str) -> None: ...


class QuietReporter:
    """A reporter that keeps the last notes and otherwise says nothing."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.completed = 0
        self.total: int | None = None

    def start(self, task: str, total: int | None) -> None:
        self.total = total
        self.completed = 0

    def advance(self, amount: int = 1) -> None:
        self.completed += amount

    def note(self, message: str) -> None:
        self.notes.append(message)


class CancelToken:
    """Set by a key press or Ctrl-C; checked by the engine between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def cancelled_here(self) -> bool:
        """Cancelled in this process (a key, a signal), without asking anywhere else."""
        return self._event.is_set()
