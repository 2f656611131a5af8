"""Models: every version of every model; activate (with inference over the library), roll back,
delete, compare two versions side by side, export to ONNX.

Activating and rolling back run as an activation job in a process of its own (it goes on when the
terminal closes; `c` cancels it), followed in the status line. Other registry reads and changes
run in worker threads; what they find comes back as messages, and an engine error becomes a
notification.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header

from engine.evaluation.comparison import compare_versions
from engine.errors import GatesFailed, WorkbenchError
from engine.evaluation.metrics import Evaluation
from engine.concepts import JobState
from engine.store.jobs import JobRecord
from engine.models.registry import ModelVersion, check_deletable
from engine.text import printable
from tui.widgets.confirm import ConfirmDialog
from tui.widgets.jobline import JobLine
from tui.widgets.metrics import MetricsView
from tui.widgets.prompt import PromptDialog
from tui.widgets.versions import VersionsTable, VersionsWatch
from tui.workers import ReportsWorkerErrors, in_thread


class VersionsLoaded(Message):
    def __init__(self, versions: list[ModelVersion]) -> None:
        super().__init__()
        self.versions = versions


class Done(Message):
    """A registry change finished: what to tell the person, and whether it failed."""

    def __init__(self, text: str, error: bool = False) -> None:
        super().__init__()
        self.text = text
        self.error = error


class ActivationRefused(Message):
    """The engine refused to activate a version that a forced activation (with a reason) may pass."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__()
        self.ref = ref
        self.reason = reason


def version_title(version: ModelVersion) -> str:
    active = " · active" if version.is_active else ""
    return f"{version.ref} · {version.kind} on {version.spec} · task {version.task}{active} · test split"


class ModelsScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("a", "activate", "Activate"),
        Binding("r", "rollback", "Roll back"),
        Binding("d", "delete", "Delete"),
        Binding("m", "mark", "Mark to compare"),
        Binding("escape", "unmark", "Clear mark", show=False),
        Binding("e", "export", "Export"),
        Binding("c", "cancel_activation", "Cancel activation"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.marked: str | None = None
        self.busy: str | None = None  # what is running now (one registry change at a time)

    def compose(self) -> ComposeResult:
        yield Header()
        yield VersionsTable(id="models-table")
        with VerticalScroll(id="models-detail"):
            yield MetricsView(id="models-metrics")
        yield JobLine(id="models-status", message_id="models-message", progress_id="models-progress")
        yield VersionsWatch()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(VersionsTable).focus()
        self.reload()
        self.find_running_activation()

    def on_screen_resume(self) -> None:
        self.reload()  # a job may have registered a version meanwhile

    def on_versions_watch_changed(self, message: VersionsWatch.Changed) -> None:
        self.reload()  # one was trained, activated, deleted or gated while this screen is on view

    # -- worker threads ------------------------------------------------------------------------
    @in_thread("models-load", exclusive=True)
    def reload(self) -> None:
        from engine.models.registry import list_versions

        try:
            self.post_message(VersionsLoaded(list_versions(self.app.workspace)))
        except WorkbenchError as error:
            self.post_message(Done(str(error), error=True))

    @in_thread("models-change")
    def activate_version(self, ref: str, *, rollback: bool = False, forced: bool = False,
                         reason: str | None = None) -> None:
        """Start an activation job; a version whose last gate report failed is refused first (so the
        person may force it with a reason) and no job starts."""
        from engine.jobs.log import spawn_job
        from engine.services.activation import check_activatable

        try:
            if not rollback and not forced:
                check_activatable(self.app.workspace, ref)
            job_id = spawn_job(self.app.workspace, "activate",
                               {"ref": ref, "reason": reason, "forced": forced, "rollback": rollback})
        except GatesFailed as error:
            self.post_message(ActivationRefused(ref, str(error)))
            return
        except WorkbenchError as error:
            self.post_message(Done(str(error), error=True))
            return
        self.app.call_from_thread(self._follow, job_id)

    def _follow(self, job_id: str) -> None:
        self.query_one(JobLine).follow(job_id, self.busy or "activation")

    @in_thread("models-find")
    def find_running_activation(self) -> None:
        """An activation job still running (started before this screen opened) is followed again."""
        from engine.jobs.log import list_jobs

        try:
            running = [job for job in list_jobs(self.app.workspace, limit=20)
                       if job.kind == "activate" and job.state.is_live]
        except WorkbenchError:
            return  # nothing to follow that can be read now; the versions' reload says why
        if running:
            self.app.call_from_thread(self._follow_running, running[0])

    def _follow_running(self, job: JobRecord) -> None:
        if self.busy is None:
            self.busy = f"{'rolling back' if job.params.get('rollback') else 'activating'} {job.params.get('ref')}"
            self.query_one(JobLine).follow(job.job_id, self.busy)

    @in_thread("models-change")
    def delete_version(self, ref: str) -> None:
        from engine.models.registry import delete

        try:
            self.post_message(Done(f"deleted {delete(self.app.workspace, ref).ref}"))
        except WorkbenchError as error:
            self.post_message(Done(str(error), error=True))

    @in_thread("models-change")
    def export_version(self, ref: str, path: str) -> None:
        from engine.services.model_exchange import export_version

        try:
            result = export_version(self.app.workspace, ref, Path(path))
        except WorkbenchError as error:
            self.post_message(Done(str(error), error=True))
            return
        parity = f"; {result.parity.describe()}" if result.parity else ""
        self.post_message(Done(f"wrote {result.path} and {result.path.with_suffix('.json').name}{parity}"))

    # -- messages ------------------------------------------------------------------------------
    def on_versions_loaded(self, message: VersionsLoaded) -> None:
        if self.marked not in {v.ref for v in message.versions}:
            self.marked = None
        self.query_one(VersionsTable).show(message.versions, self.marked)
        if not message.versions:
            self.query_one(MetricsView).show_text("No model versions yet: train one on the Train screen (3).")

    def on_versions_table_highlighted(self, message: VersionsTable.Highlighted) -> None:
        self.show_detail()

    def on_job_line_ended(self, message: JobLine.Ended) -> None:
        job = message.job
        result = job.result or {}
        if job.state == JobState.COMPLETED:
            previous = result.get("previous_version")
            was = "its first activation" if previous is None else f"was v{previous}"
            self.post_message(Done(f"{result['active']} is active ({was}); {result['predictions']} predictions stored"))
        elif job.state == JobState.CANCELLED:
            self.post_message(Done(f"cancelled: {job.error or 'nothing changed'}"))
        else:
            self.post_message(Done(job.error or f"{self.busy or 'activation'} {job.state}", error=True))

    def on_done(self, message: Done) -> None:
        self.busy = None
        self.tell(message.text, error=message.error)
        self.reload()

    def tell(self, text: str, *, error: bool = False) -> None:
        """In the status line, and as a notification."""
        self.query_one(JobLine).say(text)
        self.notify(printable(text), severity="error" if error else "information", timeout=8 if error else 5, markup=False)

    def on_activation_refused(self, message: ActivationRefused) -> None:
        self.busy = None
        self.query_one(JobLine).say(message.reason)

        def with_reason(reason: str | None) -> None:
            if reason:
                self.start(f"activating {message.ref} (forced)",
                           lambda: self.activate_version(message.ref, forced=True, reason=reason))

        def answered(force: bool | None) -> None:
            if force:
                self.app.push_screen(PromptDialog(f"Why activate {message.ref} despite its failed gates?",
                                                  placeholder="kept in the activation history"), with_reason)

        self.app.push_screen(ConfirmDialog(f"{message.reason}\n\nActivate {message.ref} anyway?",
                                           yes="Force"), answered)

    # -- what the person sees ------------------------------------------------------------------------
    def show_detail(self) -> None:
        table = self.query_one(VersionsTable)
        view = self.query_one(MetricsView)
        version = table.highlighted
        if version is None:
            return
        marked = table.versions.get(self.marked) if self.marked else None
        if marked is not None and marked.ref != version.ref:
            view.show_comparison(compare_versions(marked, version))
            return
        test = version.metrics.get("test")
        if test:
            view.show_evaluation(version_title(version), Evaluation.from_dict(test), version.meta.get("notes", []))
        else:
            view.show_text(f"{version_title(version)}\nno test metrics stored")

    # -- actions ---------------------------------------------------------------------------------------
    def start(self, what: str, run) -> bool:
        if self.busy:
            self.notify(f"Wait: {self.busy} is still running.", severity="warning")
            return False
        self.busy = what
        self.query_one(JobLine).say(f"{what}…")
        run()
        return True

    def _highlighted(self) -> ModelVersion | None:
        version = self.query_one(VersionsTable).highlighted
        if version is None:
            self.notify("No model version here yet.", severity="warning")
        return version

    def action_activate(self) -> None:
        version = self._highlighted()
        if version is None:
            return
        if version.is_active:
            self.notify(f"{version.ref} is already active.")
            return
        self.start(f"activating {version.ref}", lambda: self.activate_version(version.ref))

    def action_rollback(self) -> None:
        version = self._highlighted()
        if version is not None:
            self.start(f"rolling back {version.name}", lambda: self.activate_version(version.name, rollback=True))

    def action_delete(self) -> None:
        version = self._highlighted()
        if version is None:
            return
        try:
            check_deletable(version)
        except WorkbenchError as error:
            self.tell(str(error), error=True)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.start(f"deleting {version.ref}", lambda: self.delete_version(version.ref))

        self.app.push_screen(ConfirmDialog(f"Delete {version.ref} and its files? This cannot be undone.",
                                           yes="Delete"), answered)

    def action_mark(self) -> None:
        version = self._highlighted()
        if version is None:
            return
        self.marked = None if self.marked == version.ref else version.ref
        table = self.query_one(VersionsTable)
        table.show(list(table.versions.values()), self.marked)
        if self.marked:
            self.notify(f"{self.marked} marked: move to another version to compare them (escape clears).")

    def action_unmark(self) -> None:
        if self.marked:
            self.marked = None
            table = self.query_one(VersionsTable)
            table.show(list(table.versions.values()), None)

    def action_export(self) -> None:
        version = self._highlighted()
        if version is None:
            return

        def chosen(path: str | None) -> None:
            if path:
                self.start(f"exporting {version.ref}", lambda: self.export_version(version.ref, path))

        default = str(Path.cwd() / f"{version.name}-v{version.version}.onnx")
        self.app.push_screen(PromptDialog(f"Export {version.ref} as ONNX to:", default), chosen)

    def action_cancel_activation(self) -> None:
        if not self.query_one(JobLine).cancel():
            self.notify("No activation is running.")
