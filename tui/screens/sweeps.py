"""Sweeps: a sweep's trials live (state, parameters, validation macro-F1, time), its best-so-far
curve and parameter importances; start a new sweep, cancel or resume one; the selected trial's loss
curve, followed as the Train screen follows a training job (each trial is one).

A timer asks a worker thread to read the sweep (its Optuna study, `sweeps/summary.py`, and its
worker jobs); the answer comes back as a message, so the event loop never waits on a file or the
database. `n` goes to the next sweep of the workspace.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker
from textual_plotext import PlotextPlot

from engine.errors import WorkbenchError
from engine.store.jobs import JobRecord
from engine.sweeps.summary import SweepSummary, TrialRow, best_so_far
from engine.text import printable
from engine.training.curve import TrainingCurve, format_duration
from tui.widgets.confirm import ConfirmDialog
from tui.screens.polling import PollingScreen
from tui.widgets.jobline import JobLine
from tui.widgets.losscurve import LossCurve, legend
from tui.widgets.sweepform import SweepDialog
from tui.workers import ReportsWorkerErrors, in_thread

POLL_S = 1.0
STATE_STYLES = {"complete": "green", "pruned": "dim", "failed": "red", "cancelled": "yellow",
                "running": "bold cyan", "waiting": ""}
COLUMNS = (("trial", 6), ("state", 9), ("params", 30), ("val F1", 6), ("time", 7))


class SweepPolled(Message):
    def __init__(self, names: list[str], summary: SweepSummary | None, workers: list[JobRecord],
                 error: str | None = None, budget: int | None = None) -> None:
        super().__init__()
        self.names, self.summary, self.workers, self.error = names, summary, workers, error
        self.budget = budget  # a sampler sweep's trials in all


class SweepStarted(Message):
    def __init__(self, name: str, what: str, job_ids: list[str], error: str | None = None) -> None:
        super().__init__()
        self.name, self.what, self.job_ids, self.error = name, what, job_ids, error


def read_sweep(workspace, name: str | None) -> SweepPolled:
    """The workspace's sweeps and, for `name` (else the newest), its summary and worker jobs."""
    from engine.sweeps import study as sweeps
    from engine.sweeps.launch import sweep_jobs
    from engine.sweeps.summary import summarise

    names = sweeps.sweep_names(workspace)
    name = name if name in names else (names[0] if names else None)
    if name is None:
        return SweepPolled(names, None, [])
    study, config = sweeps.open_sweep(workspace, name, None)
    return SweepPolled(names, summarise(workspace, study, config), sweep_jobs(workspace, name), budget=config.trials)


def params_text(params: dict) -> str:
    """A trial's parameters, names sorted as in its grid key, a sampled float to 4 significant digits."""
    from engine.sweeps.space import format_value

    if not params:
        return "—"
    return printable(",".join(f"{name}={f'{value:.4g}' if isinstance(value, float) else format_value(value)}"
                              for name, value in sorted(params.items())))


def trial_row(trial: TrialRow, best: int | None) -> tuple:
    return (f"{trial.number}{' ★' if trial.number == best else ''}", Text(trial.state, style=STATE_STYLES[trial.state]),
            Text(params_text(trial.params)), "—" if trial.val_macro_f1 is None else f"{trial.val_macro_f1:.3f}",
            seconds_text(trial.seconds))


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.1f} s" if seconds < 60 else format_duration(seconds)


def sweep_line(summary: SweepSummary, workers: list[JobRecord], budget: int | None = None) -> Text:
    """The sweep on one line: name, whether a worker runs, its counts, the best trial."""
    running = any(job.state.is_live for job in workers)
    line = Text.assemble((f"{summary.name} ", "bold"), f"{summary.sampler}  ",
                         ("running" if running else "stopped", "bold cyan" if running else "dim"), "  ")
    counts = summary.to_dict()["counts"]
    line.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no trials yet")
    if summary.grid_points:
        line.append(f" of {summary.grid_points} grid points")
    elif budget:
        line.append(f" of {budget} trials")
    best = next((t for t in summary.trials if t.number == summary.best), None)
    if best is not None:
        line.append(f"  best #{best.number} {best.val_macro_f1:.3f}", style="green")
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


def trial_job_line(job: JobRecord, curve: TrainingCurve) -> Text:
    params = job.params or {}
    line = Text.assemble((f"trial {params.get('trial', '?')} ", "bold"), f"{params.get('model', '')}  ")
    last = curve.last
    line.append(str(job.state), style="bold cyan" if job.state.is_live else "")
    if last:
        line.append(f"  epoch {last['epoch']}/{last['total_epochs']}")
    if job.error and not job.state.is_live:
        line.append(f"  {job.error}")
    line.append(f"  {job.job_id[-6:]}", style="dim")
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


