"""One training job, in its own process: preparing → training → evaluating → completed.

Validation drives early stopping; the test split is used once, for the final report. The model
is saved into the job's run folder and only registered (moved into models/) once everything
succeeded, so a failed, cancelled or killed job never leaves a registered version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from engine.concepts import JobState, Split
from engine.errors import Cancelled, InputError
from engine.features.spec import FeatureSpec, parse_params
from engine.jobs.kinds import job_kind
from engine.jobs.log import JobLog
from engine.models.kinds import ENSEMBLE
from engine.progress import CancelToken
from engine.training.auto import AUTO, PREFERRED_EMBEDDING
from engine.training.data import TrainingData, training_data
from engine.training.tracking import ExperimentLog, final_metrics, open_experiment_log

# The default: choose kind, features and hyperparameters by grouped cross-validation (training/auto.py).
# Measured with bench/bench_generalisation.py (train on some packs, test on unseen ones, synthetic
# and real Debian drum packs): mlp on hybrid aiSFX + dsp features generalised best of the fixed
# choices, mlp on dsp best without the embedding; LightGBM and the CNN memorised packs.
DEFAULT_MODEL = AUTO
# what an experiment logger records of the request, besides the model kind, features and hyperparameters
LOGGED_REQUEST_FIELDS = ("split_by", "val", "test", "seed", "augment", "min_class_samples", "min_confidence",
                         "window_s", "dataset", "weights")


def default_features(workspace, model: str) -> str:
    """mel for the CNN, wave for finetune; else hybrid:aisfx when that embedding is installed, else
    dsp (what an explicit kind trains on without --features)."""
    if model == "cnn":
        return "mel"
    if model == "finetune":
        return "wave"
    return f"hybrid:{PREFERRED_EMBEDDING}" if (workspace.embeddings_dir / f"{PREFERRED_EMBEDDING}.onnx").is_file() else "dsp"


@dataclass
class TrainRequest:
    """What `train` was asked to do; stored as the job's params."""

    name: str
    model: str = DEFAULT_MODEL
    features: str | None = None
    feature_params: list[str] = field(default_factory=list)
    dataset: str | None = None
    taxonomy: str | None = None
    window_s: float | None = None
    min_class_samples: int = 10
    min_confidence: float = 0.0
    split_by: str = "group"
    val: float = 0.15
    test: float = 0.15
    seed: int = 0
    augment: int = 0
    hyperparams: dict = field(default_factory=dict)
    weights: str | None = None  # a `weights derive` file: per-group sample weights for the training rows
    cv: int = 0  # grouped cross-validation folds reported before the final training (0: none)
    ensemble: int = 0  # with model "auto": average the best K candidates on the winner's features (0: the winner alone)
    log: list[str] = field(default_factory=list)  # experiment loggers: tensorboard, mlflow, wandb (tracking.py)

    def spec(self, workspace) -> FeatureSpec:
        return FeatureSpec.parse(self.features or default_features(workspace, self.model),
                                 parse_params(self.feature_params)).with_embedding_defaults()

    def with_task_defaults(self, workspace) -> TrainRequest:
        """The request with what its taxonomy implies filled in: a section taxonomy's window
        (`window_s` in its TOML) unless one was given, and for windows, dsp statistics over the
        whole window instead of its first 1.5 s."""
        if self.dataset is not None:
            return self
        window_s = self.window_s if self.window_s is not None else workspace.taxonomy(self.taxonomy).window_s
        params = list(self.feature_params)
        if window_s is not None and not any(p.split("=", 1)[0].endswith("region_s") for p in params):
            kind = self.spec(workspace).kind
            if kind in ("dsp", "hybrid"):
                params.append("region_s=none" if kind == "dsp" else "dsp.region_s=none")
        return replace(self, window_s=window_s, feature_params=params)


