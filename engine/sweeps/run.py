"""A sweep worker: a job (kind "sweep") that claims the study's trials one at a time and trains each
as a training job of its own (kind "train", its curve in its events, cancellable with `jobs cancel`),
until the grid is done or the sampler's budget is used. `sweep run --parallel N` starts N of them;
`sweep worker` starts one on another box.

Selection is on validation only: a trial's value is its validation macro-F1, and its per-epoch
validation accuracy is what a pruner sees. The test split is not looked at here (see promote.py).
Features are prepared once per worker and feature set, then every trial fits on them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass

from engine.concepts import JobState
from engine.errors import Cancelled, InputError, WorkbenchError
from engine.jobs.kinds import job_kind
from engine.jobs.log import JobLog, WatchedCancelToken
from engine.progress import CancelToken
from engine.sweeps import study as sweeps
from engine.sweeps.space import REQUEST_PARAMS
from engine.training.run import (JobCallback, TrainRequest, data_summary, fit_model, model_params, prepare_data,
                                 validation_metrics)
from engine.training.tracking import open_experiment_log

IDLE_POLL_S = 0.5  # a worker with nothing to claim while others still run looks again this often
CANCEL_POLL_S = 1.0  # a worker reads its own and its trial's cancel flags this often (in a thread)
# A sweep's job and its trials' jobs write their events and states together at most this often (each
# write is a transaction of the workspace's database): a trial of short epochs is written when it
# starts, with the end of the trial before it, and every few seconds after (a long trial's curve
# stays live).
WRITE_EVERY_S = 2.0


@dataclass
class WorkerParams:
    """A sweep job's params: which sweep, in which storage."""

    name: str
    storage: str | None = None  # None: the workspace's journal file
    heartbeat_s: int = 10
    grace_s: int = 30

    def storage_options(self) -> dict:
        return {"heartbeat_s": self.heartbeat_s, "grace_s": self.grace_s}


def trial_request(config: sweeps.SweepConfig, params: dict) -> TrainRequest:
    """The training request of a trial: the sweep's request with the trial's model, features and
    hyperparameters."""
    from engine.training.launch import kind_defaults

    base = dict(config.request)
    chosen = {k: v for k, v in params.items() if k in REQUEST_PARAMS}
    takes = kind_defaults(str(chosen.get("model", base.get("model"))))
    hyperparams = {**{k: v for k, v in base.pop("hyperparams", {}).items() if k in takes},  # the sweep's own options
                   **{k: v for k, v in params.items() if k not in REQUEST_PARAMS}}
    if config.log is not None:  # `--log tensorboard|mlflow|wandb`, passed to each trial as to `train`
        chosen["log"] = config.log
    return TrainRequest(**{**base, **chosen, "hyperparams": hyperparams})


def suggest(trial, config: sweeps.SweepConfig) -> dict:
    """The trial's parameters: a grid point (fixed when it was enqueued) or the sampler's choice;
    a hyperparameter its model kind does not take is not suggested."""
    from engine.training.launch import kind_defaults

    if config.sampler == "grid":
        return {name: trial.suggest_categorical(name, values) for name, values in config.grid.items()}
    params = {}
    dimensions = config.dimensions()
    for dimension in (d for d in dimensions if d.name in REQUEST_PARAMS):
        params[dimension.name] = dimension.suggest(trial)
    takes = kind_defaults(params.get("model", config.request.get("model", "mlp")))
    for dimension in (d for d in dimensions if d.name not in REQUEST_PARAMS and d.name in takes):
        params[dimension.name] = dimension.suggest(trial)
    return params


def make_sampler(config: sweeps.SweepConfig):
    import optuna

    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=config.seed)
    return optuna.samplers.RandomSampler(seed=config.seed)  # grid trials are enqueued: it never samples them


def make_pruner(config: sweeps.SweepConfig):
    import optuna

    epochs = int(config.request.get("hyperparams", {}).get("epochs") or 30)
    return {"none": optuna.pruners.NopPruner(),
            "median": optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
            "hyperband": optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 3))}[config.prune]


