"""Model commands: train, eval, models (list/show/activate/rollback/delete/export), predict, infer."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from cli.context import JsonOption, TaxonomyOption, WorkersOption, open_workspace
from cli.output import BadArguments, ExitCode, finish, handles_errors, print_json, render_rejections, shown, stderr, stdout
from cli.progress import cancel_on_ctrl_c, progress_bar
from engine.errors import InputError

HYPERPARAMETER_OPTIONS = ("epochs", "lr", "batch_size", "weight_decay", "dropout", "patience", "device", "train_blocks",
                          "mixup")


def _percent(value) -> str:
    return "—" if value is None else f"{value:.1%}"


def _with_ci(metrics: dict | None, key: str) -> str:
    from engine.evaluation.metrics import format_with_ci

    return format_with_ci(metrics, key)


def _batch_size(text: str | None) -> int | str | None:
    """--batch-size: a positive whole number or "auto"."""
    if text is None or text.strip().lower() == "auto":
        return text and "auto"
    if not text.strip().isdigit() or int(text) < 1:
        raise InputError(f"--batch-size must be a positive whole number or auto, not {text!r}")
    return int(text)


@handles_errors
def train_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="Model name; each training adds a version.")],
    model: Annotated[str, typer.Option("--model", "-m", help="auto (default: chosen by grouped cross-validation), "
                                                           "logreg, lgbm, mlp, cnn or finetune (the pretrained aiSFX "
                                                           "network fine-tuned on waveforms).")] = "auto",
    features: Annotated[str | None, typer.Option("--features", "-f",
                                                 help="dsp, mel, wave, onnx:NAME or hybrid:NAME (default: auto tries "
                                                      "dsp, mel and hybrid:aisfx when installed; a kind trains on "
                                                      "hybrid:aisfx when installed, else dsp; mel for cnn, wave for "
                                                      "finetune).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Feature parameter key=value.")] = None,
    dataset: Annotated[Path | None, typer.Option("--dataset", help="Train on a curated folder or an export instead of the workspace's labels.")] = None,
    taxonomy: TaxonomyOption = None,
    window: Annotated[float | None, typer.Option("--window", help="Seconds: long segments (sections) become windows of this length.")] = None,
    min_class_samples: Annotated[int, typer.Option("--min-class-samples", min=1, help="Smaller classes are left out.")] = 10,
    min_confidence: Annotated[float, typer.Option("--min-confidence", min=0.0, max=1.0)] = 0.0,
    split: Annotated[str, typer.Option("--split", help="group: by source/pack (default); clip: by clip.")] = "group",
    val: Annotated[float, typer.Option("--val", min=0.0, max=0.9)] = 0.15,
    test: Annotated[float, typer.Option("--test", min=0.0, max=0.9)] = 0.15,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    augment: Annotated[int, typer.Option("--augment", min=0, help="Augmented copies of each training example.")] = 0,
    weights: Annotated[Path | None, typer.Option("--weights", help="Per-group sample weights from `weights derive`.")] = None,
    ensemble: Annotated[int, typer.Option("--ensemble", min=0, help="With --model auto: average the best K candidates "
                                                                    "on the winner's features (no ONNX export).")] = 0,
    cv: Annotated[int, typer.Option("--cv", min=0, help="Also report K-fold grouped cross-validation (mean and 95% "
                                                        "interval per metric) over the training and validation rows.")] = 0,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1)] = None,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0)] = None,
    batch_size: Annotated[str | None, typer.Option("--batch-size", help="Rows per step, or auto: the kind's default on "
                                                                         "the CPU, a batch that fills the GPU on CUDA.")] = None,
    weight_decay: Annotated[float | None, typer.Option("--weight-decay", min=0.0)] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", min=0.0, max=0.95)] = None,
    patience: Annotated[int | None, typer.Option("--patience", min=1, help="Early-stopping patience.")] = None,
    train_blocks: Annotated[int | None, typer.Option("--train-blocks", min=0, max=4,
                                                     help="finetune: conv blocks trained, from the top (4: all).")] = None,
    mixup: Annotated[float | None, typer.Option("--mixup", min=0.0, help="finetune: mixup Beta alpha (0: off).")] = None,
    no_class_balance: Annotated[bool, typer.Option("--no-class-balance", help="Do not weight classes by rarity.")] = False,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda (torch models).")] = None,
    log: Annotated[list[str] | None, typer.Option(
        "--log", help="Log the run to tensorboard, mlflow or wandb (offline), under the workspace's tracking/ "
                      "folder; repeatable. Each needs its extra: pip install 'workbench[mlflow]'.")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Return the job id at once; the job keeps running.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Train a model version in a job of its own process; follow its loss curve (Ctrl-C, SIGTERM or
    SIGHUP cancels it and exits 130, 143 or 129)."""
    from cli.follow import StopSignals, follow
    from engine.concepts import JobState
    from engine.jobs.log import request_cancel
    from engine.embeddings.aisfx import ensure_installed
    from engine.training.launch import split_hyperparams, start_training
    from engine.training.run import TrainRequest

    given = {"epochs": epochs, "lr": lr, "batch_size": _batch_size(batch_size), "weight_decay": weight_decay, "dropout": dropout,
             "patience": patience, "device": device, "seed": seed, "class_balance": not no_class_balance,
             "train_blocks": train_blocks, "mixup": mixup}
    hyperparams, unused = split_hyperparams(model, given)
    ignored = [f"--{k.replace('_', '-')}" for k in unused if k in HYPERPARAMETER_OPTIONS]
    if ignored:
        stderr.print(f"note: {model} does not use {', '.join(ignored)}")
    request = TrainRequest(name=name, model=model, features=features, feature_params=list(param or []),
                           dataset=str(dataset.expanduser().resolve()) if dataset else None, taxonomy=taxonomy,
                           window_s=window, min_class_samples=min_class_samples, min_confidence=min_confidence,
                           split_by=split, val=val, test=test, seed=seed, augment=augment, hyperparams=hyperparams,
                           weights=str(weights.expanduser().resolve()) if weights else None, cv=cv,
                           ensemble=ensemble, log=list(log or []))
    workspace = open_workspace(ctx)
    with progress_bar() as reporter:
        ensure_installed(workspace, features, reporter)  # the first use of onnx:aisfx / hybrid:aisfx converts it
    if weights:
        from engine.datasets.weights import read_weights

        read_weights(weights)  # a bad weights file fails here, before a job starts
    if detach:
        job_id = start_training(workspace, request)  # a bad name, kind or --features fails here, before a job starts
        finish({"job_id": job_id, "state": JobState.PENDING}, json_out,
               render=lambda: stdout.print(f"started {job_id}; follow it with `workbench --headless jobs follow {job_id}`"))

    def cancel() -> None:
        request_cancel(workspace, job_id)
        with suppress(OSError):  # a terminal that hung up
            stderr.print("[yellow]cancelling…[/]")

    with StopSignals() as signals:  # from the job's start: a signal at any moment cancels it
        job_id = start_training(workspace, request)
        record = follow(workspace, job_id, json_lines=False, on_interrupt=cancel, signals=signals)
    _finish_job(record, json_out, signals.first)


