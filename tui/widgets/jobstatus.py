"""One job at a glance, on one line: model, state, epoch, ETA and a progress bar (or why it ended).
The most useful parts come first, so a narrow terminal cuts only the least useful."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from engine.jobs.log import ACTIVE_STATES, JobRecord
from engine.training.curve import TrainingCurve, format_duration

BAR_WIDTH = 12


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> Text:
    filled = max(0, min(width, round(fraction * width)))
    return Text.assemble(("━" * filled, "cyan"), ("─" * (width - filled), "dim"))


class JobStatus(Static):
    def show(self, job: JobRecord | None, curve: TrainingCurve | None) -> None:
        if job is None:
            self.update(Text("No job selected. Fill in the form and press s to train.", style="dim"))
            return
        params = job.params or {}
        line = Text.assemble((f"{params.get('name', job.kind)} ", "bold"), f"{params.get('model', '')}  ")
        if job.state in ACTIVE_STATES:
            last = curve.last if curve else {}
            line.append(job.state, style="bold cyan")
            line.append(f"  epoch {last['epoch']}/{last['total_epochs']}" if last else f"  {job.message or ''}")
            eta = curve.eta_s() if curve else None
            if eta is not None:
                line.append(f"  ETA {format_duration(eta)}")
            line.append("  ")
            line.append_text(progress_bar(job.progress))
        elif job.state == "completed":
            line.append("completed", style="green")
            line.append(f"  {(job.result or {}).get('model', '')}")
        else:
            line.append(job.state, style="yellow" if job.state == "cancelled" else "red")
            line.append(f"  {job.error or ''}")
        line.append(f"  {job.job_id[-6:]}", style="dim")
        line.no_wrap = True
        line.overflow = "ellipsis"
        self.update(line)