class JobCallback:
    """Turns epochs into job events (and experiment-log epochs, when given one); training stops when
    the job's cancel token says so."""

    def __init__(self, job: JobLog, cancel: CancelToken, experiment: ExperimentLog | None = None) -> None:
        self.job = job
        self.cancel = cancel
        self.experiment = experiment
        self.epochs_seen = 0
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, total_epochs, train_loss, val_loss, val_metric) -> None:
        self.epochs_seen = epoch
        self.write_epoch(self.epoch_data(epoch, total_epochs, train_loss, val_loss, val_metric))
        if self.experiment is not None:
            self.experiment.log_epoch(epoch, {"train_loss": train_loss, "val_loss": val_loss,
                                              "val_accuracy": val_metric})

    def write_epoch(self, data: dict) -> None:
        """The epoch's event in the job's log, one transaction each."""
        self.job.event("epoch", data, progress=min(data["epoch"] / max(data["total_epochs"], 1), 1.0),
                       message=f"epoch {data['epoch']}/{data['total_epochs']}")

    def epoch_data(self, epoch, total_epochs, train_loss, val_loss, val_metric) -> dict:
        return {"epoch": epoch, "total_epochs": total_epochs, "train_loss": train_loss, "val_loss": val_loss,
                "val_metric": val_metric, "elapsed_s": round(time.monotonic() - self.started, 3)}

    def should_stop(self) -> bool:
        return self.cancel.cancelled


def check_features(model_kind: str, spec: FeatureSpec, feature_kinds: tuple[str, ...] | None) -> None:
    """InputError when the kind trains only on some feature kinds and `spec` is not one of them."""
    if feature_kinds is not None and spec.kind not in feature_kinds:
        raise InputError(f"{model_kind} trains on {' or '.join(f'--features {k}' for k in feature_kinds)}, not {spec}")


def _check_fit(model_kind: str, spec: FeatureSpec, data: TrainingData, input_rank: int,
               feature_kinds: tuple[str, ...] | None = None) -> None:
    check_features(model_kind, spec, feature_kinds)
    rank = data.features.ndim - 1
    if rank != input_rank:
        wanted = "mel patches (--features mel)" if input_rank == 2 else "feature vectors (dsp, onnx:NAME, hybrid:NAME)"
        raise InputError(f"{model_kind} trains on {wanted}, not {spec}")


def _evaluate_split(model, data: TrainingData, split: Split, seed: int) -> dict | None:
    from engine.evaluation.metrics import evaluate

    features, labels = data.part(split)
    if len(labels) == 0:
        return None
    return evaluate(labels, model.predict_proba(features), data.classes, seed=seed).to_dict()


def calibrate(model, data: TrainingData) -> dict | None:
    """Fit the model's temperature on the validation split (sets `model.temperature_`); the summary
    keeps T and the ECE / NLL of val and test before and after. None without validation rows."""
    from engine.evaluation.calibration import calibration_summary, fit_temperature

    val_x, val_y = data.part(Split.VAL)
    if len(val_y) == 0:
        return None
    val_logits = model.logits(val_x)
    model.temperature_ = fit_temperature(val_logits, val_y)
    test_x, test_y = data.part(Split.TEST)
    splits = {"val": (val_logits, val_y)}
    if len(test_y):
        splits["test"] = (model.logits(test_x), test_y)
    return calibration_summary(model.temperature_, splits)


def prepare_data(workspace, request: TrainRequest, cancel: CancelToken) -> TrainingData:
    """The request's labelled, split features (through the feature cache)."""
    from engine.datasets.source import is_export

    # An export brings its own features; anything else gets the request's (the kind's default when none).
    own_features = request.dataset is not None and not request.features and is_export(Path(request.dataset))
    data = training_data(
        workspace, None if own_features else request.spec(workspace),
        dataset=Path(request.dataset) if request.dataset else None, taxonomy=request.taxonomy,
        window_s=request.window_s, min_class_samples=request.min_class_samples, min_confidence=request.min_confidence,
        split_by=request.split_by, val=request.val, test=request.test, seed=request.seed, augment=request.augment,
        cancel=cancel)
    if data.cancelled or cancel.cancelled:
        raise Cancelled("cancelled while preparing")
    return data


def data_summary(data: TrainingData) -> dict:
    """What a training job's "data" event says of its data."""
    return {"classes": data.classes, "sizes": data.sizes(), "label_counts": data.label_counts,
            "left_out": data.left_out, "notes": data.notes, "fingerprint": data.fingerprint,
            "rejected": len(data.rejections), "grouping": data.grouping, "groups": len(set(data.split_groups))}


def model_params(request: TrainRequest) -> dict:
    """Every hyperparameter the request's model trains with: its kind's defaults, then the request's."""
    from engine.models.kinds import SAVED_KINDS

    return {**SAVED_KINDS[request.model].defaults, "seed": request.seed, **request.hyperparams}


