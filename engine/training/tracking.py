"""Experiment tracking out: a training run's hyperparameters, per-epoch losses and metrics, final
metrics and model version, sent to any of TensorBoard, MLflow and Weights & Biases.

Everything stays on local files under one folder (the workspace's `tracking/`):

* `tensorboard`: event files in `tensorboard/<experiment>/<run>/` (torch's SummaryWriter; the
  hyperparameters and final metrics also go to the HParams dashboard) — `tensorboard --logdir`;
* `mlflow`: an MLflow SQLite tracking store, `sqlite:///<folder>/mlflow.db`, one experiment per
  name (artifacts, of which none are logged, would go to `mlflow-artifacts/`) —
  `mlflow ui --backend-store-uri sqlite:///<folder>/mlflow.db`;
* `wandb`: an offline run in `wandb/offline-run-*/`, uploaded later with `wandb sync <that folder>`.

Each needs its optional package (`pip install 'workbench[tensorboard]'`, `[mlflow]`, `[wandb]`);
`check_loggers` says which is missing before any work starts. A logger that fails while running is
dropped with a note (`ExperimentLog.notes`); training goes on.

The API a caller (a training job, a sweep's trials) uses:

    with open_experiment_log(folder, ["mlflow"], experiment="drums", run_name=job_id,
                             hyperparams={...}) as log:
        log.log_epoch(1, {"train_loss": 0.7, "val_loss": 0.8, "val_accuracy": 0.6})
        ...
        log.finish({"test_accuracy": 0.9}, model_ref="drums@3")

A run left without `finish` (an exception, a cancellation) ends as failed.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import Cancelled, InputError

LOGGERS = ("tensorboard", "mlflow", "wandb")
_MODULES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}  # what each needs installed
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"


def check_loggers(names: Sequence[str]) -> list[str]:
    """The loggers asked for, each once in the order given; InputError for an unknown one or one
    whose package is not installed (naming the extra that brings it)."""
    chosen = list(dict.fromkeys(name.strip().lower() for name in names))
    for name in chosen:
        if name not in LOGGERS:
            raise InputError(f"unknown experiment logger {name!r}; choose from {', '.join(LOGGERS)}")
        if importlib.util.find_spec(_MODULES[name]) is None:
            raise InputError(f"--log {name} needs the {_MODULES[name]} package: "
                             f"pip install 'workbench[{name}]' (in workbench's environment)")
    return chosen


def _plain(value: Any) -> int | float | str | bool:
    """A hyperparameter as a number, a string or a bool (what every logger takes)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return "none" if value is None else json.dumps(value)


class _TensorBoard:
    def __init__(self, folder: Path, experiment: str, run_name: str, hyperparams: dict, tags: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.hyperparams = {key: _plain(value) for key, value in hyperparams.items()}
        self.writer = SummaryWriter(log_dir=str(folder / "tensorboard" / experiment / run_name))
        table = "\n".join(f"| {key} | {value} |" for key, value in {**self.hyperparams, **tags}.items())
        self.writer.add_text("hyperparameters", "| name | value |\n|---|---|\n" + table)
        self.step = 0

    def log_epoch(self, epoch: int, values: dict[str, float]) -> None:
        self.step = epoch
        for key, value in values.items():
            self.writer.add_scalar(key, value, epoch)

    def finish(self, final: dict[str, float], model_ref: str | None, status: str) -> None:
        from torch.utils.tensorboard.summary import hparams

        if model_ref:
            self.writer.add_text("model_version", model_ref, self.step)
        metrics = {f"final/{key}": value for key, value in final.items()}
        for summary in hparams({**self.hyperparams, "status": status}, metrics):
            self.writer.file_writer.add_summary(summary)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, self.step)
        self.writer.close()


class _MLflow:
    STATUS = {COMPLETED: "FINISHED", FAILED: "FAILED", CANCELLED: "KILLED"}

    def __init__(self, folder: Path, experiment: str, run_name: str, hyperparams: dict, tags: dict) -> None:
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # no "creating tables" lines in the job's log
        self.client = MlflowClient(tracking_uri=tracking_uri(folder))
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            try:
                experiment_id = self.client.create_experiment(
                    experiment, artifact_location=(folder / "mlflow-artifacts").resolve().as_uri())
            except MlflowException:  # another job created it first
                experiment_id = self.client.get_experiment_by_name(experiment).experiment_id
        else:
            experiment_id = found.experiment_id
        self.run_id = self.client.create_run(experiment_id, run_name=run_name,
                                             tags={key: str(value) for key, value in tags.items()}).info.run_id
        self.client.log_batch(self.run_id, params=[Param(key, str(_plain(value))) for key, value in hyperparams.items()])
        self.step = 0

    def _metrics(self, values: dict[str, float], step: int) -> list:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        return [Metric(key, value, now, step) for key, value in values.items()]

    def log_epoch(self, epoch: int, values: dict[str, float]) -> None:
        self.step = epoch
        self.client.log_batch(self.run_id, metrics=self._metrics(values, epoch))

    def finish(self, final: dict[str, float], model_ref: str | None, status: str) -> None:
        from mlflow.entities import RunTag

        tags = [RunTag("model_version", model_ref)] if model_ref else []
        self.client.log_batch(self.run_id, metrics=self._metrics(final, self.step), tags=tags)
        self.client.set_terminated(self.run_id, self.STATUS[status])