def _finish_job(record: dict, json_out: bool, signum: int | None = None) -> None:
    from cli.follow import exit_code
    from engine.concepts import JobState
    from engine.evaluation.calibration import format_calibration

    state = record["state"]
    result = record.get("result") or {}

    def render() -> None:
        if state == JobState.COMPLETED:
            if result.get("auto"):
                stdout.print(cv_table(result["auto"]["table"], "model search (grouped cross-validation, no test data)"))
            if result.get("cv"):
                stdout.print(cv_table([{**result["cv"], "hyperparams": {}}],
                                      f"{result['cv']['folds']}-fold grouped cross-validation ({result['cv']['grouping']})"))
            test = result.get("test") or {}
            stdout.print(f"[bold]{result.get('model')}[/]: accuracy {_with_ci(test, 'accuracy')}, "
                         f"macro-F1 {_with_ci(test, 'macro_f1')} on {test.get('n', '?')} test examples")
            if calibration := format_calibration(result.get("calibration")):
                stdout.print(f"calibration: {calibration}", markup=False)
            for note in result.get("notes", []):
                stderr.print(f"note: {shown(note)}")
        else:
            stderr.print(f"job {record['job_id']} {state}" + (f": {shown(record['error'])}" if record.get("error") else ""))

    if state == JobState.COMPLETED:
        finish({"job": record}, json_out, render=render)
    if json_out:
        error = {"type": "JobCancelled" if state == JobState.CANCELLED else "JobFailed",
                 "message": record.get("error") or f"job {record['job_id']} {state}"}
        print_json({"ok": False, "exit_code": exit_code(state, signum), "error": error, "job": record})
    else:
        with suppress(OSError):
            render()
    raise typer.Exit(exit_code(state, signum))


