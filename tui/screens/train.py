"""Train: a form that starts a training job (a process of its own), the selected job's live loss
curve, progress and ETA, the list of jobs, and a finished job's metrics.

Every database read runs in a worker thread and comes back as a message: a timer polls the list
of jobs, and the status line follows the selected job (`JobLine`), so a job started by `train
--detach` or by an earlier session is followed the same way as one started here.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import ContentSwitcher, Footer, Header, Static
from textual.worker import Worker

from engine.concepts import JobState
from engine.errors import NotFound, WorkbenchError
from engine.evaluation.metrics import Evaluation, format_with_ci
from engine.jobs.log import list_jobs, request_cancel
from engine.store.jobs import JobRecord
from engine.training.curve import TrainingCurve, format_duration
from engine.text import printable
from tui.widgets.confirm import ConfirmDialog
from tui.screens.polling import PollingScreen
from tui.widgets.jobline import JobLine
from tui.widgets.jobs import JobsTable
from tui.widgets.losscurve import LossCurve, legend
from tui.widgets.metrics import MetricsView
from tui.widgets.trainform import TrainForm
from tui.workers import ReportsWorkerErrors, in_thread

POLL_S = 0.5
JOB_ROWS = 50


class FormOptions(Message):
    def __init__(self, options: dict) -> None:
        super().__init__()
        self.options = options


class JobsPolled(Message):
    def __init__(self, jobs: list[JobRecord], error: str | None = None) -> None:
        super().__init__()
        self.jobs = jobs
        self.error = error


class JobStarted(Message):
    def __init__(self, job_id: str | None, error: str | None = None) -> None:
        super().__init__()
        self.job_id = job_id
        self.error = error


class JobResult(Message):
    def __init__(self, job_id: str, title: str, evaluation: Evaluation | None, notes: list[str]) -> None:
        super().__init__()
        self.job_id = job_id
        self.title = title
        self.evaluation = evaluation
        self.notes = notes


def form_options(workspace) -> dict:
    from engine.models.kinds import MODEL_KINDS
    from engine.training.auto import AUTO
    from engine.training.launch import feature_choices
    from engine.training.run import DEFAULT_MODEL, default_features

    # auto: the kind and features are chosen by cross-validation; features "auto" is each kind's default
    return {"kinds": [AUTO, *MODEL_KINDS], "features": [AUTO, *feature_choices(workspace)],
            "default_features": {AUTO: AUTO, **{kind: default_features(workspace, kind) for kind in MODEL_KINDS}},
            "tasks": workspace.taxonomies.names(), "default_task": workspace.default_taxonomy_name,
            "default_kind": DEFAULT_MODEL}


def job_line(job: JobRecord, curve: TrainingCurve) -> Text:
    """The selected job on one line: model, state, epoch and ETA (or why it ended), then its id; the
    most useful parts come first, so a narrow terminal cuts only the least useful."""
    params = job.params or {}
    line = Text.assemble((f"{params.get('name', job.kind)} ", "bold"), f"{params.get('model', '')}  ")
    if job.state.is_live:
        last = curve.last
        line.append(job.state, style="bold cyan")
        line.append(f"  epoch {last['epoch']}/{last['total_epochs']}" if last else f"  {job.message or ''}")
        eta = curve.eta_s()
        if eta is not None:
            line.append(f"  ETA {format_duration(eta)}")
    elif job.state == JobState.COMPLETED:
        line.append(job.state, style="green")
        line.append(f"  {(job.result or {}).get('model', '')}")
    else:
        line.append(job.state, style="yellow" if job.state == JobState.CANCELLED else "red")
        line.append(f"  {job.error or ''}")
    line.append(f"  {job.job_id[-6:]}", style="dim")
    line.no_wrap = True
    line.overflow = "ellipsis"
    return line


def job_to_open(jobs: list[JobRecord]) -> JobRecord | None:
    """The job the screen opens on (jobs newest first): a running training job, else the newest
    training job, whose result then shows; other kinds of job (gates, activation …) are only listed."""
    training = [job for job in jobs if job.kind == "train"]
    running = [job for job in training if job.state.is_live]
    return (running or training or [None])[0]


def job_result(workspace, job: JobRecord) -> JobResult:
    """What a finished job left: its registered version's test metrics, or why there is none."""
    from engine.models.registry import resolve

    if job.kind != "train":
        return JobResult(job.job_id, f"{job.kind} job {job.state}{': ' + job.error if job.error else ''} "
                                     "(no training result)", None, [])
    if job.state != JobState.COMPLETED:
        return JobResult(job.job_id, f"{job.state}: {job.error or 'no version was registered'}", None, [])
    result = job.result or {}
    ref = result.get("model", "?")
    try:
        version = resolve(workspace, ref)
        if version.job_id != job.job_id:
            raise NotFound(ref)
    except NotFound:
        test = result.get("test") or {}
        return JobResult(job.job_id, f"{ref} (since deleted): accuracy {format_with_ci(test, 'accuracy')}, "
                                     f"macro-F1 {format_with_ci(test, 'macro_f1')}", None, result.get("notes", []))
    test = version.metrics.get("test")
    title = f"{version.ref} · {version.kind} on {version.spec} · test split"
    return JobResult(job.job_id, title, Evaluation.from_dict(test) if test else None,
                     [*version.meta.get("notes", []), *cv_lines(version.meta.get("auto"), version.metrics.get("cv"))])


