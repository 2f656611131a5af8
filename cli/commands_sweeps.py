"""Sweep commands: run (grid or sampler, resumable), worker, summary, promote."""

from __future__ import annotations

import time
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.context import JsonOption, TaxonomyOption, open_workspace
from cli.output import finish, handles_errors, print_json, shown, stderr, stdout

sweep_app = typer.Typer(help="Hyperparameter sweeps: grids and Optuna samplers over training jobs.",
                        no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="The sweep's name.")]
StorageOption = Annotated[str | None, typer.Option(
    "--storage", help="postgresql://USER@HOST/DB to share the sweep between processes and boxes "
                      "(default: a journal file in the workspace, sweeps/NAME.journal).")]
HeartbeatOption = Annotated[int, typer.Option("--heartbeat", min=1, help="Seconds between a trial's heartbeats (--storage).")]
GraceOption = Annotated[int, typer.Option("--grace", min=1, help="Seconds of silence after which a trial is failed and retried (--storage).")]
HYPERPARAMETERS = ("epochs", "lr", "batch_size", "patience", "device")


def _params_text(params: dict) -> str:
    from engine.sweeps.space import point_key

    return point_key(params) if params else "—"


def _f1(value) -> str:
    return "—" if value is None else f"{value:.3f}"


@sweep_app.command("run")
@handles_errors
def sweep_run(
    ctx: typer.Context,
    name: NameArgument,
    grid: Annotated[list[str] | None, typer.Option("--grid", help="NAME=V1,V2,…: every combination is a trial.")] = None,
    space: Annotated[list[str] | None, typer.Option(
        "--space", help="NAME=categorical(a,b)|uniform(lo,hi)|loguniform(lo,hi)|int(lo,hi)|logint(lo,hi)")] = None,
    sampler: Annotated[str | None, typer.Option("--sampler", help="grid (with --grid), tpe (with --space) or random.")] = None,
    trials: Annotated[int | None, typer.Option("--trials", min=1, help="Trials of a tpe or random sweep, in all.")] = None,
    prune: Annotated[str, typer.Option("--prune", help="none, median or hyperband (on per-epoch validation accuracy).")] = "none",
    model_name: Annotated[str | None, typer.Option("--name", "-n", help="Model name `promote` registers under (default: the sweep's, - as _).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="mlp (default), logreg, lgbm or cnn, unless the grid or space sets it.")] = "mlp",
    features: Annotated[str | None, typer.Option("--features", "-f", help="As for train.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Feature parameter key=value.")] = None,
    dataset: Annotated[Path | None, typer.Option("--dataset", help="As for train.")] = None,
    taxonomy: TaxonomyOption = None,
    window: Annotated[float | None, typer.Option("--window")] = None,
    min_class_samples: Annotated[int, typer.Option("--min-class-samples", min=1)] = 10,
    split: Annotated[str, typer.Option("--split")] = "group",
    val: Annotated[float, typer.Option("--val", min=0.0, max=0.9)] = 0.15,
    test: Annotated[float, typer.Option("--test", min=0.0, max=0.9)] = 0.15,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1)] = None,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1)] = None,
    patience: Annotated[int | None, typer.Option("--patience", min=1)] = None,
    device: Annotated[str | None, typer.Option("--device")] = None,
    log: Annotated[str | None, typer.Option("--log", help="Passed to each trial's training as `train --log`.")] = None,
    storage: StorageOption = None,
    parallel: Annotated[int, typer.Option("--parallel", min=1, help="Worker processes on this box.")] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the trials (and which are done); run nothing.")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="Delete the sweep's trials and start over.")] = False,
    rerun: Annotated[str | None, typer.Option("--rerun", help="Run one grid point again: 'lr=1e-3,batch_size=64'.")] = None,
    heartbeat: HeartbeatOption = 10,
    grace: GraceOption = 30,
    detach: Annotated[bool, typer.Option("--detach", help="Return the job ids at once; the workers keep running.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Run a sweep: each trial a training job, scored on validation macro-F1. Run it again to resume
    (finished trials are skipped). Ctrl-C cancels the trials in hand and exits 130."""
    from engine.sweeps.launch import check_config, prepare_study, start_workers
    from engine.sweeps.space import parse_grid, parse_space
    from engine.sweeps.study import SweepConfig
    from engine.training.run import TrainRequest

    given = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "patience": patience, "device": device}
    hyperparams = {k: v for k, v in given.items() if v is not None}  # each trial keeps those its kind takes
    request = TrainRequest(name=model_name or name.replace("-", "_"), model=model, features=features, feature_params=list(param or []),
                           dataset=str(dataset.expanduser().resolve()) if dataset else None, taxonomy=taxonomy,
                           window_s=window, min_class_samples=min_class_samples, split_by=split, val=val, test=test,
                           seed=seed, hyperparams=hyperparams)
    parsed_grid, parsed_space = parse_grid(list(grid or [])), parse_space(list(space or []))
    config = SweepConfig(name=name, sampler=sampler or ("grid" if parsed_grid else "tpe"), grid=parsed_grid,
                         space=[d.to_dict() for d in parsed_space], trials=trials, prune=prune, seed=seed,
                         request=request.__dict__, log=log)
    workspace = open_workspace(ctx)
    if dry_run:
        _dry_run(workspace, config, check_config(workspace, config), storage, reset, json_out)
    counts = prepare_study(workspace, config, storage, reset=reset, rerun=rerun, heartbeat_s=heartbeat, grace_s=grace)
    if counts and not counts["enqueued"] and not counts["pending"]:
        _summary(workspace, name, storage, json_out, note=f"all {counts['done']} grid points are done; "
                 "--rerun POINT redoes one, --reset starts over")
    job_ids = start_workers(workspace, name, storage, parallel, heartbeat_s=heartbeat, grace_s=grace)
    if detach:
        finish({"sweep": name, "job_ids": job_ids, "grid": counts}, json_out,
               render=lambda: stdout.print(f"started {', '.join(job_ids)}; `workbench --headless sweep summary {name}` "
                                           "shows its trials"))
    _follow_workers(workspace, name, storage, job_ids, json_out)


@sweep_app.command("worker")
@handles_errors
def sweep_worker(ctx: typer.Context, name: NameArgument, storage: StorageOption = None,
                 heartbeat: HeartbeatOption = 10, grace: GraceOption = 30,
                 detach: Annotated[bool, typer.Option("--detach")] = False, json_out: JsonOption = False) -> None:
    """Join a running sweep (from this or another box) with one more worker job."""
    from engine.sweeps.launch import start_workers

    workspace = open_workspace(ctx)
    job_ids = start_workers(workspace, name, storage, 1, heartbeat_s=heartbeat, grace_s=grace)
    if detach:
        finish({"sweep": name, "job_ids": job_ids}, json_out, render=lambda: stdout.print(f"started {job_ids[0]}"))
    _follow_workers(workspace, name, storage, job_ids, json_out)


def _dry_run(workspace, config, points: list[dict], storage: str | None, reset: bool, json_out: bool) -> None:
    from engine.errors import NotFound
    from engine.sweeps import study as sweeps
    from engine.sweeps.space import point_key

    done: set[str] = set()
    if not reset:
        with suppress(NotFound):
            study, _ = sweeps.open_sweep(workspace, config.name, storage)
            done = {t.user_attrs.get(sweeps.GRID_POINT) for t in study.get_trials(deepcopy=False)
                    if t.state.name in sweeps.DONE}
    rows = [{"params": p, "point": point_key(p), "done": point_key(p) in done} for p in points]

    def render() -> None:
        if config.sampler == "grid":
            stdout.print(f"{config.name}: {len(rows)} trials, {sum(r['done'] for r in rows)} done; nothing run")
            for row in rows:
                stdout.print(f"  {row['point']}{'  (done)' if row['done'] else ''}", markup=False)
        else:
            stdout.print(f"{config.name}: {config.trials} {config.sampler} trials over "
                         f"{', '.join(d['name'] for d in config.space)}; nothing run", markup=False)

    finish({"sweep": config.name, "sampler": config.sampler, "trials": rows if config.sampler == "grid" else config.trials,
            "space": config.space, "dry_run": True}, json_out, render=render)


def _follow_workers(workspace, name: str, storage: str | None, job_ids: list[str], json_out: bool) -> None:
    """Print each trial as a worker finishes it; the first Ctrl-C (SIGTERM, SIGHUP) cancels the
    workers, whose trials in hand end cancelled; a second stops waiting."""
    from cli.follow import StopSignals, exit_code
    from engine.concepts import JobState
    from engine.jobs.follow import POLL_S
    from engine.jobs.log import get_job, job_events, request_cancel

    seen = {job_id: 0 for job_id in job_ids}
    cancelled = False
    with StopSignals() as signals:
        while True:
            jobs = [get_job(workspace, job_id) for job_id in job_ids]
            for job_id in job_ids:
                for event in job_events(workspace, job_id, seen[job_id]):
                    seen[job_id] = event.seq
                    if event.kind == "trial" and not json_out:
                        with suppress(OSError):
                            stderr.print(f"trial {event.data['trial']}: {event.data['outcome']} "
                                         f"({event.data['done']} done)", markup=False)
            if all(job.state.is_final for job in jobs) or len(signals.received) > 1:
                break
            if signals.received and not cancelled:
                cancelled = True
                for job in jobs:
                    request_cancel(workspace, job.job_id)
                with suppress(OSError):
                    stderr.print("[yellow]cancelling…[/]")
            time.sleep(POLL_S)
    states = [job.state for job in jobs]
    worst = next((s for s in (JobState.FAILED, JobState.INTERRUPTED, JobState.CANCELLED) if s in states),
                 JobState.COMPLETED if all(s == JobState.COMPLETED for s in states) else JobState.RUNNING)
    code = exit_code(worst, signals.first)
    _summary(workspace, name, storage, json_out, code=code, jobs=[job.to_dict() for job in jobs])


def _summary(workspace, name: str, storage: str | None, json_out: bool, *, code: int = 0, note: str | None = None,
             jobs: list | None = None) -> None:
    from engine.sweeps import study as sweeps
    from engine.sweeps.summary import summarise

    study, config = sweeps.open_sweep(workspace, name, storage)
    summary = summarise(workspace, study, config)

    def render() -> None:
        table = Table("trial", "params", "val macro-F1", "val acc", "epochs", "time", "state", "note", title=name)
        for t in summary.trials:
            best = " ★" if t.number == summary.best else ""
            table.add_row(f"{t.number}{best}", shown(_params_text(t.params)), _f1(t.val_macro_f1), _f1(t.val_accuracy),
                          "—" if t.epochs is None else str(t.epochs), "—" if t.seconds is None else f"{t.seconds:.1f} s",
                          t.state, shown(t.note or ""))
        stdout.print(table)
        counts = summary.to_dict()["counts"]
        stdout.print(", ".join(f"{n} {s}" for s, n in counts.items() if n)
                     + (f" of {summary.grid_points} grid points" if summary.grid_points else ""))
        if summary.importances:
            stdout.print("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.importances.items()), markup=False)
        for line in ([note] if note else []):
            stderr.print(f"note: {line}", markup=False)

    document = {"sweep": summary.to_dict(), **({"jobs": jobs} if jobs is not None else {})}
    if code == 0:
        finish(document, json_out, render=render)
    if json_out:
        print_json({"ok": False, "exit_code": code, "error": {"type": "SweepStopped", "message": "sweep stopped"},
                    **document})
    else:
        with suppress(OSError):
            render()
    raise typer.Exit(code)


@sweep_app.command("summary")
@handles_errors
def sweep_summary(ctx: typer.Context, name: NameArgument, storage: StorageOption = None,
                  json_out: JsonOption = False) -> None:
    """The sweep's trials: parameters, validation macro-F1, epochs, time, state; and parameter importances."""
    _summary(open_workspace(ctx), name, storage, json_out)


@sweep_app.command("promote")
@handles_errors
def sweep_promote(
    ctx: typer.Context,
    name: NameArgument,
    if_better: Annotated[bool, typer.Option("--if-better", help="Register only when it beats the active version "
                                                                "(paired bootstrap, 95% CI of the macro-F1 difference above 0).")] = False,
    activate: Annotated[bool, typer.Option("--activate", help="Activate the registered version (gates apply).")] = False,
    storage: StorageOption = None,
    json_out: JsonOption = False,
) -> None:
    """Evaluate the sweep's best trial (chosen on validation) on the test split, once; register it
    (and with --activate, activate it) if it passes."""
    from cli.progress import cancel_on_ctrl_c, progress_bar
    from engine.services.activation import activate_and_infer
    from engine.sweeps.promote import promote

    workspace = open_workspace(ctx)
    outcome = promote(workspace, name, storage, if_better=if_better)
    document = outcome.to_dict()
    if activate and outcome.registered:
        with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
            active, _, predicted = activate_and_infer(workspace, outcome.registered, reason=f"sweep {name} promote",
                                                      reporter=reporter, cancel=cancel)
        document["activated"] = active.ref

    def render() -> None:
        test = outcome.test
        stdout.print(f"trial {outcome.trial} ({shown(_params_text(outcome.params))}): val macro-F1 "
                     f"{outcome.val_macro_f1:.3f}; test macro-F1 {test['macro_f1']:.3f} on {test['n']} examples")
        stdout.print(shown(outcome.reason))
        if document.get("activated"):
            stdout.print(f"{document['activated']} is active")

    finish(document, json_out, render=render)


def register(app: typer.Typer) -> None:
    app.add_typer(sweep_app, name="sweep")
