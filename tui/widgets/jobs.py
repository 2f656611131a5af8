"""Jobs, running and past, newest first; the highlighted row is the job whose curve is shown."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from engine.concepts import JobState
from engine.store.jobs import JobRecord

COLUMNS = (("started", 11), ("model", 14), ("state", 10), ("done", 4))
STATE_STYLES = {JobState.COMPLETED: "green", JobState.FAILED: "red", JobState.INTERRUPTED: "red",
                JobState.CANCELLED: "yellow"}


def _model(job: JobRecord) -> str:
    params = job.params or {}
    return f"{params.get('name', job.kind)} {params.get('model', '')}".strip()


def _row(job: JobRecord) -> tuple:
    style = STATE_STYLES.get(job.state, "bold cyan")
    return (job.created_at.strftime("%m-%d %H:%M"), _model(job), Text(job.state, style=style),
            f"{job.progress:.0%}")


class JobsTable(DataTable):
    class Selected(Message):
        """The person moved to another job."""

        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.selected: str | None = None
        self._shown: list[str] = []
        self._rows: dict[str, tuple] = {}

    def on_mount(self) -> None:
        for title, width in COLUMNS:
            self.add_column(title, width=width, key=title)

    def show(self, jobs: list[JobRecord]) -> None:
        """Refresh the rows in place; rebuild only when the set of jobs changed."""
        ids = [job.job_id for job in jobs]
        rows = {job.job_id: _row(job) for job in jobs}
        if ids != self._shown:
            self.clear()
            for job_id in ids:
                self.add_row(*rows[job_id], key=job_id)
            self._shown = ids
            if self.selected in ids:
                self.move_cursor(row=ids.index(self.selected))
        else:
            for job_id, row in rows.items():
                for (title, _), value, before in zip(COLUMNS, row, self._rows[job_id]):
                    if value != before:
                        self.update_cell(job_id, title, value)
        self._rows = rows

    def select(self, job_id: str) -> None:
        self.selected = job_id
        if job_id in self._shown:
            self.move_cursor(row=self._shown.index(job_id))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.cursor_row != self.cursor_row:
            return  # stale: the cursor moved on while the table was rebuilt
        job_id = event.row_key.value
        if job_id is not None and job_id != self.selected:
            self.selected = job_id
            self.post_message(self.Selected(job_id))