def cv_lines(search: dict | None, cv: dict | None) -> list[str]:
    """The model search's table (auto) and the cross-validation, one line per row."""

    def score(metrics: dict, key: str) -> str:
        m = metrics[key]
        return f"{m['mean']:.3f} ({m['low']:.3f}–{m['high']:.3f})"

    lines = []
    for row in (search or {}).get("table", []):
        params = " ".join(f"{k}={v}" for k, v in row["hyperparams"].items())
        outcome = f"macro-F1 {score(row['metrics'], 'macro_f1')}" if "metrics" in row else f"failed: {row['error']}"
        lines.append(f"search {'*' if row.get('chosen') else ' '} {row['kind']} on {row['features']} {params}: {outcome}")
    if cv:
        lines.append(f"cross-validation, {cv['folds']} folds by {cv['grouping']}: macro-F1 {score(cv['metrics'], 'macro_f1')}, "
                     f"accuracy {score(cv['metrics'], 'accuracy')}")
    return lines


class TrainScreen(ReportsWorkerErrors, PollingScreen):
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("x", "cancel_job", "Cancel job"),
        Binding("v", "toggle_view", "Curve/result"),
        Binding("f", "focus_form", "Form"),
        Binding("j", "focus_jobs", "Jobs"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.selected: str | None = None
        self.job: JobRecord | None = None
        self._poller: Worker | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield VerticalScroll(id="train-form-box")
            with Vertical(id="train-main"):
                yield JobLine(id="train-line", message_id="train-status", progress_id="train-progress",
                              describe=job_line)
                with ContentSwitcher(initial="train-curve-box", id="train-view"):
                    with Vertical(id="train-curve-box"):
                        yield Static(legend(), id="train-legend")
                        yield LossCurve(id="train-curve")
                    with VerticalScroll(id="train-result-box"):
                        yield MetricsView(id="train-result")
                yield JobsTable(id="train-jobs")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(JobLine).say(Text("No job selected. Fill in the form and press s to train.", style="dim"))
        self.query_one(LossCurve).show(None)
        self.query_one(JobsTable).focus()
        self.load_form_options()
        self.start_polling(POLL_S)

    # -- reading the workspace (worker threads) ------------------------------------------------
    @in_thread("train-form")
    def load_form_options(self) -> None:
        self.post_message(FormOptions(form_options(self.app.workspace)))

    def poll(self) -> None:
        if self._poller is not None and not self._poller.is_finished:
            return
        self._poller = self.poll_jobs()

    @in_thread("train-poll")
    def poll_jobs(self) -> None:
        try:
            self.post_message(JobsPolled(list_jobs(self.app.workspace, limit=JOB_ROWS)))
        except WorkbenchError as error:
            self.post_message(JobsPolled([], str(error)))

    @in_thread("train-result", exclusive=True)
    def load_result(self, job: JobRecord) -> None:
        try:
            self.post_message(job_result(self.app.workspace, job))
        except WorkbenchError as error:
            self.post_message(JobResult(job.job_id, str(error), None, []))

    @in_thread("train-start")
    def start_job(self, request) -> None:
        from engine.training.launch import start_training

        try:
            self.post_message(JobStarted(start_training(self.app.workspace, request)))
        except WorkbenchError as error:
            self.post_message(JobStarted(None, str(error)))

    @in_thread("train-cancel")
    def cancel_job(self, job_id: str) -> None:
        try:
            record = request_cancel(self.app.workspace, job_id)
        except WorkbenchError as error:
            self.app.call_from_thread(self.notify, str(error), severity="error")
            return
        note = "cancel requested; the job stops at its next check" if record.state.is_live else \
            f"the job had already ended ({record.state})"
        self.app.call_from_thread(self.notify, note)

    # -- messages --------------------------------------------------------------------------------
    def on_form_options(self, message: FormOptions) -> None:
        box = self.query_one("#train-form-box")
        box.remove_children()
        box.mount(TrainForm(**message.options, id="train-form"))

    def on_jobs_polled(self, message: JobsPolled) -> None:
        if message.error:
            self.query_one(JobLine).say(message.error)
            return
        self.query_one(JobsTable).show(message.jobs)
        if self.selected is None:
            opening = job_to_open(message.jobs)
            if opening is not None:
                self.select_job(opening.job_id)

    def on_job_line_updated(self, message: JobLine.Updated) -> None:
        if message.job.job_id != self.selected:
            return  # read before another job was selected
        self.job = message.job
        if message.new_events:
            self.query_one(LossCurve).show(message.line.curve)

    def on_job_line_ended(self, message: JobLine.Ended) -> None:
        if message.job.job_id == self.selected:
            self.load_result(message.job)

    def on_job_result(self, message: JobResult) -> None:
        if message.job_id != self.selected:
            return
        view = self.query_one(MetricsView)
        if message.evaluation is None:
            view.show_text(message.title)
            return
        view.show_evaluation(message.title, message.evaluation, message.notes)
        self.query_one(ContentSwitcher).current = "train-result-box"

    def on_job_started(self, message: JobStarted) -> None:
        form = self.query_one(TrainForm)
        if message.error:
            form.show_error(message.error)
            self.notify(printable(message.error), title="Not started", severity="error", markup=False)
            return
        self.notify(f"started {message.job_id}")
        self.select_job(message.job_id)
        self.poll()  # the new job joins the list now, not at the next tick
        self.query_one(JobsTable).focus()  # the screen's keys (x cancel, v view) work from here

    def on_jobs_table_selected(self, message: JobsTable.Selected) -> None:
        self.select_job(message.job_id)

    def on_train_form_submitted(self, message: TrainForm.Submitted) -> None:
        self.start_job(message.request)

    def select_job(self, job_id: str) -> None:
        if job_id == self.selected:
            return
        self.selected = job_id
        self.job = None
        line = self.query_one(JobLine)
        line.follow(job_id)
        self.query_one(JobsTable).select(job_id)
        self.query_one(LossCurve).show(line.curve)
        self.query_one(MetricsView).show_text("")
        self.query_one(ContentSwitcher).current = "train-curve-box"

    # -- actions -----------------------------------------------------------------------------------
    def action_start(self) -> None:
        forms = self.query(TrainForm)
        if forms:
            forms.first().submit()

    def action_cancel_job(self) -> None:
        job = self.job
        if job is None or not job.state.is_live:
            self.notify("The selected job is not running.", severity="warning")
            return
        name = (job.params or {}).get("name", job.kind)

        def answered(yes: bool | None) -> None:
            if yes:
                self.cancel_job(job.job_id)

        self.app.push_screen(ConfirmDialog(f"Cancel training {name} ({job.job_id[-6:]})?", yes="Cancel job"), answered)

    def action_toggle_view(self) -> None:
        switcher = self.query_one(ContentSwitcher)
        switcher.current = "train-result-box" if switcher.current == "train-curve-box" else "train-curve-box"

    def action_focus_form(self) -> None:
        forms = self.query(TrainForm)
        if forms:
            forms.first().query_one("#train-name").focus()

    def action_focus_jobs(self) -> None:
        self.query_one(JobsTable).focus()
