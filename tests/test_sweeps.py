"""Sweeps: grids and samplers whose trials are training jobs; exactly once across resumes, kills and
parallel workers (on the journal file and on a throwaway PostgreSQL cluster); promotion with a
paired bootstrap.

A module template workspace holds a small drum library with its dsp features cached; each test
works on its own copy. Trials run in-process (the sweep job's runner called directly) unless the
test is about processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from conftest import copy_workspace, curated_library
from engine.audio.synth import DEMO_PACKS
from engine.concepts import JobState
from engine.errors import InputError
from engine.evaluation.metrics import paired_bootstrap_macro_f1
from engine.jobs.log import JobLog, get_job, job_events, list_jobs, request_cancel
from engine.library.importer import import_folder
from engine.models.registry import load_classifier
from engine.progress import CancelToken
from engine.sweeps import study as sweeps
from engine.sweeps.launch import prepare_study, start_workers
from engine.sweeps.promote import promote
from engine.sweeps.run import run_sweep_worker
from engine.sweeps.space import grid_points, parse_grid, parse_point, parse_space, point_key
from engine.sweeps.summary import summarise
from engine.training.run import TrainRequest
from engine.workspace import Workspace

BASE = dict(min_class_samples=2, split_by="clip", features="dsp")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweeps")
    curated_library(root / "lib", per_pack=4, packs=DEMO_PACKS[:3])
    workspace = Workspace.open(root / "ws")
    import_folder(workspace, root / "lib", curated=True, workers=1)
    from engine.training.run import prepare_data

    prepare_data(workspace, TrainRequest(name="x", **BASE).with_task_defaults(workspace), CancelToken())  # cache
    return workspace.root


@pytest.fixture
def ws(template, tmp_path) -> Workspace:
    return Workspace.open(copy_workspace(template, tmp_path))


def config(name="s", *, grid=None, space=None, sampler="grid", trials=None, prune="none", **request) -> sweeps.SweepConfig:
    return sweeps.SweepConfig(name=name, sampler=sampler, grid=parse_grid(grid or []),
                              space=[d.to_dict() for d in parse_space(space or [])], trials=trials, prune=prune,
                              request=TrainRequest(name=name, **{**BASE, **request}).__dict__)


def run_worker(ws: Workspace, name: str, storage: str | None = None, cancel: CancelToken | None = None, **options):
    """One sweep worker, in this process, as its job would run it."""
    params = {"name": name, "storage": storage, **options}
    job = JobLog(ws, "sweep", params)
    try:
        run_sweep_worker(ws, job, params, cancel or CancelToken())
    except Exception:
        job.finish(JobState.FAILED)
        raise
    return job.job_id


def trials_of(ws, name, storage=None, **options):
    study, _ = sweeps.open_sweep(ws, name, storage, **options)
    return study.get_trials(deepcopy=False)


def completed_points(trials) -> list[str]:
    return sorted(t.user_attrs[sweeps.GRID_POINT] for t in trials if t.state.name == "COMPLETE")


# -- the space ------------------------------------------------------------------------------------

def test_grid_and_space_parse_with_one_key_per_point():
    grid = parse_grid(["lr=1e-3,5e-4", "batch_size=32,64", "epochs=30,60"])
    points = grid_points(grid)
    assert len(points) == 8 and len({point_key(p) for p in points}) == 8
    assert point_key({"lr": 1e-3, "batch_size": 64}) == "batch_size=64,lr=0.001"
    assert parse_point("lr=0.001,batch_size=64,epochs=30", grid) == {"lr": 1e-3, "batch_size": 64, "epochs": 30}
    assert parse_point("lr=1e-3,batch_size=64", grid) == {"lr": 1e-3, "batch_size": 64}  # two points
    with pytest.raises(InputError, match="not a value of the grid"):
        parse_point("lr=1e-2,batch_size=64,epochs=30", grid)
    with pytest.raises(InputError, match="not a grid parameter"):
        parse_point("dropout=0.1", grid)
    space = parse_space(["model=categorical(mlp,logreg,lgbm)", "lr=loguniform(1e-4,1e-2)", "dropout=uniform(0,0.5)"])
    assert [(d.name, d.kind, d.args) for d in space] == [("model", "categorical", ("mlp", "logreg", "lgbm")),
                                                        ("lr", "loguniform", (1e-4, 1e-2)), ("dropout", "uniform", (0, 0.5))]
    for bad, said in (("lr=loguniform(0,1)", "log scale"), ("lr=uniform(2,1)", "below"), ("lr=normal(0,1)", "say")):
        with pytest.raises(InputError, match=said):
            parse_space([bad])


def test_paired_bootstrap_matches_a_loop_over_sklearn_on_the_same_resamples():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 60)
    a = np.where(rng.random(60) < 0.6, y, rng.integers(0, 3, 60))
    b = np.where(rng.random(60) < 0.9, y, rng.integers(0, 3, 60))
    result = paired_bootstrap_macro_f1(y, a, b, 3, resamples=100, seed=7)
    idx = np.random.default_rng(7).integers(0, 60, size=(100, 60))
    diffs = []
    for rows in idx:  # present-or-predicted classes of each side, as engine.evaluation.metrics.macro_f1
        f_a = f1_score(y[rows], a[rows], labels=sorted(set(y[rows]) | set(a[rows])), average="macro", zero_division=0)
        f_b = f1_score(y[rows], b[rows], labels=sorted(set(y[rows]) | set(b[rows])), average="macro", zero_division=0)
        diffs.append(f_b - f_a)
    assert result["ci"] == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))
    assert result["difference"] == pytest.approx(f1_score(y, b, average="macro") - f1_score(y, a, average="macro"))
    assert result["ci"][0] > 0  # b is clearly better


# -- runs, resumes, reruns ------------------------------------------------------------------------

def test_a_grid_runs_each_point_once_resumes_and_reruns_one(ws):
    cfg = config(grid=["C=0.1,1", "max_iter=50,100"], model="logreg")
    assert prepare_study(ws, cfg, None) == {"enqueued": 4, "done": 0, "pending": 0}
    run_worker(ws, "s")
    trials = trials_of(ws, "s")
    assert completed_points(trials) == sorted(point_key(p) for p in grid_points(cfg.grid))
    # every trial is a training job of its own, with its curve, owned by the sweep's job
    jobs = {j.job_id: j for j in list_jobs(ws)}
    sweep_job = next(j for j in jobs.values() if j.kind == "sweep")
    for trial in trials:
        job = jobs[sweeps.trial_job_id(trial)]
        assert job.kind == "train" and job.state == JobState.COMPLETED
        assert job.params["sweep"] == "s" and job.params["sweep_job"] == sweep_job.job_id
        assert job.params["trial"] == trial.number and job.params["hyperparams"]["C"] == trial.params["C"]
        assert any(e.kind == "epoch" for e in job_events(ws, job.job_id))
        assert trial.value == pytest.approx(job.result["val"]["macro_f1"])
    assert prepare_study(ws, cfg, None) == {"enqueued": 0, "done": 4, "pending": 0}  # nothing left to run
    assert prepare_study(ws, cfg, None, rerun="C=1,max_iter=50") == {"enqueued": 1, "done": 3, "pending": 0}
    assert prepare_study(ws, cfg, None, rerun="C=1,max_iter=50")["pending"] == 1  # already waiting: not twice
    run_worker(ws, "s")
    trials = trials_of(ws, "s")
    assert len(trials) == 5 and sum(t.user_attrs[sweeps.GRID_POINT] == "C=1,max_iter=50" for t in trials) == 2
    summary = summarise(ws, *sweeps.open_sweep(ws, "s", None))
    assert summary.count("complete") == 5 and summary.grid_points == 4 and summary.best is not None
    with pytest.raises(InputError, match="other settings"):
        prepare_study(ws, config(grid=["C=0.1,2"], model="logreg"), None)
    prepare_study(ws, config(grid=["C=0.1,2"], model="logreg"), None, reset=True)
    assert [t.state.name for t in trials_of(ws, "s")] == ["WAITING", "WAITING"]


def test_the_views_helpers_refuse_a_running_or_finished_sweep_and_draw_the_best_so_far(ws):
    from engine.sweeps.launch import cancel_sweep, resume_sweep, start_sweep
    from engine.sweeps.space import split_search
    from engine.sweeps.summary import TrialRow, best_so_far

    assert split_search("lr=1e-3,1e-2  epochs=5 hidden=categorical(32, 64) C=loguniform(1e-2,1)") == (
        ["lr=1e-3,1e-2", "epochs=5"], ["hidden=categorical(32, 64)", "C=loguniform(1e-2,1)"])
    rows = [TrialRow(n, state, {}, f1, None, None, None, None, None, None)
            for n, state, f1 in ((0, "complete", 0.5), (1, "failed", None), (2, "complete", 0.4),
                                 (3, "running", None), (4, "complete", 0.7))]
    assert best_so_far(rows[::-1]) == [(0, 0.5), (2, 0.5), (4, 0.7)]

    cfg = config(grid=["C=0.1,1"], model="logreg")
    worker = JobLog(ws, "sweep", {"name": "s"})  # a worker that runs (its process is this one)
    prepare_study(ws, cfg, None)
    with pytest.raises(InputError, match="is running"):
        start_sweep(ws, cfg)
    assert cancel_sweep(ws, "s") == [worker.job_id] and worker.cancel_requested()
    worker.finish(JobState.CANCELLED)
    assert cancel_sweep(ws, "s") == []
    run_worker(ws, "s")
    assert sweeps.sweep_names(ws) == ["s"]
    with pytest.raises(InputError, match="all 2 grid points"):
        resume_sweep(ws, "s")
    tpe = config("t", space=["C=loguniform(0.1,1)"], sampler="tpe", trials=1, model="logreg")
    prepare_study(ws, tpe, None)
    run_worker(ws, "t")
    with pytest.raises(InputError, match="all 1 trials"):
        start_sweep(ws, tpe)


def test_a_duplicate_enqueue_of_a_point_never_completes_twice(ws):
    cfg = config(grid=["C=0.1,1"], model="logreg")
    prepare_study(ws, cfg, None)
    study, _ = sweeps.open_sweep(ws, "s", None)
    study.enqueue_trial({"C": 0.1}, user_attrs={sweeps.GRID_POINT: "C=0.1", sweeps.ROUND: 0})  # a racing second run
    run_worker(ws, "s")
    trials = trials_of(ws, "s")
    assert completed_points(trials) == ["C=0.1", "C=1"]
    assert trials[2].state.name == "FAIL" and trials[2].user_attrs[sweeps.OUTCOME] == "duplicate of trial 0"


def test_checks_fail_before_anything_runs(ws):
    with pytest.raises(InputError, match="grid point C=0.1,lr=0.1: logreg does not take lr"):
        prepare_study(ws, config(grid=["C=0.1", "lr=0.1"], model="logreg"), None)
    with pytest.raises(InputError, match="--space dropout: none of logreg takes it"):
        prepare_study(ws, config(sampler="tpe", trials=2, space=["dropout=uniform(0,0.5)"], model="logreg"), None)
    with pytest.raises(InputError, match="validation"):
        prepare_study(ws, config(grid=["C=0.1"], model="logreg", val=0.0), None)
    assert not sweeps.journal_path(ws, "s").exists()


def test_tpe_over_models_with_a_median_pruner_says_what_it_pruned(ws):
    cfg = config(sampler="tpe", trials=4, prune="median", space=[
        "model=categorical(logreg,lgbm)", "C=loguniform(1e-3,10)", "learning_rate=loguniform(1e-3,0.3)"],
        hyperparams={"n_estimators": 20, "patience": 20})
    prepare_study(ws, cfg, None)
    run_worker(ws, "s")
    summary = summarise(ws, *sweeps.open_sweep(ws, "s", None))
    assert len(summary.trials) == 4 and summary.count("complete") + summary.count("pruned") == 4
    for row in summary.trials:
        assert ("C" in row.params) == (row.params["model"] == "logreg")  # each kind gets its own
        assert ("learning_rate" in row.params) == (row.params["model"] == "lgbm")
        if row.state == "pruned":
            assert row.note.startswith("pruned at epoch")


def test_a_median_pruner_prunes_a_trial_that_learns_nothing(ws):
    cfg = config(grid=["lr=0.05,0.03,1e-9"], model="mlp", prune="median", hyperparams={"epochs": 6, "patience": 6})
    prepare_study(ws, cfg, None)
    run_worker(ws, "s")
    rows = {r.params["lr"]: r for r in summarise(ws, *sweeps.open_sweep(ws, "s", None)).trials}
    assert rows[0.05].state == rows[0.03].state == "complete"
    assert rows[1e-9].state == "pruned" and rows[1e-9].note.startswith("pruned at epoch")
    job = get_job(ws, rows[1e-9].job_id)
    assert job.result["outcome"].startswith("pruned at epoch")


def test_cancelling_the_sweep_ends_its_trial_cancelled_not_running(ws):
    import threading

    from engine.errors import Cancelled
    from engine.jobs.log import JobCancelToken

    slow = config(grid=["lr=0.01,0.02"], model="mlp", hyperparams={"epochs": 5000, "patience": 5000})
    prepare_study(ws, slow, None)
    params = {"name": "s", "storage": None}
    sweep_job = JobLog(ws, "sweep", params)

    def cancel_at_epoch_3() -> None:  # what Ctrl-C on `sweep run` does: cancel the sweep's job
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            running = [j for j in list_jobs(ws, 5) if j.kind == "train" and j.state.is_live]
            if any(sum(e.kind == "epoch" for e in job_events(ws, j.job_id)) >= 3 for j in running):
                request_cancel(ws, sweep_job.job_id)
                return
            time.sleep(0.05)

    canceller = threading.Thread(target=cancel_at_epoch_3)
    canceller.start()
    with pytest.raises(Cancelled, match="run it again to resume"):
        run_sweep_worker(ws, sweep_job, params, JobCancelToken(sweep_job))
    canceller.join()
    trials = trials_of(ws, "s")
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[0].user_attrs[sweeps.OUTCOME] == "cancelled"
    assert get_job(ws, sweeps.trial_job_id(trials[0])).state == JobState.CANCELLED
    assert summarise(ws, *sweeps.open_sweep(ws, "s", None)).count("cancelled") == 1
    assert prepare_study(ws, slow, None)["enqueued"] == 1  # a resume runs the cancelled point again


def test_cancelling_one_trial_while_its_curve_shows_ends_it_alone_and_the_sweep_goes_on(ws):
    import threading

    cfg = config(grid=["epochs=5000,2"], model="mlp", hyperparams={"patience": 5000})
    prepare_study(ws, cfg, None)
    cancelled = []

    def cancel_the_long_trial() -> None:  # `jobs cancel` of a trial whose epochs show while it runs
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for job in list_jobs(ws, 5):
                if job.kind == "train" and job.state.is_live and job.params["hyperparams"]["epochs"] == 5000 and \
                        sum(e.kind == "epoch" for e in job_events(ws, job.job_id)) >= 3:
                    cancelled.append(request_cancel(ws, job.job_id).job_id)
                    return
            time.sleep(0.05)

    canceller = threading.Thread(target=cancel_the_long_trial)
    canceller.start()
    sweep_job = run_worker(ws, "s")
    canceller.join()
    trials = trials_of(ws, "s")
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"] and trials[0].user_attrs[sweeps.OUTCOME] == "cancelled"
    assert cancelled == [sweeps.trial_job_id(trials[0])] and get_job(ws, cancelled[0]).state == JobState.CANCELLED
    assert get_job(ws, sweep_job).state == JobState.COMPLETED
    assert [e.data["outcome"] for e in job_events(ws, sweep_job) if e.kind == "trial"] == ["cancelled", "complete"]


# -- promotion ------------------------------------------------------------------------------------

def test_promote_registers_on_a_paired_interval_above_zero_and_records_its_trial(ws):
    from engine.models.registry import activate, list_versions
    from engine.training.run import run_training

    weak = TrainRequest(name="s", model="mlp", hyperparams={"lr": 1e-9, "epochs": 1, "patience": 1}, **BASE).__dict__
    run_training(ws, JobLog(ws, "train", weak, state=JobState.PENDING), weak, CancelToken())  # s@1, never active
    prepare_study(ws, config(grid=["C=0.1,10"], model="logreg"), None)
    run_worker(ws, "s")
    first = promote(ws, "s", None, if_better=True)
    assert first.registered == "s@2" and "no active version" in first.reason and first.comparison is None
    version = list_versions(ws, "s")[-1]
    assert version.meta["sweep"]["trial"] == first.trial and version.meta["sweep"]["name"] == "s"
    assert version.metrics["test"]["n"] == first.test["n"] and version.metrics["val"]["macro_f1"] == first.val_macro_f1
    calibration = version.metrics["calibration"]  # fitted on validation, as `train` does, and kept with the model
    assert calibration["fitted_on"] == "val" and load_classifier(version).temperature_ == calibration["temperature"]
    activate(ws, "s@2")
    same = promote(ws, "s", None, if_better=True)  # the same model against itself: difference 0
    assert same.registered is None and "not above zero: not registered" in same.reason
    assert same.comparison["ci"] == (0.0, 0.0) and len(list_versions(ws, "s")) == 2
    activate(ws, "s@1")  # the untrained one
    better = promote(ws, "s", None, if_better=True)
    assert better.against == "s@1" and better.comparison["ci"][0] > 0, better.reason
    assert better.registered == "s@3" and "above zero: registered" in better.reason
    assert list_versions(ws, "s")[-1].meta["sweep"]["comparison"]["difference"] == better.comparison["difference"]


# -- exactly once with workers that die -----------------------------------------------------------

def test_a_trial_whose_worker_died_before_its_job_was_written_is_retried(ws):
    prepare_study(ws, config(grid=["C=0.1,1"], model="logreg"), None, reset=True)
    study, _ = sweeps.open_sweep(ws, "s", None)
    trial = sweeps.claim(study)
    worker = JobLog(ws, "sweep", {"name": "s"})
    study._storage.set_trial_user_attr(trial._trial_id, sweeps.WORKER,
                                       {sweeps.JOB_ID: "train-never-written", "sweep_job": worker.job_id})
    assert sweeps.reap_dead_trials(study, ws) == []  # its sweep job lives: the record is on its way
    worker.finish(JobState.INTERRUPTED)
    assert sweeps.reap_dead_trials(study, ws) == [trial.number]
    run_worker(ws, "s")
    assert completed_points(trials_of(ws, "s")) == ["C=0.1", "C=1"]


def _kill_one_worker_mid_trial(ws: Workspace, name: str, storage: str | None, job_ids: list[str], **options) -> int:
    """Wait until a worker's trial has written epochs and has 200 or more to go, kill that worker with
    SIGKILL; returns the trial's number."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for trial in trials_of(ws, name, storage, **options):
            job_id = sweeps.trial_job_id(trial)
            if trial.state.name != "RUNNING" or job_id is None:
                continue
            epochs = [e.data for e in job_events(ws, job_id) if e.kind == "epoch"]
            if epochs and epochs[-1]["epoch"] <= epochs[-1]["total_epochs"] - 200:  # well before its end
                os.kill(trial.user_attrs["worker"]["pid"], signal.SIGKILL)
                return trial.number
        time.sleep(0.05)
    raise AssertionError("no trial wrote an epoch")


