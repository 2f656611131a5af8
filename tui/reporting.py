"""Engine progress from a worker thread, turned into messages for a screen (post_message is thread-safe)."""

from __future__ import annotations

from textual.message import Message
from textual.message_pump import MessagePump


class WorkProgress(Message):
    """How far a piece of long work in a worker thread has come; a newer one replaces an older one."""

    def __init__(self, task: str, completed: int, total: int | None) -> None:
        super().__init__()
        self.task = task
        self.completed = completed
        self.total = total


class MessageReporter:
    """An engine `Reporter` that posts WorkProgress to `target`, at most every `min_step` items."""

    def __init__(self, target: MessagePump, min_step: int = 1) -> None:
        self.target = target
        self.min_step = min_step
        self.task = ""
        self.total: int | None = None
        self.completed = 0
        self._posted = 0

    def start(self, task: str, total: int | None) -> None:
        self.task, self.total, self.completed, self._posted = task, total, 0, 0
        self.target.post_message(WorkProgress(task, 0, total))

    def advance(self, amount: int = 1) -> None:
        self.completed += amount
        if self.completed - self._posted >= self.min_step or self.completed == self.total:
            self._posted = self.completed
            self.target.post_message(WorkProgress(self.task, self.completed, self.total))

    def note(self, message: str) -> None:
        self.target.post_message(WorkProgress(message, self.completed, self.total))