def cv_table(rows: list[dict], title: str) -> Table:
    """Cross-validation rows: candidate (kind, features, the hyperparameters in which the rows
    differ), folds, macro-F1 and accuracy means with their 95% intervals (ECE is in --json), seconds."""
    differ = {key for row in rows for key, value in row["hyperparams"].items()
              if any(other["hyperparams"].get(key) != value for other in rows)}
    folds = {row.get("folds") for row in rows}
    if len(folds) == 1 and None not in folds:  # the usual case: said once, in the title
        title = f"{title}, {folds.pop()} folds"
    # Fits 80 columns: names fold onto a second line rather than being cut, a mean sits above its interval.
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("model", no_wrap=True)
    table.add_column("features", overflow="fold")
    table.add_column("hyperparameters", overflow="fold", min_width=15)
    if folds:
        table.add_column("folds", no_wrap=True)
    for column in ("macro-F1", "accuracy"):
        table.add_column(column, width=11)
    table.add_column("s", no_wrap=True, justify="right", min_width=4)
    for row in rows:
        metrics = row.get("metrics") or {}

        def cell(key: str) -> str:
            m = metrics.get(key)
            return f"{m['mean']:.3f} ({m['low']:.2f}–{m['high']:.2f})" if m else ""

        table.add_row("*" if row.get("chosen") else "", row["kind"], shown(row["features"]),
                      " ".join(f"{k}={v}" for k, v in row["hyperparams"].items() if k in differ),
                      *([str(row.get("folds", "—"))] if folds else []),
                      cell("macro_f1") if metrics else shown(row.get("error", "—")),
                      cell("accuracy"), f"{row.get('seconds', 0):.1f}")
    return table


# -- eval ---------------------------------------------------------------------------------------

