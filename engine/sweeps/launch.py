"""Starting a sweep: its settings are checked up front (every grid point, every dimension), the
study is made or resumed with its grid enqueued, then its worker jobs are spawned."""

from __future__ import annotations

import re
from dataclasses import replace

from engine.errors import InputError
from engine.jobs.log import list_jobs, request_cancel, spawn_job
from engine.store.jobs import JobRecord
from engine.sweeps import study as sweeps
from engine.sweeps.run import WorkerParams, anything_running, budget_left, trial_request
from engine.sweeps.space import REQUEST_PARAMS, grid_points, point_key
from engine.training.launch import check_request, kind_defaults, split_hyperparams


SWEEP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # also its journal's file name


def check_config(workspace, config: sweeps.SweepConfig) -> list[dict]:
    """Raise InputError for settings that could only fail once trials ran; returns the grid's points
    (for a sampler sweep, none)."""
    if not SWEEP_NAME.fullmatch(config.name):
        raise InputError(f"sweep name must be lowercase letters, digits, '_' or '-' (starting with a letter or "
                         f"digit), got {config.name!r}")
    if config.sampler not in sweeps.SAMPLERS:
        raise InputError(f"unknown sampler {config.sampler!r}; choose one of {', '.join(sweeps.SAMPLERS)}")
    if config.prune not in sweeps.PRUNERS:
        raise InputError(f"unknown pruner {config.prune!r}; choose one of {', '.join(sweeps.PRUNERS)}")
    if not config.request.get("val"):
        raise InputError("a sweep selects on the validation split: --val must be above 0")
    if config.sampler == "grid":
        if not config.grid or config.space:
            raise InputError("a grid sweep needs --grid NAME=V1,V2 (and no --space; use --sampler tpe for a space)")
        points = grid_points(config.grid)
        for point in points:
            request = trial_request(config, point)
            try:
                check_request(workspace, request)
            except InputError as error:
                raise InputError(f"grid point {point_key(point)}: {error}") from None
        return points
    if config.grid or not config.space:
        raise InputError(f"a {config.sampler} sweep needs --space NAME=DISTRIBUTION (and no --grid)")
    if not config.trials:
        raise InputError(f"a {config.sampler} sweep needs --trials N")
    dimensions = config.dimensions()
    models = next((list(d.args) for d in dimensions if d.name == "model"), [config.request.get("model", "mlp")])
    takes = set().union(*(kind_defaults(str(m)) for m in models))
    for dimension in dimensions:
        if dimension.name not in REQUEST_PARAMS and dimension.name not in takes:
            raise InputError(f"--space {dimension.name}: none of {', '.join(map(str, models))} takes it")
    features = next((list(d.args) for d in dimensions if d.name == "features"), [config.request.get("features")])
    for model in models:
        for feature in features:
            check_request(workspace, replace(trial_request(config, {"model": model, "features": feature}),
                                              hyperparams=split_hyperparams(str(model), config.request.get("hyperparams", {}))[0]))
    return []


def prepare_study(workspace, config: sweeps.SweepConfig, storage_url: str | None, *, reset: bool = False,
                  rerun: str | None = None, heartbeat_s: int = 10, grace_s: int = 30) -> dict:
    """Make or resume the sweep's study and enqueue its grid; returns the counts of grid points
    enqueued, done and pending (empty for a sampler sweep)."""
    from engine.sweeps.space import parse_point

    check_config(workspace, config)
    point = parse_point(rerun, config.grid) if rerun else None
    if rerun and config.sampler != "grid":
        raise InputError("--rerun names a grid point; this sweep has no grid")
    storage = sweeps.open_storage(workspace, config.name, storage_url, heartbeat_s=heartbeat_s, grace_s=grace_s)
    study = sweeps.create_study(storage, config, reset=reset)
    sweeps.reap_dead_trials(study, workspace)
    return sweeps.enqueue_grid(study, config, point) if config.sampler == "grid" else {}


def start_workers(workspace, name: str, storage_url: str | None, parallel: int = 1, *, heartbeat_s: int = 10,
                  grace_s: int = 30) -> list[str]:
    """Spawn `parallel` sweep worker jobs on an existing sweep; returns their job ids."""
    sweeps.open_sweep(workspace, name, storage_url, heartbeat_s=heartbeat_s, grace_s=grace_s)  # it exists
    params = WorkerParams(name, storage_url, heartbeat_s, grace_s).__dict__
    return [spawn_job(workspace, "sweep", params) for _ in range(parallel)]


def sweep_jobs(workspace, name: str, limit: int = 200) -> list[JobRecord]:
    """The worker jobs of a sweep among the workspace's recent jobs, newest first."""
    return [job for job in list_jobs(workspace, limit=limit)
            if job.kind == "sweep" and (job.params or {}).get("name") == name]


def start_sweep(workspace, config: sweeps.SweepConfig, storage_url: str | None = None, parallel: int = 1) -> list[str]:
    """Make or resume a sweep and spawn its workers (what `sweep run --detach` does); returns their job
    ids. InputError when one of its workers still runs, or every grid point is done (every trial of a
    sampler's budget has run)."""
    if any(job.state.is_live for job in sweep_jobs(workspace, config.name)):
        raise InputError(f"sweep {config.name!r} is running; cancel it first")
    counts = prepare_study(workspace, config, storage_url)
    if counts and not counts["enqueued"] and not counts["pending"]:
        raise InputError(f"all {counts['done']} grid points of sweep {config.name!r} are done")
    if config.sampler != "grid":
        study, _ = sweeps.open_sweep(workspace, config.name, storage_url)
        if not budget_left(study, config) and not anything_running(study):
            raise InputError(f"all {config.trials} trials of sweep {config.name!r} have run")
    return start_workers(workspace, config.name, storage_url, parallel)


def resume_sweep(workspace, name: str, storage_url: str | None = None, parallel: int = 1) -> list[str]:
    """Start a stopped sweep again with its stored settings: its unfinished trials run."""
    _, config = sweeps.open_sweep(workspace, name, storage_url)
    return start_sweep(workspace, config, storage_url, parallel)


def cancel_sweep(workspace, name: str) -> list[str]:
    """Ask every running worker of a sweep to stop (their trials in hand end cancelled); returns their job ids."""
    return [request_cancel(workspace, job.job_id).job_id for job in sweep_jobs(workspace, name) if job.state.is_live]
