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
from engine.progress import CancelToken
from engine.training.data import TrainingData, training_data

# Measured with bench/bench_generalisation.py (train on some packs, test on unseen ones, synthetic
# and real Debian drum packs): mlp on hybrid aiSFX + dsp features generalised best, mlp on dsp
# best without the embedding; LightGBM and the CNN memorised packs.
DEFAULT_MODEL = "mlp"
PREFERRED_EMBEDDING = "aisfx"


def default_features(workspace, model: str) -> str:
    """mel for the CNN; else hybrid:aisfx when that embedding is installed, else dsp."""
    if model == "cnn":
        return "mel"
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

    def spec(self, workspace) -> FeatureSpec:
        return FeatureSpec.parse(self.features or default_features(workspace, self.model),
                                 parse_params(self.feature_params))

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
    """Turns epochs into job events; training stops when the job's cancel token says so."""

    def __init__(self, job: JobLog, cancel: CancelToken) -> None:
        self.job = job
        self.cancel = cancel
        self.epochs_seen = 0
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, total_epochs, train_loss, val_loss, val_metric) -> None:
        self.epochs_seen = epoch
        self.job.event("epoch", self.epoch_data(epoch, total_epochs, train_loss, val_loss, val_metric),
                       progress=min(epoch / max(total_epochs, 1), 1.0), message=f"epoch {epoch}/{total_epochs}")

    def epoch_data(self, epoch, total_epochs, train_loss, val_loss, val_metric) -> dict:
        return {"epoch": epoch, "total_epochs": total_epochs, "train_loss": train_loss, "val_loss": val_loss,
                "val_metric": val_metric, "elapsed_s": round(time.monotonic() - self.started, 3)}

    def should_stop(self) -> bool:
        return self.cancel.cancelled


def _check_fit(model_kind: str, spec: FeatureSpec, data: TrainingData, input_rank: int) -> None:
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


def prepare_data(workspace, request: TrainRequest, cancel: CancelToken) -> TrainingData:
    """The request's labelled, split features (through the feature cache)."""
    data = training_data(
        workspace, request.spec(workspace) if (request.features or not request.dataset) else None,
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
            "rejected": len(data.rejections)}


def fit_model(request: TrainRequest, data: TrainingData, callback: JobCallback):
    """A model of the request's kind and hyperparameters fitted on the training split, validation
    driving early stopping (a cancelled fit returns early: the caller checks its token)."""
    from engine.models.kinds import make_model

    model = make_model(request.model, **{"seed": request.seed, **request.hyperparams})
    _check_fit(request.model, data.spec, data, model.input_rank)
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
              "dataset": request.dataset, "split_by": request.split_by, "weights": request.weights, **(meta or {})},
    )
    # the folder says what it is, so a kill between moving it into models/ and committing its row
    # leaves a registration that can be finished (engine/models/reconcile.py)
    write_registration(artifact, {**registration, "feature_spec": data.spec.to_dict()})
    reconcile_models(workspace)  # finish any registration a kill cut short before taking the next number
    return register(workspace, artifact_dir=artifact, **registration)


@job_kind("train")
def run_training(workspace, job: JobLog, params: dict, cancel: CancelToken) -> None:
    from engine.models.kinds import save_model

    request = TrainRequest(**params).with_task_defaults(workspace)
    job.state(JobState.PREPARING, "extracting features")
    data = prepare_data(workspace, request, cancel)
    job.event("data", data_summary(data))
    callback = JobCallback(job, cancel)
    model = fit_model(request, data, callback)
    if cancel.cancelled:
        raise Cancelled(f"cancelled after {callback.epochs_seen} epochs")
    job.state(JobState.EVALUATING)
    train_x, train_y = data.part(Split.TRAIN)
    metrics = {"val": _evaluate_split(model, data, Split.VAL, request.seed),
               "test": _evaluate_split(model, data, Split.TEST, request.seed),
               "train_accuracy": float(np.mean(model.predict(train_x) == train_y)),
               "sizes": data.sizes()}
    if metrics["test"] is None:
        data.notes.append("no test split: the report uses validation data")
        metrics["test"] = metrics["val"]
    artifact = workspace.runs_dir / job.job_id / "model"
    artifact.mkdir(parents=True, exist_ok=True)
    save_model(model, artifact)
    version = register_trained(workspace, request, data, model, metrics, artifact, job.job_id)
    job.finish(JobState.COMPLETED, result={"model": version.ref, "test": version.headline(), "notes": data.notes})