@handles_errors
def eval_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", "-m", help="NAME (its active version) or NAME@VERSION.")],
    dataset: Annotated[Path, typer.Option("--dataset", help="A curated folder or an exported dataset.")],
    taxonomy: TaxonomyOption = None,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Evaluate a model version on any curated folder or export (accuracy, macro-F1 with 95% CIs, ECE …)."""
    from engine.evaluation.metrics import format_evaluation
    from engine.training.evaluate import evaluate_on_dataset

    workspace = open_workspace(ctx)
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        outcome = evaluate_on_dataset(workspace, model, dataset, taxonomy=taxonomy, workers=workers,
                                      reporter=reporter, cancel=cancel)

    def render() -> None:
        stdout.print(f"{outcome.version.ref} on {outcome.dataset}:")
        stdout.print(format_evaluation(outcome.evaluation), markup=False)
        for note in outcome.notes:
            stderr.print(f"note: {note}", markup=False)
        render_rejections(outcome.rejections)

    finish(outcome.to_dict(), json_out, partial=bool(outcome.rejections), render=render)


# -- models -------------------------------------------------------------------------------------

models_app = typer.Typer(help="Model versions: list, show, activate, roll back, delete, export, verify.", no_args_is_help=True)


@models_app.command("list")
@handles_errors
def models_list(ctx: typer.Context, name: Annotated[str | None, typer.Argument()] = None,
                json_out: JsonOption = False) -> None:
    """Every version (or one model's), with its test accuracy and macro-F1 (95% CI)."""
    from engine.models.registry import list_versions

    versions = list_versions(open_workspace(ctx), name)

    def render() -> None:
        table = Table("model", "kind", "features", "task", "accuracy (95% CI)", "macro-F1 (95% CI)", "created", "")
        for v in versions:
            test = v.metrics.get("test")
            table.add_row(v.ref, v.kind, str(v.spec), v.task, _with_ci(test, "accuracy"), _with_ci(test, "macro_f1"),
                          v.created_at.strftime("%m-%d %H:%M"), "[green]active[/]" if v.is_active else "")
        stdout.print(table)

    finish({"models": [v.to_dict() for v in versions]}, json_out, render=render)


@models_app.command("show")
@handles_errors
def models_show(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
                json_out: JsonOption = False) -> None:
    """A version's details, metrics and activation history."""
    from engine.evaluation.calibration import format_calibration
    from engine.evaluation.metrics import Evaluation, format_evaluation
    from engine.models.registry import activation_history, resolve

    workspace = open_workspace(ctx)
    version = resolve(workspace, ref)
    history = activation_history(workspace, version.name)

    def render() -> None:
        stdout.print(f"[bold]{version.ref}[/] {'(active) ' if version.is_active else ''}{version.kind} on {version.spec}, "
                     f"task {version.task}, job {version.job_id}")
        stdout.print(f"classes: {', '.join(version.label_set)}")
        stdout.print(f"hyperparameters: {version.hyperparams}", markup=False)
        if version.metrics.get("test"):
            stdout.print(format_evaluation(Evaluation.from_dict(version.metrics["test"])), markup=False)
        if calibration := format_calibration(version.metrics.get("calibration")):
            stdout.print(f"calibration: {calibration}", markup=False)
        for entry in history:
            stdout.print(f"{entry['at']}: activated v{entry['version']} (from v{entry['previous_version']}) "
                         f"{entry['reason'] or ''}", markup=False)

    finish({"model": version.to_dict(), "activations": history}, json_out, render=render)


@models_app.command("activate")
@handles_errors
def models_activate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, or NAME@VERSION.")],
    version: Annotated[int | None, typer.Argument(help="Version number.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Kept in the activation history.")] = None,
    no_inference: Annotated[bool, typer.Option("--no-inference", help="Do not re-run inference over the library.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Activate even though its last gate report failed (give --reason).")] = False,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Make a version active and re-run inference over the library (labels are never overwritten).
    A version whose last gate report failed needs --force; the reason is kept in its history."""
    ref = name if version is None else f"{name}@{version}"
    if "@" not in ref:
        raise BadArguments("say which version to activate: `models activate NAME VERSION` or NAME@VERSION")
    workspace = open_workspace(ctx)
    active, previous, predicted = _activate(workspace, ref, reason, False, no_inference, workers, forced=force)
    finish({"active": active.ref, "previous_version": previous, "predictions": predicted}, json_out,
           render=lambda: stdout.print(f"{active.ref} is active ({_was(previous)}); {predicted} predictions stored"))


def _was(previous: int | None) -> str:
    return "its first activation" if previous is None else f"was v{previous}"


def _activate(workspace, ref: str, reason: str | None, rollback: bool, no_inference: bool, workers, *,
              forced: bool = False):
    from engine.services.activation import activate_and_infer

    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        return activate_and_infer(workspace, ref, reason=reason, rollback=rollback, infer=not no_inference,
                                  forced=forced, workers=workers, reporter=reporter, cancel=cancel)


@models_app.command("rollback")
@handles_errors
def models_rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    no_inference: Annotated[bool, typer.Option("--no-inference")] = False,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Activate the version that was active before the current one."""
    workspace = open_workspace(ctx)
    active, previous, predicted = _activate(workspace, name, reason, True, no_inference, workers)
    finish({"active": active.ref, "previous_version": previous, "predictions": predicted}, json_out,
           render=lambda: stdout.print(f"rolled back: {active.ref} is active ({_was(previous)})"))


@models_app.command("delete")
@handles_errors
def models_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name, or NAME@VERSION.")],
    version: Annotated[int | None, typer.Argument()] = None,
    json_out: JsonOption = False,
) -> None:
    """Delete a version and its files (never the active one)."""
    from engine.models.registry import delete

    ref = name if version is None else f"{name}@{version}"
    if "@" not in ref:
        raise BadArguments("say which version to delete: `models delete NAME VERSION` or NAME@VERSION")
    removed = delete(open_workspace(ctx), ref)
    finish({"deleted": removed.ref}, json_out, render=lambda: stdout.print(f"deleted {removed.ref}"))


