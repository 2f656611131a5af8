"""Gates: the readiness checks of the dataset (and of a chosen model version) as a pass/fail table.

`r` runs them as a gates job in its own process (the event loop only follows its progress); the
newest stored report is shown when the screen opens and whenever the chosen version changes. The
list of versions follows the workspace: one trained, deleted or gated meanwhile shows at once.
Enter on a check lists what fails; `o` opens those clips in the library.
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Select

from engine.concepts import JobState
from engine.errors import WorkbenchError
from engine.gates.core import GateResult
from engine.gates.items import clips_behind
from engine.gates.store import StoredReport, latest_report
from engine.jobs.log import spawn_job
from engine.models.registry import ModelVersion, list_versions
from engine.text import printable
from tui.widgets.jobline import JobLine
from tui.widgets.versions import VersionsWatch
from tui.workers import ReportsWorkerErrors, in_thread

DATASET_ONLY = "dataset only"
THRESHOLD_WIDTH = 30  # in the table; the detail line under it gives the whole rule
STATUS_MARKUP = {"PASS": "[b green]PASS[/]", "FAIL": "[b red]FAIL[/]", "SKIP": "[dim]SKIP[/]"}


def _item_text(item: dict) -> str:
    """One line for a failing item: file names rather than full paths and clip hashes, then the
    measurements."""
    def short(key: str, value) -> str:
        if isinstance(value, dict):
            return short("path", value["path"]) if "path" in value else short("clip_id", value.get("clip_id", value))
        if key == "path" and isinstance(value, str):
            return value.rsplit("/", 1)[-1]
        if key == "clip_id" and isinstance(value, str):
            return value[:10]
        if isinstance(value, list):
            return f"[{len(value)}]" if len(value) > 4 else ", ".join(map(str, value))
        return f"{value:.4g}" if isinstance(value, float) else "—" if value is None else str(value)
    lead = [short("path", item["path"])] if "path" in item else []
    rest = [f"{key}={short(key, value)}" for key, value in item.items() if key not in ("path", "clip_id") or not lead]
    return "  ".join(lead + rest)


class ReportLoaded(Message):
    def __init__(self, stored: StoredReport | None, versions: list[ModelVersion] | None) -> None:
        super().__init__()
        self.stored, self.versions = stored, versions


class GatesScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("r", "run", "Run gates"),
        Binding("c", "cancel_run", "Cancel run"),
        Binding("enter", "open_check", "What fails", show=False),
        Binding("o", "open_in_library", "Clips in library"),
        Binding("m", "focus_model", "Model"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.stored: StoredReport | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="gates-bar"):
            yield Select([], prompt=DATASET_ONLY, id="gates-model", allow_blank=True)
            yield Label("", id="gates-verdict")
        yield DataTable(id="gates-table", cursor_type="row", zebra_stripes=True)
        with Vertical(id="gates-detail"):
            yield Label("", id="gates-detail-title")
            yield DataTable(id="gates-items", cursor_type="row", show_header=False)
        yield JobLine(id="gates-status", message_id="gates-message", progress_id="gates-progress")
        yield VersionsWatch()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#gates-table", DataTable).add_columns("", "check", "value", "threshold", "detail")
        self.query_one("#gates-items", DataTable).add_column("item")
        self.query_one("#gates-table").focus()
        self.load_report(None, with_versions=True, newest_of_any=True)

    # -- reading ----------------------------------------------------------------------------
    @property
    def model_ref(self) -> str | None:
        select = self.query_one("#gates-model", Select)
        return None if select.is_blank() else str(select.value)

    @in_thread("gates-load", exclusive=True)
    def load_report(self, model_ref: str | None, with_versions: bool = False, newest_of_any: bool = False) -> None:
        """The newest report of the chosen version, or of the dataset alone; on opening, the newest
        of any run (and the version it gated becomes the choice)."""
        versions = list_versions(self.app.workspace) if with_versions else None
        if newest_of_any:
            stored = latest_report(self.app.workspace)
        elif model_ref:
            model_id = next((v.model_id for v in versions or list_versions(self.app.workspace) if v.ref == model_ref), None)
            stored = latest_report(self.app.workspace, model_id) if model_id is not None else None
        else:
            stored = latest_report(self.app.workspace, scope="dataset")
        self.post_message(ReportLoaded(stored, versions))

    def on_report_loaded(self, message: ReportLoaded) -> None:
        select = self.query_one("#gates-model", Select)
        if message.versions is not None:
            chosen = self.model_ref
            refs = {v.ref for v in message.versions}
            gated = message.stored.report.subject.get("model") if message.stored else None
            keep = gated if gated in refs else chosen if chosen in refs else None
            with self.prevent(Select.Changed):
                select.set_options([(f"{v.ref}{' (active)' if v.is_active else ''}", v.ref) for v in message.versions])
                if keep is not None:
                    select.value = keep
            if chosen is not None and keep is None:  # the chosen version is gone: back to the dataset
                self.load_report(None)
                return
        self.show_report(message.stored)

    def on_versions_watch_changed(self, message: VersionsWatch.Changed) -> None:
        self.load_report(self.model_ref, with_versions=True)

    def show_report(self, stored: StoredReport | None) -> None:
        self.stored = stored
        table = self.query_one("#gates-table", DataTable)
        table.clear()
        verdict = self.query_one("#gates-verdict", Label)
        if stored is None:
            verdict.update("no gate report yet · r runs the checks")
            self.show_check(None)
            return
        report = stored.report
        for result in report.results:
            threshold = result.threshold
            if len(threshold) > THRESHOLD_WIDTH:
                threshold = threshold[:THRESHOLD_WIDTH - 1] + "…"
            table.add_row(STATUS_MARKUP[result.status], result.gate.split(".", 1)[1], result.value_text,
                          threshold, result.detail, key=result.gate)
        failed = len(report.failures)
        subject = report.subject.get("model") or f"dataset {report.subject.get('taxonomy', '')}".strip()
        verdict.update(f"{STATUS_MARKUP['PASS' if report.passed else 'FAIL']} {subject} · "
                       f"{failed}/{len(report.results)} failing · {stored.created_at:%Y-%m-%d %H:%M}")
        first_failure = next((n for n, r in enumerate(report.results) if r.passed is False), 0)
        table.move_cursor(row=first_failure)
        self.show_check(self.current_check)

    @property
    def current_check(self) -> GateResult | None:
        table = self.query_one("#gates-table", DataTable)
        if self.stored is None or not self.stored.report.results:
            return None
        return self.stored.report.results[min(table.cursor_row, len(self.stored.report.results) - 1)]

    def show_check(self, result: GateResult | None) -> None:
        items = self.query_one("#gates-items", DataTable)
        items.clear()
        title = self.query_one("#gates-detail-title", Label)
        if result is None:
            title.update("")
            return
        behind = f"{len(result.items)} item(s) · o opens their clips in the library" if result.items else "no items"
        title.update(f"{STATUS_MARKUP[result.status]} {result.title} ({escape(result.threshold)}) · {behind}")
        for item in result.items:
            items.add_row(Text(printable(_item_text(item))))  # it names files: plain text, controls shown

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "gates-table":
            self.show_check(self.current_check)

    def on_select_changed(self, event: Select.Changed) -> None:
        self.load_report(self.model_ref)

    # -- running ----------------------------------------------------------------------------
    def action_run(self) -> None:
        if self.query_one(JobLine).job_id is not None:
            self.notify("a gate run is already going; c cancels it", severity="warning")
            return
        self.start_run(self.model_ref)

    @in_thread("gates-run")
    def start_run(self, model_ref: str | None) -> None:
        params = {"model": model_ref} if model_ref else {}
        try:
            job_id = spawn_job(self.app.workspace, "gates", params)
        except WorkbenchError as error:
            self.app.call_from_thread(self.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self.query_one(JobLine).follow, job_id, f"running gates ({job_id})")

    def on_job_line_ended(self, message: JobLine.Ended) -> None:
        job = message.job
        outcome = "finished" if job.state == JobState.COMPLETED else f"{job.state}: {job.error or ''}"
        message.line.say(f"gate run {outcome}")
        if job.state == JobState.COMPLETED:
            self.load_report(self.model_ref)
        else:
            self.notify(f"gate run {outcome}", severity="error" if job.state == JobState.FAILED else "warning")

    def action_cancel_run(self) -> None:
        if not self.query_one(JobLine).cancel():
            self.notify("no gate run is going")

    # -- going to the clips -----------------------------------------------------------------
    def action_open_check(self) -> None:
        self.query_one("#gates-items", DataTable).focus()

    def action_focus_model(self) -> None:
        self.query_one("#gates-model", Select).focus()

    def action_open_in_library(self) -> None:
        result = self.current_check
        if result is None or not result.items:
            self.notify("this check names no clips")
            return
        self.find_clips(result)

    @in_thread("gates-clips", exclusive=True)
    def find_clips(self, result: GateResult) -> None:
        clip_ids = clips_behind(self.app.workspace, result)
        self.app.call_from_thread(self._show_in_library, clip_ids, result)

    async def _show_in_library(self, clip_ids: list[str], result: GateResult) -> None:
        if not clip_ids:
            self.notify(f"{result.title}: its items name classes, not clips")
            return
        await self.app.switch_mode("library")
        self.app.screen.show_only(clip_ids, f"gate {result.gate}")
