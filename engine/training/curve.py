"""A training job's live curve, folded from its events: the epochs so far, its state, and an ETA.

The headless `jobs follow` and the TUI's Train screen both read a job's events into one of these
and draw it their own way.
"""

from __future__ import annotations

from engine.concepts import JobState

SERIES = (("train_loss", "train loss"), ("val_loss", "val loss"), ("val_metric", "val acc"))


class TrainingCurve:
    """Events go in oldest first (`add`, or `extend` with their sequence numbers); the epochs,
    state and message come out."""

    def __init__(self) -> None:
        self.epochs: list[dict] = []
        self.state = JobState.PENDING
        self.message = ""
        self.seen = 0  # the last event sequence number folded in

    def add(self, kind: str, data: dict) -> None:
        if kind == "epoch":
            self.epochs.append(data)
        elif kind == "state":
            self.state, self.message = JobState(data.get("state", self.state)), data.get("message") or ""

    def extend(self, events: list[tuple[int, str, dict]]) -> bool:
        """Fold in (seq, kind, data) events newer than those seen; whether any was new."""
        fresh = [(seq, kind, data) for seq, kind, data in events if seq > self.seen]
        for seq, kind, data in fresh:
            self.add(kind, data)
            self.seen = seq
        return bool(fresh)

    @property
    def last(self) -> dict:
        return self.epochs[-1] if self.epochs else {}

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(epochs, values) of one series, leaving out epochs that did not report it."""
        pairs = [(e["epoch"], e[key]) for e in self.epochs if e.get(key) is not None]
        return [p[0] for p in pairs], [float(p[1]) for p in pairs]

    def eta_s(self) -> float | None:
        """Seconds until the last epoch at the pace so far (an upper bound when early stopping may
        end it sooner); None before the first timed epoch."""
        last = self.last
        elapsed, epoch, total = last.get("elapsed_s"), last.get("epoch"), last.get("total_epochs")
        if elapsed is None or not epoch or not total:
            return None
        return max(total - epoch, 0) * elapsed / epoch


def format_duration(seconds: float | None) -> str:
    """12 s, 3:05, 1:02:09; an em dash when unknown."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