def fit_model(request: TrainRequest, data: TrainingData, callback: JobCallback):
    """A model of the request's kind and hyperparameters fitted on the training split, validation
    driving early stopping (a cancelled fit returns early: the caller checks its token)."""
    from engine.models.kinds import make_model

    model = make_model(request.model, **{"seed": request.seed, **request.hyperparams})
    _check_fit(request.model, data.spec, data, model.input_rank, model.feature_kinds)
    train_x, train_y = data.part(Split.TRAIN)
    val_x, val_y = data.part(Split.VAL)
    callback.job.state(JobState.TRAINING, f"{request.model} on {len(train_y)} examples")
    sample_weight = None
    if request.weights:
        from engine.datasets.weights import training_row_weights

        sample_weight, weight_notes = training_row_weights(Path(request.weights), data)
        data.notes.extend(weight_notes)
    model.fit(train_x, train_y, X_val=val_x if len(val_y) else None, y_val=val_y if len(val_y) else None,
              n_classes=len(data.classes), callback=callback, sample_weight=sample_weight)
    return model


def validation_metrics(model, data: TrainingData, seed: int) -> dict | None:
    """The model's evaluation on the validation split (None when there is none)."""
    return _evaluate_split(model, data, Split.VAL, seed)


def register_trained(workspace, request: TrainRequest, data: TrainingData, model, metrics: dict, artifact: Path,
                     job_id: str, meta: dict | None = None):
    """Register a model saved in `artifact` as the next version of the request's name."""
    from engine.models.orphans import write_registration
    from engine.models.reconcile import reconcile_models
    from engine.models.registry import register

    registration = dict(
        name=request.name, task=data.task, kind=request.model, feature_spec=data.spec, classes=data.classes,
        label_counts=data.label_counts, hyperparams=model.get_params(), metrics=metrics,
        dataset_fingerprint=data.fingerprint, job_id=job_id,
        meta={"window_s": request.window_s, "notes": data.notes, "left_out": data.left_out,
              "dataset": request.dataset, "split_by": request.split_by, "weights": request.weights,
              "grouping": data.grouping, **(meta or {})},
    )
    # the folder says what it is, so a kill between moving it into models/ and committing its row
    # leaves a registration that can be finished (engine/models/reconcile.py)
    write_registration(artifact, {**registration, "feature_spec": data.spec.to_dict()})
    reconcile_models(workspace)  # finish any registration a kill cut short before taking the next number
    return register(workspace, artifact_dir=artifact, **registration)


def _cross_validate(job: JobLog, data: TrainingData, request: TrainRequest, cancel: CancelToken) -> dict:
    from engine.training.crossval import cross_validate

    job.state(JobState.EVALUATING, f"cross-validating {request.model} over {request.cv} grouped folds")

    def on_fold(done: int, total: int) -> None:
        job.progress(done / total, f"cross-validation fold {done}/{total}")

    cv = cross_validate(data, request.model, request.hyperparams, request.cv, seed=request.seed, cancel=cancel,
                        on_fold=on_fold)
    cv = {"kind": request.model, "features": str(data.spec), **cv}
    job.event("cv", cv)
    return cv


def _choose(workspace, job: JobLog, asked: TrainRequest, cancel: CancelToken) -> tuple[TrainRequest, TrainingData, dict]:
    """`--model auto`: cross-validate the candidates over the training and validation rows; the
    winner's request (kind, features, hyperparameters), its training data and the search's table."""
    from engine.datasets.source import is_export
    from engine.training.auto import SCORE, candidates, ensure_embedding, search

    notes: list[str] = []
    prepared: dict[str, tuple[TrainRequest, TrainingData]] = {}

    def prepare(features: str) -> tuple[TrainRequest, TrainingData]:
        if features not in prepared:
            chosen = replace(asked, features=features).with_task_defaults(workspace)
            prepared[features] = chosen, prepare_data(workspace, chosen, cancel)
        return prepared[features]

    if asked.dataset and is_export(Path(asked.dataset)):  # an export has its features: search the kinds only
        request = asked.with_task_defaults(workspace)
        data = prepare_data(workspace, request, cancel)
        prepared[str(data.spec)] = request, data
        found = candidates(workspace, str(data.spec), asked.hyperparams, rank=data.features.ndim - 1)
    else:
        if asked.features is None:
            problem = ensure_embedding(workspace)
            notes += [problem] if problem else []
        found = candidates(workspace, asked.features, asked.hyperparams)
    job.state(JobState.TRAINING, f"choosing among {len(found)} candidates by grouped cross-validation")

    def on_result(row: dict, done: int, total: int) -> None:
        score = row["metrics"][SCORE]["mean"] if "metrics" in row else None
        job.event("candidate", row, progress=done / total,
                  message=f"{done}/{total} {row['kind']} on {row['features']}: "
                          + (f"macro-F1 {score:.3f}" if score is not None else "failed"))

    winner, table = search(found, lambda features: prepare(features)[1], seed=asked.seed, cancel=cancel,
                           on_result=on_result)
    chosen, data = prepare(winner.features)
    data.notes.extend(notes)
    won = next(row for row in table if row["chosen"])
    summary = {"score": SCORE, "winner": winner.to_dict(), "table": table,
               "cv": {key: won[key] for key in ("kind", "features", "folds", "grouping", "rows", "metrics", "seconds")}}
    request = replace(chosen, model=winner.kind, hyperparams=winner.hyperparams)
    if asked.ensemble:
        members = _ensemble_members(table, winner.features, asked.ensemble)
        summary["ensemble"] = members
        if len(members) < asked.ensemble:
            data.notes.append(f"--ensemble {asked.ensemble}: only {len(members)} candidates on {winner.features}")
        if len(members) >= 2:
            request = replace(chosen, model=ENSEMBLE, hyperparams={"members": members, "seed": asked.seed})
    job.event("auto", summary)
    return request, data, summary