class _Wandb:
    def __init__(self, folder: Path, experiment: str, run_name: str, hyperparams: dict, tags: dict) -> None:
        import wandb

        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=experiment, name=run_name, dir=str(folder), mode="offline",
                              config={key: _plain(value) for key, value in hyperparams.items()},
                              tags=[f"{key}={value}" for key, value in tags.items()],
                              settings=wandb.Settings(console="off", silent=True, save_code=False,
                                                      x_save_requirements=False))

    def log_epoch(self, epoch: int, values: dict[str, float]) -> None:
        self.run.log(values, step=epoch)

    def finish(self, final: dict[str, float], model_ref: str | None, status: str) -> None:
        self.run.summary.update({**{f"final/{key}": value for key, value in final.items()},
                                 "model_version": model_ref, "status": status})
        self.run.finish(exit_code=0 if status == COMPLETED else 1)


_BACKENDS = {"tensorboard": _TensorBoard, "mlflow": _MLflow, "wandb": _Wandb}


def tracking_uri(folder: Path) -> str:
    """The MLflow tracking URI of a tracking folder: its SQLite store."""
    return f"sqlite:///{(Path(folder) / 'mlflow.db').resolve()}"


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    """The entries that are numbers (a missing validation loss is left out, not logged as 0)."""
    return {key: float(value) for key, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


class ExperimentLog:
    """One run in each chosen logger. Every call goes to each logger still working; one that raises
    is dropped, with a note."""

    def __init__(self, backends: dict[str, Any], notes: list[str]) -> None:
        self.backends = backends
        self.notes = notes
        self.finished = False

    def _each(self, action: str, *args) -> None:
        for name, backend in list(self.backends.items()):
            try:
                getattr(backend, action)(*args)
            except Exception as error:  # a third-party logger may raise anything; training goes on
                del self.backends[name]
                self.notes.append(f"{name} logging stopped: {type(error).__name__}: {error}")

    def log_epoch(self, epoch: int, values: dict[str, Any]) -> None:
        """Per-epoch numbers (losses, validation metrics) at step `epoch`; None values are left out."""
        self._each("log_epoch", epoch, _numbers(values))

    def finish(self, final: dict[str, Any], model_ref: str | None = None, status: str = COMPLETED) -> None:
        """The final metrics and the model version; ends every run (once)."""
        if not self.finished:
            self.finished = True
            self._each("finish", _numbers(final), model_ref, status)

    def __enter__(self) -> ExperimentLog:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is not None:
            self.finish({}, None, CANCELLED if isinstance(error, Cancelled) else FAILED)
        self.finish({})


def open_experiment_log(folder: Path, loggers: Sequence[str], *, experiment: str, run_name: str,
                        hyperparams: dict[str, Any], tags: dict[str, Any] | None = None) -> ExperimentLog:
    """Start a run named `run_name` in experiment (project) `experiment` of each logger, recording
    `hyperparams`. A logger whose package is missing raises InputError; one that fails to start is
    left out with a note."""
    folder = Path(folder)
    notes: list[str] = []
    backends = {}
    for name in check_loggers(loggers):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            backends[name] = _BACKENDS[name](folder, experiment, run_name, dict(hyperparams), dict(tags or {}))
        except Exception as error:  # a third-party logger may raise anything; training goes on
            notes.append(f"{name} logging did not start: {type(error).__name__}: {error}")
    return ExperimentLog(backends, notes)


def final_metrics(metrics: dict) -> dict[str, float]:
    """A training's metrics (as `run_training` stores them) flattened for a logger: accuracy,
    macro-F1 and ECE per split, train accuracy, and the temperature with the uncalibrated test ECE."""
    final: dict[str, Any] = {"train_accuracy": metrics.get("train_accuracy")}
    for split in ("val", "test"):
        for key in ("accuracy", "macro_f1", "ece"):
            final[f"{split}_{key}"] = (metrics.get(split) or {}).get(key)
    calibration = metrics.get("calibration") or {}
    final["temperature"] = calibration.get("temperature")
    final["test_ece_uncalibrated"] = (calibration.get("test") or {}).get("ece_before")
    return _numbers(final)