def _wait_for_jobs(ws: Workspace, job_ids: list[str], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(get_job(ws, job_id).state.is_final for job_id in job_ids):
        assert time.monotonic() < deadline, [get_job(ws, j).state for j in job_ids]
        time.sleep(0.1)
    for job_id in job_ids:  # reap the worker processes this test started
        pid = get_job(ws, job_id).pid
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _assert_exactly_once_after_a_kill(ws, name, storage, grid, victim, **options):
    trials = trials_of(ws, name, storage, **options)
    assert completed_points(trials) == sorted(point_key(p) for p in grid_points(grid))  # each once
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    dead = trials[victim]
    assert dead.state.name == "FAIL"
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == victim]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
    assert retry[0].user_attrs[sweeps.GRID_POINT] == dead.user_attrs[sweeps.GRID_POINT]


# Long enough that a trial's first epochs reach the job log (written every 2 s, about epoch 800 here)
# well before its end, so the kill lands mid-trial.
SLOW = dict(model="mlp", hyperparams={"epochs": 2000, "patience": 2000})


def test_journal_two_workers_one_killed_every_point_completes_once(ws):
    cfg = config(grid=["lr=0.01,0.02"], **SLOW)
    prepare_study(ws, cfg, None)
    job_ids = start_workers(ws, "s", None, 2)
    victim = _kill_one_worker_mid_trial(ws, "s", None, job_ids)
    _wait_for_jobs(ws, job_ids)
    _assert_exactly_once_after_a_kill(ws, "s", None, cfg.grid, victim)
    assert "died" in trials_of(ws, "s")[victim].user_attrs[sweeps.OUTCOME]