def _ensemble_members(table: list[dict], features: str, count: int) -> list[dict]:
    """The `count` best candidates of the search on `features` (an ensemble averages one input)."""
    from engine.training.auto import SCORE

    scored = [row for row in table if "metrics" in row and row["features"] == features]
    scored.sort(key=lambda row: -row["metrics"][SCORE]["mean"])
    return [{"kind": row["kind"], "hyperparams": row["hyperparams"]} for row in scored[:count]]


@job_kind("train")
def run_training(workspace, job: JobLog, params: dict, cancel: CancelToken) -> None:
    from engine.models.kinds import save_model

    asked = TrainRequest(**params)
    request = asked.with_task_defaults(workspace)
    job.state(JobState.PREPARING, "extracting features")
    search = None
    if asked.model == AUTO:
        request, data, search = _choose(workspace, job, asked, cancel)
    else:
        data = prepare_data(workspace, request, cancel)
    job.event("data", data_summary(data))
    cv = search["cv"] if search else None
    if request.cv:
        cv = _cross_validate(job, data, request, cancel)
    experiment = open_experiment_log(
        workspace.tracking_dir, request.log, experiment=request.name, run_name=job.job_id,
        hyperparams={"model": request.model, "features": str(data.spec), **model_params(request),
                     **{key: getattr(request, key) for key in LOGGED_REQUEST_FIELDS}},
        tags={"task": data.task, "job_id": job.job_id, "dataset_fingerprint": data.fingerprint})
    with experiment:
        callback = JobCallback(job, cancel, experiment)
        model = fit_model(request, data, callback)
        if cancel.cancelled:
            raise Cancelled(f"cancelled after {callback.epochs_seen} epochs")
        job.state(JobState.EVALUATING)
        calibration = calibrate(model, data)
        if calibration is None:
            data.notes.append("no validation split: probabilities are not calibrated (temperature 1)")
        train_x, train_y = data.part(Split.TRAIN)
        metrics = {"val": validation_metrics(model, data, request.seed),
                   "test": _evaluate_split(model, data, Split.TEST, request.seed),
                   "train_accuracy": float(np.mean(model.predict(train_x) == train_y)),
                   "sizes": data.sizes(), "cv": cv, "calibration": calibration}
        if metrics["test"] is None:
            data.notes.append("no test split: the report uses validation data")
            metrics["test"] = metrics["val"]
        data.notes.extend(experiment.notes)  # a logger that did not start, or stopped
        logged_notes = len(experiment.notes)
        artifact = workspace.runs_dir / job.job_id / "model"
        artifact.mkdir(parents=True, exist_ok=True)
        save_model(model, artifact)
        version = register_trained(workspace, request, data, model, metrics, artifact, job.job_id,
                                   meta={"auto": search})
        experiment.finish(final_metrics(metrics), version.ref)
        job.finish(JobState.COMPLETED, result={"model": version.ref, "test": version.headline(),
                                               "calibration": calibration,
                                               "notes": data.notes + experiment.notes[logged_notes:],
                                               "grouping": data.grouping, "cv": cv, "auto": search})
