"""One job at a glance: model, state, epoch, progress bar and ETA (or why it ended)."""

from __future__ import annotations

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.jobs import ACTIVE_STATES, JobRecord
from engine.training.curve import TrainingCurve, format_duration

BAR_WIDTH = 16


class JobStatus(Static):
    def show(self, job: JobRecord | None, curve: TrainingCurve | None) -> None:
        if job is None:
            self.update(Text("No job selected. Fill in the form and press s to train.", style="dim"))
            return
        params = job.params or {}
        title = Text.assemble((f"{params.get('name', job.kind)} ", "bold"), f"{params.get('model', '')} ",
                              (job.job_id[-6:], "dim"))
        line = Table.grid(padding=(0, 1))
        if job.state in ACTIVE_STATES:
            last = curve.last if curve else {}
            epoch = f"epoch {last['epoch']}/{last['total_epochs']}" if last else (job.message or "")
            eta = f"ETA {format_duration(curve.eta_s())}" if curve and curve.eta_s() is not None else ""
            line.add_row(title, Text(job.state, style="bold cyan"),
                         ProgressBar(total=1.0, completed=job.progress, width=BAR_WIDTH), epoch, eta)
        elif job.state == "completed":
            line.add_row(title, Text("completed", style="green"), (job.result or {}).get("model", ""))
        else:
            line.add_row(title, Text(job.state, style="red" if job.state != "cancelled" else "yellow"),
                         Text(job.error or "", overflow="ellipsis", no_wrap=True))
        self.update(line)
