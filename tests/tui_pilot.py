"""Helpers for driving the terminal app with Textual's pilot: wait for a condition, read what a widget shows."""

from __future__ import annotations

import io
import time

from rich.console import Console


def shown_text(widget, width: int = 140) -> str:
    """What a Static (Label, MetricsView …) shows, as plain text."""
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


async def wait_for(pilot, condition, what: str, timeout: float = 90.0):
    """Let the app run until `condition()` is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        await pilot.pause(0.2)