class _TrialCallback(JobCallback):
    """A trial's epochs, written as a training job's (its job log writes them together, see
    `WRITE_EVERY_S`), each validation accuracy reported to the trial for its pruner."""

    def __init__(self, job: JobLog, cancel: CancelToken, trial, prune: bool, experiment=None) -> None:
        super().__init__(job, cancel, experiment)
        self.trial = trial if prune else None  # without a pruner nothing reads the reports: none is written
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch, total_epochs, train_loss, val_loss, val_metric) -> None:
        super().on_epoch_end(epoch, total_epochs, train_loss, val_loss, val_metric)
        if self.trial is not None and val_metric is not None and self.pruned_at is None:
            self.trial.report(float(val_metric), epoch)
            if self.trial.should_prune():
                self.pruned_at = epoch

    def should_stop(self) -> bool:
        return self.pruned_at is not None or super().should_stop()


class _OptunaHeartbeat(threading.Thread):
    """Records a running trial's heartbeat in an RDB storage until stopped."""

    def __init__(self, storage, trial_id: int, interval_s: float) -> None:
        super().__init__(name=f"trial heartbeat {trial_id}", daemon=True)
        self.storage, self.trial_id, self.interval_s = storage, trial_id, interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a lost connection: the next beat tries again
                pass
            if self.stopped.wait(self.interval_s):
                return


def trial_model_dir(workspace, trial_job_id: str):
    return workspace.runs_dir / trial_job_id / "model"


