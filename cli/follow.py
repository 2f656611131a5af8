"""Following a job as it runs: a live loss curve on stderr, or JSON lines on stdout."""

from __future__ import annotations

import json
import signal
import sys
from contextlib import suppress

from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli.output import stderr
from engine.concepts import JobState
from engine.jobs.follow import follow_job
from engine.jobs.log import get_job
from engine.training.curve import SERIES, TrainingCurve, format_duration

SPARK = "▁▂▃▄▅▆▇█"


def exit_code(state: JobState, signum: int | None = None) -> int:
    """How a command that followed a job exits: 0 when it completed; when a signal stopped it,
    128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP); 130 when cancelled (as
    after Ctrl-C); 1 when it failed or was interrupted."""
    if state == JobState.COMPLETED:
        return 0
    if signum is not None:
        return 128 + signum
    return 130 if state == JobState.CANCELLED else 1


class StopSignals:
    """While a foreground job runs, SIGINT (Ctrl-C, or `kill -INT` from a script that started it
    with SIGINT ignored), SIGTERM (`timeout`, a scheduler) and SIGHUP (a closed terminal or SSH
    session) are recorded instead of ending the process: the follower cancels the job on the
    first and stops waiting for it on the second."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, lambda number, frame: self.received.append(number))
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    @property
    def first(self) -> int | None:
        return self.received[0] if self.received else None


def sparkline(values: list[float], width: int = 40) -> str:
    values = [v for v in values if v is not None][-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARK[int((v - low) / span * (len(SPARK) - 1))] for v in values)


class Curve(TrainingCurve):
    """The epochs seen so far, drawn as sparklines of train loss, val loss and val accuracy."""

    def render(self, job_id: str) -> Table:
        table = Table.grid(padding=(0, 1))
        last = self.last
        table.add_row(Text(job_id, style="bold"), Text(f"{self.state} {self.message}"))
        if last:
            eta = self.eta_s()
            table.add_row("epoch", f"{last['epoch']}/{last['total_epochs']}"
                          + (f"  ETA {format_duration(eta)}" if eta is not None else ""))
        for key, title in SERIES:
            values = [e.get(key) for e in self.epochs]
            if any(v is not None for v in values):
                table.add_row(title, f"{sparkline(values)} {values[-1]:.4f}" if values[-1] is not None else "")
        return table


def follow(workspace, job_id: str, *, json_lines: bool = False, on_interrupt=None,
           signals: StopSignals | None = None) -> dict:
    """Show a job's events until it ends; returns the job's last record. `on_interrupt` is called
    on Ctrl-C (e.g. to ask the job to cancel) and following goes on until the job ends. With
    `signals`, it is called on the first of them instead, and a second one stops following."""
    job = get_job(workspace, job_id)
    curve = Curve()
    live = None if json_lines else Live(curve.render(job.job_id), console=stderr, refresh_per_second=4)
    if live is not None:
        live.start()
    insisted = (lambda: len(signals.received) > 1) if signals is not None else (lambda: False)
    try:
        while True:
            try:
                for update in follow_job(workspace, job.job_id, after_seq=curve.seen, stop=insisted):
                    job = update.job
                    if signals is not None and signals.received and on_interrupt is not None:
                        on_interrupt()
                        on_interrupt = None
                    curve.extend(update.events)
                    if json_lines:
                        for seq, kind, data in update.events:
                            line = {"job_id": job.job_id, "seq": seq, "kind": kind, **data}
                            sys.stdout.write(json.dumps(line) + "\n")
                        sys.stdout.flush()
                    if live is not None:
                        live.update(curve.render(job.job_id))
                return job.to_dict()
            except KeyboardInterrupt:
                if on_interrupt is None:
                    raise
                on_interrupt()
                on_interrupt = None
    finally:
        if live is not None:
            with suppress(OSError):  # a terminal that hung up
                live.stop()
                if not stderr.is_terminal:
                    stderr.print()