class BestSoFar(PlotextPlot):
    """The best validation macro-F1 so far, trial by trial, and the parameters' importances below it."""

    points = 0

    def show(self, summary: SweepSummary | None) -> None:
        plt = self.plt
        plt.clear_figure()
        curve = best_so_far(summary.trials) if summary else []
        self.points = len(curve)
        if not curve:
            plt.title("best so far: no complete trial")
        else:
            plt.title("best val macro-F1 so far")
            x, y = [n for n, _ in curve], [v for _, v in curve]
            plt.plot(x, y, color="green", marker="braille" if len(x) > 1 else "dot")
            plt.ylim(max(0.0, min(y) - 0.05), 1.0)
            if len(x) <= 6:
                plt.xticks(x)
            plt.xlabel("trial")
        self.refresh()


def importances_text(summary: SweepSummary | None) -> Text:
    if summary is None or not summary.importances:
        return Text("importances: after 2 complete trials", style="dim")
    return Text("importance " + "  ".join(f"{k} {v:.2f}" for k, v in summary.importances.items()),
                no_wrap=True, overflow="ellipsis")


class SweepsScreen(ReportsWorkerErrors, PollingScreen):
    BINDINGS = [
        Binding("s", "start", "New sweep"),
        Binding("x", "cancel_sweep", "Cancel"),
        Binding("r", "resume", "Resume"),
        Binding("n", "next_sweep", "Next sweep"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sweep: str | None = None  # the sweep shown
        self.summary: SweepSummary | None = None
        self.sweep_workers: list[JobRecord] = []
        self.names: list[str] = []
        self.trial_job: str | None = None  # the selected trial's training job
        self._poller: Worker | None = None
        self._shown: list[int] = []
        self._waiting: int | None = None  # the selected trial, while it has no job

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="sweeps-main"):
            yield Static(Text("No sweep yet: press s to start one.", style="dim"), id="sweeps-line")
            yield DataTable(id="sweeps-trials", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="sweeps-bottom"):
                with Vertical(id="sweeps-trial-box"):
                    yield JobLine(id="sweeps-trial-line", message_id="sweeps-trial-status",
                                  progress_id="sweeps-trial-progress", describe=trial_job_line)
                    yield Static(legend(), id="sweeps-legend")
                    yield LossCurve(id="sweeps-curve")
                with Vertical(id="sweeps-side"):
                    yield BestSoFar(id="sweeps-best")
                    yield Static(importances_text(None), id="sweeps-importances")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for title, width in COLUMNS:
            table.add_column(title, width=width, key=title)
        self.query_one(LossCurve).show(None)
        self.query_one(BestSoFar).show(None)
        self.query_one(JobLine).say(Text("no trial selected", style="dim"))
        table.focus()
        self.start_polling(POLL_S)

    # -- reading and writing the workspace (worker threads) ---------------------------------------
    def poll(self) -> None:
        if self._poller is not None and not self._poller.is_finished:
            return
        self._poller = self.read(self.sweep)

    @in_thread("sweeps-poll")
    def read(self, name: str | None) -> None:
        try:
            self.post_message(read_sweep(self.app.workspace, name))
        except WorkbenchError as error:
            self.post_message(SweepPolled(self.names, None, [], str(error)))

    @in_thread("sweeps-start")
    def launch(self, name: str, what: str, config=None) -> None:
        from engine.sweeps.launch import resume_sweep, start_sweep

        try:
            job_ids = start_sweep(self.app.workspace, config) if config is not None else \
                resume_sweep(self.app.workspace, name)
            self.post_message(SweepStarted(name, what, job_ids))
        except WorkbenchError as error:
            self.post_message(SweepStarted(name, what, [], str(error)))

    @in_thread("sweeps-cancel")
    def cancel(self, name: str) -> None:
        from engine.sweeps.launch import cancel_sweep

        try:
            cancelled = cancel_sweep(self.app.workspace, name)
        except WorkbenchError as error:
            self.app.call_from_thread(self.notify, printable(str(error)), severity="error", markup=False)
            return
        note = (f"cancel requested for {len(cancelled)} worker(s); their trials stop at the next epoch" if cancelled
                else f"sweep {name} is not running")
        self.app.call_from_thread(self.notify, note, markup=False)

    # -- messages ------------------------------------------------------------------------------------
    def on_sweep_polled(self, message: SweepPolled) -> None:
        self.names = message.names
        line = self.query_one("#sweeps-line", Static)
        if message.error:
            line.update(Text(printable(message.error), style="red"))
            return
        if message.summary is None:
            return
        self.sweep, self.summary, self.sweep_workers = message.summary.name, message.summary, message.workers
        line.update(sweep_line(message.summary, message.workers, message.budget))
        self.show_trials(message.summary)
        self.query_one(BestSoFar).show(message.summary)
        self.query_one("#sweeps-importances", Static).update(importances_text(message.summary))

    def show_trials(self, summary: SweepSummary) -> None:
        table = self.query_one(DataTable)
        numbers = [t.number for t in summary.trials]
        if numbers != self._shown:
            cursor = table.cursor_row
            table.clear()
            for trial in summary.trials:
                table.add_row(*trial_row(trial, summary.best), key=str(trial.number))
            self._shown = numbers
            if numbers:
                table.move_cursor(row=min(max(cursor, 0), len(numbers) - 1))
        else:
            for trial in summary.trials:
                for (title, _), value in zip(COLUMNS, trial_row(trial, summary.best)):
                    table.update_cell(str(trial.number), title, value)
        self.follow_selected()

    def selected_trial(self) -> TrialRow | None:
        table = self.query_one(DataTable)
        if self.summary is None or not self._shown or table.cursor_row < 0:
            return None
        number = self._shown[min(table.cursor_row, len(self._shown) - 1)]
        return next((t for t in self.summary.trials if t.number == number), None)

    def follow_selected(self) -> None:
        """Follow the highlighted trial's training job (a trial gets one once a worker claims it)."""
        trial = self.selected_trial()
        if trial is None:
            return
        line = self.query_one(JobLine)
        if trial.job_id is None:  # waiting for a worker to claim it
            if self.trial_job is not None or self._waiting != trial.number:
                self.trial_job, self._waiting = None, trial.number
                line.pause()
                line.say(Text(f"trial {trial.number} {trial.state}: no training job yet", style="dim"))
                self.query_one(LossCurve).show(None)
            return
        if trial.job_id == self.trial_job:
            return
        self.trial_job, self._waiting = trial.job_id, None
        line.follow(trial.job_id)
        self.query_one(LossCurve).show(line.curve)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.follow_selected()

    def on_job_line_updated(self, message: JobLine.Updated) -> None:
        if message.job.job_id == self.trial_job and message.new_events:
            self.query_one(LossCurve).show(message.line.curve)

    def on_sweep_started(self, message: SweepStarted) -> None:
        if message.error:
            self.notify(printable(message.error), title=f"{message.name} not {message.what}", severity="error",
                        markup=False)
            return
        self.notify(f"{message.name} {message.what}: {', '.join(j[-6:] for j in message.job_ids)}", markup=False)
        if message.name != self.sweep:
            self.show_sweep(message.name)
        self.poll()

    def show_sweep(self, name: str) -> None:
        self.sweep, self.summary, self._shown, self.trial_job, self._waiting = name, None, [], None, None
        self.query_one(DataTable).clear()
        self.query_one(JobLine).pause()
        self.query_one(JobLine).say(Text("no trial selected", style="dim"))
        self.query_one(LossCurve).show(None)
        self.query_one("#sweeps-line", Static).update(Text(f"{name}: reading…", style="dim"))
        self.poll()

    # -- actions ---------------------------------------------------------------------------------------
    def action_start(self) -> None:
        def answered(config) -> None:
            if config is not None:
                self.launch(config.name, "started", config)

        self.app.push_screen(SweepDialog(), answered)

    def action_cancel_sweep(self) -> None:
        name = self.sweep
        if name is None or not any(job.state.is_live for job in self.sweep_workers):
            self.notify("The sweep shown is not running.", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.cancel(name)

        self.app.push_screen(ConfirmDialog(f"Cancel sweep {name}? Its running trials end cancelled; "
                                           "r resumes it.", yes="Cancel sweep"), answered)

    def action_resume(self) -> None:
        if self.sweep is None:
            self.notify("No sweep to resume: press s to start one.", severity="warning")
            return
        self.launch(self.sweep, "resumed")

    def action_next_sweep(self) -> None:
        if len(self.names) < 2:
            self.notify("This workspace has no other sweep.", severity="warning")
            return
        at = self.names.index(self.sweep) if self.sweep in self.names else -1
        self.show_sweep(self.names[(at + 1) % len(self.names)])