def run_trial(workspace, study, config: sweeps.SweepConfig, trial, sweep_job: JobLog, cancel: WatchedCancelToken,
              data_cache: dict) -> str:
    """Train one claimed trial as a training job; returns its outcome (complete, pruned, cancelled,
    duplicate, error: …, superseded). `cancel` is the sweep's: it also watches the trial's job."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState

    from engine.models.artifacts import file_hashes
    from engine.models.kinds import save_model

    storage = study._storage
    params = suggest(trial, config)
    request = trial_request(config, params).with_task_defaults(workspace)
    job = JobLog(workspace, "train", {**request.__dict__, "sweep": config.name, "trial": trial.number,
                                      "sweep_job": sweep_job.job_id}, state=JobState.PREPARING, write_with=sweep_job)
    worker = {sweeps.JOB_ID: job.job_id, "sweep_job": sweep_job.job_id, "host": socket.gethostname(), "pid": os.getpid()}
    storage.set_trial_user_attr(trial._trial_id, sweeps.WORKER, worker)
    if sweeps.OUTCOME in trial.user_attrs:  # a retry carries the user attrs of the trial that died
        storage.set_trial_user_attr(trial._trial_id, sweeps.OUTCOME, None)
    owner = sweeps.duplicate_of(study, trial._trial_id)
    if owner is not None:
        sweeps.fail_trial(study, trial._trial_id, f"duplicate of trial {owner.number}")
        job.finish(JobState.CANCELLED, error=f"not run: its grid point belongs to trial {owner.number}")
        return "duplicate"
    heartbeat = None
    if is_heartbeat_enabled(storage):
        heartbeat = _OptunaHeartbeat(storage, trial._trial_id, storage.get_heartbeat_interval())
        heartbeat.start()
    token = cancel.linked(job.job_id)
    started = time.monotonic()
    try:
        key = (request.features, tuple(request.feature_params))
        if key not in data_cache:
            data_cache[key] = prepare_data(workspace, request, token)
        data = data_cache[key]
        if not (data.splits == "val").any():
            raise InputError("a sweep selects on the validation split, and this data has none (raise --val)")
        experiment = open_experiment_log(
            workspace.tracking_dir, request.log, experiment=f"sweep-{config.name}", run_name=job.job_id,
            hyperparams={"model": request.model, "features": str(data.spec), **model_params(request)},
            tags={"sweep": config.name, "trial": trial.number, "job_id": job.job_id})
        with experiment:
            job.event("data", data_summary(data))
            callback = _TrialCallback(job, token, trial, config.prune != "none", experiment)
            model = fit_model(request, data, callback)
            if token.cancelled:
                raise Cancelled(f"cancelled after {callback.epochs_seen} epochs")
            result = {"epochs": callback.epochs_seen, "seconds": round(time.monotonic() - started, 3)}
            if callback.pruned_at is not None:
                storage.set_trial_user_attr(trial._trial_id, sweeps.RESULT, result)
                study.tell(trial, state=TrialState.PRUNED)
                outcome = f"pruned at epoch {callback.pruned_at}"
                experiment.finish({"pruned_at_epoch": callback.pruned_at})
                job.finish(JobState.COMPLETED, result={"sweep": config.name, "trial": trial.number,
                                                       "outcome": outcome})
                return "pruned"
            val = validation_metrics(model, data, request.seed)
            experiment.finish({"val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"]})
        save_model(model, trial_model_dir(workspace, job.job_id))
        result["val"] = {k: val[k] for k in ("accuracy", "macro_f1", "ci", "n")}
        result["files"] = file_hashes(trial_model_dir(workspace, job.job_id))
        storage.set_trial_user_attr(trial._trial_id, sweeps.RESULT, result)
        study.tell(trial, float(val["macro_f1"]))
        job.finish(JobState.COMPLETED, result={"sweep": config.name, "trial": trial.number, "params": params,
                                               "val": result["val"]})
        return "complete"
    except UpdateFinishedTrialError:  # failed as dead while it was only slow; its retry owns the point
        job.finish(JobState.CANCELLED, error=f"trial {trial.number} was failed as stale and retried")
        return "superseded"
    except Cancelled as error:
        sweeps.fail_trial(study, trial._trial_id, "cancelled")
        job.finish(JobState.CANCELLED, error=str(error) or None)
        return "cancelled"
    except WorkbenchError as error:
        sweeps.fail_trial(study, trial._trial_id, f"error: {error}")
        job.finish(JobState.FAILED, error=str(error))
        return f"error: {error}"
    except BaseException as error:
        sweeps.fail_trial(study, trial._trial_id, f"error: {type(error).__name__}: {error}")
        job.finish(JobState.FAILED, error=f"{type(error).__name__}: {error}")
        raise
    finally:
        cancel.unlink(job.job_id)
        if heartbeat is not None:
            heartbeat.stopped.set()


def budget_left(study, config: sweeps.SweepConfig) -> bool:
    """A sampler sweep may start another trial: fewer than `trials` are finished, running or waiting
    (cancelled trials, duplicates and trials retried after a death do not count)."""
    from optuna.trial import TrialState

    counted = 0
    for t in study.get_trials(deepcopy=False):
        outcome = str(t.user_attrs.get(sweeps.OUTCOME, ""))
        if t.state != TrialState.FAIL or outcome.startswith("error"):
            counted += 1
    return counted < (config.trials or 0)


def anything_running(study) -> bool:
    from optuna.trial import TrialState

    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)))


@job_kind("sweep")
def run_sweep_worker(workspace, job: JobLog, params: dict, cancel: CancelToken) -> None:
    import optuna

    worker = WorkerParams(**params)
    study, config = sweeps.open_sweep(workspace, worker.name, worker.storage, **worker.storage_options())
    study = optuna.load_study(study_name=config.name, storage=study._storage, sampler=make_sampler(config),
                              pruner=make_pruner(config))
    job.write_every(WRITE_EVERY_S)  # and its trials' jobs with it (see JobLog)
    job.state(JobState.RUNNING, f"sweep {config.name}")  # written with its first trial's start
    watch = WatchedCancelToken(workspace, [job.job_id], CANCEL_POLL_S, cancel)
    outcomes: dict[str, int] = {}
    data_cache: dict = {}
    try:
        while not watch.cancelled:
            sweeps.reap_dead_trials(study, workspace)
            trial = sweeps.claim(study)
            if trial is None and config.sampler != "grid" and budget_left(study, config):
                trial = study.ask()
            if trial is None:
                if not anything_running(study):
                    break
                job.flush()  # the end of its last trial
                time.sleep(IDLE_POLL_S)  # another worker's trial may die and come back to the queue
                continue
            outcome = run_trial(workspace, study, config, trial, job, watch, data_cache).split(":")[0]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            done = sum(1 for t in study.get_trials(deepcopy=False) if t.state.name in sweeps.DONE)
            job.event("trial", {"trial": trial.number, "outcome": outcome, "done": done},
                      message=f"trial {trial.number}: {outcome}; {done} done")
        if watch.cancelled:
            raise Cancelled(f"sweep {config.name} cancelled; run it again to resume")
    except BaseException:
        job.flush()  # what its last trial wrote, before the caller writes this job's end
        raise
    finally:
        watch.stop()
    job.finish(JobState.COMPLETED, result={"sweep": config.name, "trials": outcomes})