@models_app.command("export")
@handles_errors
def models_export(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    out: Annotated[Path, typer.Option("--out", "-o")],
    format: Annotated[str, typer.Option("--format")] = "onnx",
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Export a version (ONNX: input 'features', output 'probabilities'; a .json sidecar names the classes,
    taxonomy and features). Written only when the graph matches the model on its held-out split (parity)."""
    from engine.services.model_exchange import export_version

    workspace = open_workspace(ctx)
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        result = export_version(workspace, ref, out, format, workers=workers, reporter=reporter, cancel=cancel)

    def render() -> None:
        stdout.print(f"wrote {shown(str(result.path))} and {shown(result.path.with_suffix('.json').name)}")
        if result.parity is not None:
            stdout.print(result.parity.describe(), markup=False)
        for note in result.notes:
            stderr.print(f"note: {shown(note)}")

    finish(result.to_dict(), json_out, render=render)


@models_app.command("import")
@handles_errors
def models_import(
    ctx: typer.Context,
    model: Annotated[Path, typer.Argument(help="An ONNX model: one float input (a batch of features), "
                                               "output 'probabilities' (batch, classes).")],
    name: Annotated[str, typer.Option("--name", "-n", help="The model name; the import is its next version.")],
    sidecar: Annotated[Path | None, typer.Option("--sidecar", help="The JSON naming classes, taxonomy and "
                                                                   "features (default: MODEL with .json).")] = None,
    taxonomy: TaxonomyOption = None,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Import a model trained elsewhere as a version of NAME, after trying it on a few clips of the
    workspace (it must run and give valid probabilities over the sidecar's classes)."""
    from engine.services.model_exchange import import_version

    imported = import_version(open_workspace(ctx), model, name=name, sidecar_path=sidecar, taxonomy=taxonomy,
                              workers=workers)
    trial = imported.trial

    def render() -> None:
        stdout.print(f"imported {shown(imported.version.ref)}: {len(imported.version.label_set)} classes "
                     f"({shown(', '.join(imported.version.label_set))}) on {imported.version.spec} features, "
                     f"task {shown(imported.version.task)}")
        stdout.print(f"tried on {len(trial.clips)} clips: output {trial.shape[0]}×{trial.shape[1]}, "
                     f"rows sum to {trial.row_sums[0]:.4f}–{trial.row_sums[1]:.4f}")
        for note in imported.notes:
            stderr.print(f"note: {shown(note)}")

    finish(imported.to_dict(), json_out, render=render)


@models_app.command("verify")
@handles_errors
def models_verify(
    ctx: typer.Context,
    ref: Annotated[str | None, typer.Argument(help="NAME (its active version) or NAME@VERSION.")] = None,
    all_versions: Annotated[bool, typer.Option("--all", help="Every version of every model.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Check a version's files against the SHA-256 recorded at registration (and that they load):
    OK, damaged (which file, what) or no hashes recorded. Exit 1 when any is damaged."""
    from engine.models.registry import DAMAGED, OK, list_versions, resolve, verify

    if (ref is None) == (not all_versions):
        raise BadArguments("say which versions to verify: REF or --all (not both)")
    workspace = open_workspace(ctx)
    checks = [verify(v) for v in (list_versions(workspace) if all_versions else [resolve(workspace, ref)])]
    damaged = [c for c in checks if c.status == DAMAGED]

    def render() -> None:
        for c in checks:
            said = f"damaged: {c.file} ({c.problem})" if c.status == DAMAGED else "OK" if c.status == OK else c.status
            stdout.print(f"{c.ref}: {said}", markup=False)

    if not damaged:
        finish({"versions": [c.to_dict() for c in checks]}, json_out, render=render)
    message = "model files damaged: " + "; ".join(f"{c.ref}: {c.file} ({c.problem})" for c in damaged)
    if json_out:
        print_json({"ok": False, "exit_code": int(ExitCode.FAILED), "versions": [c.to_dict() for c in checks],
                    "error": {"type": "ModelFilesDamaged", "message": message, "busy": False}})
    else:
        render()
    raise typer.Exit(int(ExitCode.FAILED))


# -- predict / infer ------------------------------------------------------------------------------

@handles_errors
def predict_command(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Audio files.")],
    model: Annotated[str, typer.Option("--model", "-m", help="NAME (active version) or NAME@VERSION.")],
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many labels to list.")] = 3,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Label, confidence and top-k per file; a section model returns timed sections of a long track."""
    from engine.inference import predict_files

    workspace = open_workspace(ctx)
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        version, predictions, rejections = predict_files(workspace, model, files, top=top, workers=workers,
                                                         reporter=reporter, cancel=cancel)

    def render() -> None:
        for p in predictions:
            tops = ", ".join(f"{t['label']} {t['confidence']:.2f}" for t in p.top)
            stdout.print(f"{shown(p.path)}: [bold]{shown(p.label)}[/] ({shown(tops)})")
            for s in p.sections or []:
                beats = f" beats {s['start_beat']:g}–{s['end_beat']:g}" if "start_beat" in s else ""
                stdout.print(f"  {s['start_s']:8.2f}–{s['end_s']:8.2f} s{beats}  {s['label']} {s['confidence']:.2f}")
        render_rejections(rejections)

    finish({"model": version.ref, "predictions": [p.to_dict() for p in predictions],
            "rejections": [r.to_dict() for r in rejections]}, json_out, partial=bool(rejections), render=render)


@handles_errors
def infer_command(
    ctx: typer.Context,
    library: Annotated[bool, typer.Option("--library", help="Every clip in the workspace.")] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Default: every active model.")] = None,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Store predictions for every clip of the library (never touching labels)."""
    from engine.inference import infer_library
    from engine.models.registry import list_versions

    if not library:
        raise BadArguments("say what to run over: --library (for files, use `predict`)")
    workspace = open_workspace(ctx)
    refs = [model] if model else [v.ref for v in list_versions(workspace) if v.is_active]
    if not refs:
        raise InputError("no active model; activate one (`models activate NAME VERSION`) or pass --model")
    results, rejections = [], []
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        for ref in refs:
            version, count, failed = infer_library(workspace, ref, workers=workers, reporter=reporter, cancel=cancel)
            results.append({"model": version.ref, "predictions": count})
            rejections += failed
    finish({"results": results, "rejections": [r.to_dict() for r in rejections]}, json_out, partial=bool(rejections),
           render=lambda: [stdout.print(f"{r['model']}: {r['predictions']} predictions stored") for r in results])


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("eval")(eval_command)
    app.add_typer(models_app, name="models")
    app.command("predict")(predict_command)
    app.command("infer")(infer_command)