def _postgres_binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster on a unix socket in a temporary folder (run as `nobody` when
    the tests run as root, which PostgreSQL refuses); its URL."""
    binaries = _postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (initdb not on PATH nor in /usr/lib/postgresql/*/bin); "
                    ".ci/run installs it")
    folder = Path(tempfile.mkdtemp(prefix="wb-pg-", dir="/tmp"))
    user = "nobody" if os.geteuid() == 0 else None
    if user:
        shutil.chown(folder, user)
    as_user = {"user": user} if user else {}
    data = folder / "data"
    subprocess.run([binaries / "initdb", "-D", data, "-U", "wb", "-A", "trust", "--no-sync"], check=True,
                   capture_output=True, **as_user)
    subprocess.run([binaries / "pg_ctl", "-D", data, "-w", "-l", folder / "log", "-o",
                    f"-k {folder} -c listen_addresses='' -c fsync=off", "start"], check=True, capture_output=True,
                   **as_user)
    try:
        yield f"postgresql://wb@/postgres?host={folder}"
    finally:
        subprocess.run([binaries / "pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True, **as_user)
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_two_workers_one_killed_every_point_completes_once(ws, postgres):
    cfg = config(grid=["lr=0.01,0.02"], **SLOW)
    options = {"heartbeat_s": 1, "grace_s": 2}
    prepare_study(ws, cfg, postgres, reset=True, **options)
    job_ids = start_workers(ws, "s", postgres, 2, **options)
    victim = _kill_one_worker_mid_trial(ws, "s", postgres, job_ids, **options)
    _wait_for_jobs(ws, job_ids)
    _assert_exactly_once_after_a_kill(ws, "s", postgres, cfg.grid, victim, **options)
    assert socket.gethostname()  # the study lived in PostgreSQL only:
    assert not sweeps.journal_path(ws, "s").exists()


# -- the commands ---------------------------------------------------------------------------------

def cli(ws: Workspace, *args: str) -> tuple[int, dict]:
    import json

    from typer.testing import CliRunner

    from cli.main import app

    result = CliRunner().invoke(app, ["--headless", "--workspace", str(ws.root), *args, "--json"])
    return result.exit_code, json.loads(result.stdout)


SMALL = ["--min-class-samples", "2", "--split", "clip", "--features", "dsp"]


def test_the_commands_dry_run_run_resume_and_summarise(ws):
    code, plan = cli(ws, "sweep", "run", "lr-grid", "--model", "mlp", *SMALL, "--grid", "lr=1e-3,5e-4",
                     "--grid", "batch_size=32,64", "--grid", "epochs=30,60", "--dry-run")
    assert code == 0 and plan["dry_run"] and len(plan["trials"]) == 8 and not any(t["done"] for t in plan["trials"])
    assert not list(ws.runs_dir.glob("*")) and not sweeps.journal_path(ws, "lr-grid").exists()  # nothing run
    code, error = cli(ws, "sweep", "run", "bad", *SMALL, "--space", "lr=normal(0,1)")
    assert code == 1 and "--space" in error["error"]["message"]
    code, done = cli(ws, "sweep", "run", "c-grid", "--model", "logreg", *SMALL, "--grid", "C=0.1,1")
    assert code == 0, done
    assert done["sweep"]["counts"]["complete"] == 2 and done["jobs"][0]["state"] == "completed"
    code, again = cli(ws, "sweep", "run", "c-grid", "--model", "logreg", *SMALL, "--grid", "C=0.1,1")
    assert code == 0 and "jobs" not in again and again["sweep"]["counts"]["complete"] == 2  # nothing ran
    code, summary = cli(ws, "sweep", "summary", "c-grid")
    assert code == 0 and [t["params"] for t in summary["sweep"]["trials"]] == [{"C": 0.1}, {"C": 1}]
    code, missing = cli(ws, "sweep", "summary", "nope")
    assert code == 1 and "no sweep 'nope'" in missing["error"]["message"]
