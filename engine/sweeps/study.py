"""A sweep is an Optuna study: where it is stored, what it searches, and how its trials are claimed.

Storage: by default an Optuna journal file in the workspace (`sweeps/NAME.journal`: append-only,
replayed on open, nothing to start); with `--storage postgresql://…` Optuna's RDB storage, with
heartbeats, so several processes or boxes share one study. Either opens in optuna-dashboard as it is.

Exactly once. A grid point is enqueued as a WAITING trial carrying its key (user attr `grid_point`)
and its round (`round`: `--rerun` starts a new one). A worker claims a WAITING trial by moving it to
RUNNING, which the storage grants to one process only. It then checks that the point is still its
own: if the point already has a finished trial (complete or pruned) in this round, or an
earlier-numbered trial that waits or runs, the claim ends as FAIL (`outcome` = duplicate) without
training. Whoever enqueued twice, at most one trial per point and round can train to the end.
A trial whose worker died is failed (Optuna's heartbeat on RDB; on the journal, its trial job is
found dead or silent in the workspace) and enqueued again with the same point
(RetryHeartbeatStaleTrialCallback), so none stays RUNNING.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.errors import InputError, NotFound
from engine.sweeps.space import Dimension, grid_points, matches, point_key

CONFIG_ATTR = "workbench_sweep"
GRID_POINT, ROUND, OUTCOME = "grid_point", "round", "outcome"
# what a worker records of a trial, in one user attr each: who runs it (WORKER: its job's JOB_ID, host,
# pid) when it claims it, and what came of it (RESULT) at its end
WORKER, RESULT, JOB_ID = "worker", "result", "job_id"
SAMPLERS = ("grid", "tpe", "random")
PRUNERS = ("none", "median", "hyperband")
MAX_RETRY = 3  # a point whose worker dies more often than this is left failed (and says so)
DONE = ("COMPLETE", "PRUNED")
JOURNAL_LOCK_GRACE_S = 10


@dataclass
class SweepConfig:
    """What a sweep searches and how; stored in the study, so a worker on another box reads it."""

    name: str
    sampler: str = "grid"
    grid: dict = field(default_factory=dict)  # {param: [values]}
    space: list = field(default_factory=list)  # Dimension dicts
    trials: int | None = None  # sampler sweeps: how many trials in all
    prune: str = "none"
    seed: int = 0
    request: dict = field(default_factory=dict)  # the TrainRequest every trial starts from
    log: str | None = None  # passed to the trials' training as `train --log` (see README)

    def dimensions(self) -> list[Dimension]:
        return [Dimension.from_dict(d) for d in self.space]

    def to_dict(self) -> dict:
        return asdict(self)


def journal_path(workspace, name: str) -> Path:
    return workspace.root / "sweeps" / f"{name}.journal"


def rdb_url(url: str) -> str:
    """postgresql://… is read with psycopg 3 (SQLAlchemy's default driver would be psycopg2)."""
    return "postgresql+psycopg://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


