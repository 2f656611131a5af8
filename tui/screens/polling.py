"""A screen that reads the workspace on a timer while it is shown and follows a job in its JobLine."""

from __future__ import annotations

from textual.screen import Screen

from tui.widgets.jobline import JobLine


class PollingScreen(Screen):
    """Calls the screen's own `poll` every `interval_s` once `start_polling` runs; hidden, it stops polling and its
    JobLine stops following, and shown again both pick up at once."""

    def start_polling(self, interval_s: float) -> None:
        self._timer = self.set_interval(interval_s, self.poll)
        self.poll()

    def on_screen_suspend(self) -> None:
        self._timer.pause()
        self.query_one(JobLine).pause()

    def on_screen_resume(self) -> None:
        self._timer.resume()
        self.poll()
        self.query_one(JobLine).resume()