def open_storage(workspace, name: str, url: str | None, *, heartbeat_s: int = 10, grace_s: int = 30):
    """The sweep's Optuna storage: the workspace's journal file, or the RDB at `url` with heartbeats
    every `heartbeat_s` and a trial silent for `grace_s` failed and retried."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats and their retry callback are marked experimental in Optuna; they are what we rely on
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if url is None:
        path = journal_path(workspace, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        # a lock left by a worker killed while writing (writes take milliseconds) is broken after this
        lock = JournalFileSymlinkLock(str(path), grace_period=JOURNAL_LOCK_GRACE_S)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
    try:
        return RDBStorage(rdb_url(url), heartbeat_interval=heartbeat_s, grace_period=grace_s,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
    except Exception as error:  # SQLAlchemy / driver errors: say which storage
        raise InputError(f"cannot open sweep storage {url}: {type(error).__name__}: {error}") from None


def load_study(storage, name: str):
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise NotFound(f"no sweep {name!r} in this storage (start it with `sweep run {name} …`)") from None


def load_config(study) -> SweepConfig:
    data = study.user_attrs.get(CONFIG_ATTR)
    if data is None:
        raise InputError(f"study {study.study_name!r} was not made by `workbench sweep run`")
    return SweepConfig(**data)


def create_study(storage, config: SweepConfig, *, reset: bool = False):
    """The sweep's study, made on first use; its stored config must match `config` unless `reset`
    (which deletes the study and its trials first)."""
    import optuna

    if reset:
        try:
            optuna.delete_study(study_name=config.name, storage=storage)
        except KeyError:
            pass
    study = optuna.create_study(study_name=config.name, storage=storage, direction="maximize", load_if_exists=True)
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, config.to_dict())
    elif stored != config.to_dict():
        changed = sorted(k for k in stored if stored.get(k) != config.to_dict().get(k))
        raise InputError(f"sweep {config.name!r} exists with other settings ({', '.join(changed)} differ); "
                         "give the same options to resume it, or --reset to start it over")
    return study


def trial_job_id(trial) -> str | None:
    """The id of the training job that runs or ran the trial (in its `worker` attr, with the host and
    pid; journals written before kept it in an attr of its own)."""
    return trial.user_attrs.get(WORKER, {}).get(JOB_ID) or trial.user_attrs.get(JOB_ID)


def trial_result(trial) -> dict:
    """What a trial's worker recorded at its end: epochs and seconds, and when it completed `files`
    (its model's, checked by promote) and `val` (its validation metrics); journals written before
    kept each in an attr of its own."""
    return trial.user_attrs.get(RESULT) or {k: trial.user_attrs[k] for k in ("epochs", "seconds", "files", "val")
                                            if k in trial.user_attrs}


def trial_round(trial) -> int:
    return int(trial.user_attrs.get(ROUND, 0))


def point_trials(study, key: str) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(GRID_POINT) == key]


def enqueue_grid(study, config: SweepConfig, rerun: dict | None = None) -> dict[str, int]:
    """Enqueue every grid point of the current round that has no finished, waiting or running trial;
    with `rerun` (some grid values), the points that have them again, in a new round. Returns counts: enqueued, done, pending."""
    from optuna.trial import TrialState

    counts = {"enqueued": 0, "done": 0, "pending": 0}
    trials = study.get_trials(deepcopy=False)
    by_key: dict[str, list] = {}
    for trial in trials:
        by_key.setdefault(trial.user_attrs.get(GRID_POINT), []).append(trial)
    for point in grid_points(config.grid):
        key = point_key(point)
        own = by_key.get(key, [])
        current = max((trial_round(t) for t in own), default=0)
        live = [t for t in own if trial_round(t) == current]
        waiting = any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in live)
        if rerun is not None and matches(point, rerun) and not waiting:  # (a rerun not yet run is not doubled)
            current += 1
            live = []
        if any(t.state.name in DONE for t in live):
            counts["done"] += 1
        elif any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in live):
            counts["pending"] += 1
        else:
            study.enqueue_trial(point, user_attrs={GRID_POINT: key, ROUND: current})
            counts["enqueued"] += 1
    return counts


def claim(study):
    """A WAITING trial of the study moved to RUNNING by this process (the storage grants each to one
    process), or None when none is waiting."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = study._storage  # the study's own (an RDB storage is wrapped in Optuna's cache)
    for waiting in storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(waiting._trial_id, state=TrialState.RUNNING):
                return optuna.Trial(study, waiting._trial_id)
        except UpdateFinishedTrialError:
            continue
    return None


def duplicate_of(study, trial_id: int):
    """For a claimed grid trial: the trial of the same point and round that owns it instead (a
    finished one, or an earlier one that waits or runs), or None when the claim is its owner."""
    from optuna.trial import TrialState

    mine = study._storage.get_trial(trial_id)
    key = mine.user_attrs.get(GRID_POINT)
    if key is None:
        return None
    for other in point_trials(study, key):
        if other.number == mine.number or trial_round(other) != trial_round(mine):
            continue
        if other.state.name in DONE:
            return other
        if other.number < mine.number and other.state in (TrialState.WAITING, TrialState.RUNNING):
            return other
    return None


def fail_trial(study, trial_id: int, outcome: str) -> bool:
    """End a RUNNING trial as FAIL with its outcome (cancelled, duplicate, died, error: …); False when
    it had already ended (another process got there first)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    try:
        study._storage.set_trial_user_attr(trial_id, OUTCOME, outcome)
        return study._storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False


def reap_dead_trials(study, workspace) -> list[int]:
    """Fail every RUNNING trial whose worker is gone and enqueue it again; returns their numbers.
    RDB: Optuna's heartbeats (fail_stale_trials runs the retry callback). Journal: a trial whose
    trial job in this workspace ended or went silent (the job log's own heartbeat rule)."""
    import copy

    from optuna.storages import JournalStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
    from optuna.trial import TrialState

    from engine.jobs.log import get_job

    if not isinstance(study._storage, JournalStorage):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        fail_stale_trials(study)
        return sorted(t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in before)
    reaped = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        job_id = trial_job_id(trial)
        if job_id is None:
            continue  # claimed a moment ago; its job is about to be recorded
        try:
            job = get_job(workspace, job_id)  # marks a dead or silent job interrupted
        except NotFound:  # not yet written (it is, with its sweep's next write): its sweep job tells
            job = _sweep_job_of(workspace, trial)
            if job is None or job.state.is_live:
                continue
        else:
            if job.state.is_live or job.params.get("trial") != trial.number:
                continue  # alive; or a retry claimed a moment ago that still carries its failed trial's job
        if fail_trial(study, trial._trial_id, f"died: its job {job.job_id} was {job.state}"):
            RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, copy.deepcopy(study._storage.get_trial(trial._trial_id)))
            reaped.append(trial.number)
    return reaped


def _sweep_job_of(workspace, trial):
    """The sweep job whose worker claimed the trial (named in its `worker` attr), or None."""
    from engine.jobs.log import get_job

    sweep_job = trial.user_attrs.get(WORKER, {}).get("sweep_job")
    try:
        return get_job(workspace, sweep_job) if sweep_job else None
    except NotFound:
        return None


def sweep_names(workspace) -> list[str]:
    """The sweeps kept in the workspace's journal files, the most recently written first."""
    folder = workspace.root / "sweeps"
    journals = folder.glob("*.journal") if folder.is_dir() else []
    return [p.stem for p in sorted(journals, key=lambda p: (-p.stat().st_mtime, p.stem))]


def open_sweep(workspace, name: str, url: str | None, **storage_options):
    """(study, config) of an existing sweep."""
    if url is None and not journal_path(workspace, name).is_file():
        raise NotFound(f"no sweep {name!r} in this workspace (start it with `sweep run {name} …`)")
    study = load_study(open_storage(workspace, name, url, **storage_options), name)
    return study, load_config(study)
