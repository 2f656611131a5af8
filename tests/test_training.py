"""Training jobs: their lifecycle in-process (states, events, the registered version) and as real
worker processes (completion, cancellation, a killed worker, `train --detach`).

A small curated library (3 classes x 3 packs x 4 clips) is imported once per module into a
template workspace with its dsp features cached; every test trains in its own copy. Splits are by
clip: with three equal packs a split by pack leaves the test split empty.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_workspace, curated_library, write_hits
from engine.audio.synth import DEMO_PACKS
from engine.datasets.export import export_dataset
from engine.errors import InputError
from engine.features.spec import FeatureSpec
from engine.jobs.log import FINAL_STATES, JobLog, get_job, job_events, list_jobs, request_cancel, spawn_job
from engine.library.importer import import_folder
from engine.progress import CancelToken
from engine.models.registry import list_versions, load_classifier, resolve
from engine.training.data import training_data
from engine.training.run import TrainRequest, run_training
from engine.workspace import Workspace

CLASSES = ["hihat_closed", "kick", "snare"]  # sorted, as versions list them
PACKS = DEMO_PACKS[:3]
PER_PACK = 4
PER_CLASS = len(PACKS) * PER_PACK  # 12
N_CLIPS = len(CLASSES) * PER_CLASS  # 36
REPO = Path(__file__).resolve().parents[1]
LONG_MLP = {"epochs": 500, "patience": 500, "device": "cpu"}  # minutes of epochs: only ever cancelled or killed


# -- helpers ----------------------------------------------------------------------------------

def request(**fields) -> TrainRequest:
    return TrainRequest(**{"name": "drums", "model": "logreg", "min_class_samples": 2, "split_by": "clip", **fields})


def train_in_process(ws: Workspace, **fields) -> str:
    """Run one training job in this process, the way a worker would; returns its job id."""
    params = request(**fields).__dict__
    job = JobLog(ws, "train", params, state="pending")
    run_training(ws, job, params, CancelToken())
    return job.job_id


def events_of(ws: Workspace, job_id: str, kind: str | None = None) -> list[dict]:
    return [data for _, k, data in job_events(ws, job_id) if kind is None or k == kind]


def check_epochs(ws: Workspace, job_id: str, count: int) -> None:
    """`count` epoch events, numbered upwards to the total, with finite losses."""
    epochs = events_of(ws, job_id, "epoch")
    numbers = [e["epoch"] for e in epochs]
    assert len(epochs) == count and numbers == sorted(set(numbers))
    assert numbers[-1] == epochs[-1]["total_epochs"]
    for epoch in epochs:
        assert math.isfinite(epoch["train_loss"]) and epoch["train_loss"] > 0
        assert math.isfinite(epoch["val_loss"]) and 0.0 <= epoch["val_metric"] <= 1.0


def worker_log(ws: Workspace, job_id: str) -> str:
    path = ws.runs_dir / job_id / "worker.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no worker.log)"


def wait_until(ws: Workspace, job_id: str, done, timeout: float, what: str):
    """Poll the job's record until `done(record)`; fail with the worker's log after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        record = get_job(ws, job_id)
        if done(record):
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not {what} after {timeout} s (state {record.state}, "
                                 f"error {record.error})\n--- worker.log ---\n{worker_log(ws, job_id)}")
        time.sleep(0.2)


def wait_final(ws: Workspace, job_id: str, timeout: float = 90.0):
    return wait_until(ws, job_id, lambda r: r.state in FINAL_STATES, timeout, "finished")


def wait_for_epoch(ws: Workspace, job_id: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not events_of(ws, job_id, "epoch"):
        record = get_job(ws, job_id)
        assert record.state not in FINAL_STATES, f"job ended early: {record}\n{worker_log(ws, job_id)}"
        assert time.monotonic() < deadline, f"no epoch after {timeout} s\n{worker_log(ws, job_id)}"
        time.sleep(0.2)


def reap(pid: int, timeout: float = 10.0) -> None:
    """Collect a worker this process started (spawn_job makes it our child), so that it does not
    linger as a zombie; fine if it was collected already."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.05)
    raise AssertionError(f"worker {pid} did not exit within {timeout} s")


def version_folders(ws: Workspace, name: str = "drums") -> list[str]:
    home = ws.models_dir / name
    return sorted(p.name for p in home.iterdir()) if home.exists() else []


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return curated_library(tmp_path_factory.mktemp("train_library") / "curated", classes=tuple(CLASSES),
                           per_pack=PER_PACK, packs=PACKS)


@pytest.fixture(scope="module")
def template(library, tmp_path_factory) -> Path:
    """The library imported and its dsp features cached; tests copy it and never change it."""
    ws = Workspace.open(tmp_path_factory.mktemp("train_template") / "ws")
    import_folder(ws, library, curated=True, workers=1)
    training_data(ws, FeatureSpec.parse("dsp"), min_class_samples=1, workers=1)  # fills the cache
    return ws.root


@pytest.fixture
def ws(template, tmp_path) -> Workspace:
    return Workspace.open(copy_workspace(template, tmp_path))


# -- in-process -------------------------------------------------------------------------------

def test_a_training_job_goes_through_its_states_and_registers_a_complete_version(ws):
    job_id = train_in_process(ws)

    record = get_job(ws, job_id)
    assert record.state == "completed" and record.error is None
    assert record.progress == 1.0 and record.finished_at is not None
    assert record.result["model"] == "drums@1"
    assert set(record.result["test"]) == {"accuracy", "macro_f1", "ci", "n"}

    events = job_events(ws, job_id)
    assert [seq for seq, _, _ in events] == list(range(1, len(events) + 1))
    assert [data["state"] for _, kind, data in events if kind == "state"] == ["preparing", "training", "evaluating"]
    kinds = [kind for _, kind, _ in events]
    assert kinds.index("data") < kinds.index("epoch")  # the data summary comes before training
    (data,) = events_of(ws, job_id, "data")
    assert data["classes"] == CLASSES and data["left_out"] == {} and data["rejected"] == 0
    assert sum(data["sizes"].values()) == N_CLIPS and data["sizes"]["test"] > 0
    (epoch,) = events_of(ws, job_id, "epoch")  # logreg fits in one go: one "epoch"
    assert (epoch["epoch"], epoch["total_epochs"]) == (1, 1) and math.isfinite(epoch["train_loss"])

    (version,) = list_versions(ws, "drums")
    assert version.ref == "drums@1" and version.kind == "logreg" and version.task == "drums"
    assert str(version.spec) == "dsp" and version.feature_spec["kind"] == "dsp"
    assert version.label_set == CLASSES
    assert version.label_counts == {name: PER_CLASS for name in CLASSES}
    assert version.hyperparams == {"C": 1.0, "max_iter": 2000, "class_balance": True, "seed": 0}
    assert version.job_id == job_id
    assert len(version.dataset_fingerprint) == 16 and version.dataset_fingerprint == data["fingerprint"]
    assert not version.is_active  # registering never activates

    metrics = version.metrics
    assert metrics["sizes"] == data["sizes"] and 0.0 <= metrics["train_accuracy"] <= 1.0
    test = metrics["test"]
    assert test["n"] == data["sizes"]["test"] and test["classes"] == CLASSES
    assert 0.0 <= test["accuracy"] <= 1.0 and 0.0 <= test["macro_f1"] <= 1.0 and 0.0 <= test["ece"] <= 1.0
    for key in ("accuracy", "macro_f1"):
        low, high = test["ci"][key]
        assert low <= test[key] <= high
    assert set(test["per_class"]) == set(CLASSES)
    assert sum(c["support"] for c in test["per_class"].values()) == test["n"]
    confusion = np.array(test["confusion"])
    assert confusion.shape == (3, 3) and confusion.sum() == test["n"]
    assert np.trace(confusion) / test["n"] == pytest.approx(test["accuracy"])
    assert test["accuracy"] >= 0.8, "three clearly different synthetic drums should be easy"
    assert metrics["val"]["n"] == data["sizes"]["val"]

    # The artifact moved from the job's scratch folder into the registry.
    assert Path(version.artifact_dir) == ws.models_dir / "drums" / "v1"
    assert (Path(version.artifact_dir) / "model.json").is_file()
    assert not (ws.runs_dir / job_id / "model").exists()


def test_a_temperature_fitted_on_validation_is_stored_and_applied_when_loaded(ws):
    from scipy.special import softmax

    from engine.evaluation.calibration import fit_temperature
    from engine.evaluation.metrics import expected_calibration_error
    from engine.training.data import training_data as data_of

    train_in_process(ws, model="mlp", hyperparams={"epochs": 20, "device": "cpu"})
    (version,) = list_versions(ws, "drums")
    calibration = version.metrics["calibration"]
    temperature = calibration["temperature"]
    assert calibration["fitted_on"] == "val" and temperature > 0
    assert json.loads((Path(version.artifact_dir) / "model.json").read_text())["temperature"] == temperature
    model = load_classifier(version)
    assert model.temperature_ == temperature
    data = data_of(ws, version.spec, min_class_samples=2, split_by="clip", workers=1)
    for split in ("val", "test"):
        x, y = data.part(split)
        logits = model.logits(x)
        np.testing.assert_allclose(model.predict_proba(x), softmax(logits / temperature, axis=1), atol=1e-12)
        figures = calibration[split]
        assert figures["n"] == len(y)
        assert figures["ece_before"] == pytest.approx(expected_calibration_error(y, softmax(logits, axis=1)))
        assert figures["ece_after"] == pytest.approx(version.metrics[split]["ece"])  # the report is calibrated
    val_x, val_y = data.part("val")
    assert temperature == pytest.approx(fit_temperature(model.logits(val_x), val_y))
    errors = int((model.logits(val_x).argmax(axis=1) != val_y).sum())
    assert (temperature == 1.0) == (errors == 0)  # a validation split without errors cannot fit one
    assert calibration["val"]["nll_after"] <= calibration["val"]["nll_before"]


def test_without_a_validation_split_nothing_is_calibrated(ws):
    train_in_process(ws, val=0.0)
    (version,) = list_versions(ws, "drums")
    assert version.metrics["calibration"] is None and load_classifier(version).temperature_ == 1.0
    assert "no validation split: probabilities are not calibrated (temperature 1)" in version.meta["notes"]


def test_lgbm_reports_its_boosting_rounds_with_finite_losses(ws):
    hyperparams = {"n_estimators": 30, "patience": 30}
    job_id = train_in_process(ws, model="lgbm", hyperparams=hyperparams)
    assert get_job(ws, job_id).state == "completed"
    check_epochs(ws, job_id, 3)  # a report every 10 rounds
    assert [e["epoch"] for e in events_of(ws, job_id, "epoch")] == [10, 20, 30]
    version = resolve(ws, "drums@1")
    assert version.kind == "lgbm" and {k: version.hyperparams[k] for k in hyperparams} == hyperparams


def test_mlp_reports_every_epoch_and_the_same_seed_repeats_exactly_on_cpu(ws):
    settings = {"model": "mlp", "seed": 7, "hyperparams": {"epochs": 3, "device": "cpu", "seed": 7}}
    jobs = [train_in_process(ws, **settings), train_in_process(ws, **settings)]
    for job_id in jobs:
        assert get_job(ws, job_id).state == "completed"
        check_epochs(ws, job_id, 3)
    losses = [[e["train_loss"] for e in events_of(ws, job_id, "epoch")] for job_id in jobs]
    assert losses[0] == losses[1]
    first, second = list_versions(ws, "drums")
    assert first.hyperparams["seed"] == 7 and first.hyperparams["epochs"] == 3
    assert (first.version, second.version) == (1, 2)
    assert first.metrics["test"] == second.metrics["test"]
    assert first.metrics["val"] == second.metrics["val"]
    assert first.dataset_fingerprint == second.dataset_fingerprint
    features = training_data(ws, first.spec, min_class_samples=1, workers=1).features
    np.testing.assert_array_equal(load_classifier(first).predict_proba(features),
                                  load_classifier(second).predict_proba(features))


def test_a_class_below_min_class_samples_is_left_out_with_a_note(ws, tmp_path):
    write_hits(tmp_path / "extra" / "tom" / PACKS[0].name, "tom", 3)
    import_folder(ws, tmp_path / "extra", curated=True, workers=1)

    job_id = train_in_process(ws, min_class_samples=5)
    version = resolve(ws, "drums@1")
    note = "left out tom (3 < 5 examples)"
    assert version.label_set == CLASSES and "tom" not in version.label_counts
    assert version.meta["left_out"] == {"tom": 3} and note in version.meta["notes"]
    assert note in get_job(ws, job_id).result["notes"]
    assert events_of(ws, job_id, "data")[0]["left_out"] == {"tom": 3}

    train_in_process(ws, min_class_samples=3)  # exactly at the minimum: kept
    assert resolve(ws, "drums@2").label_set == sorted([*CLASSES, "tom"])

    with pytest.raises(InputError, match="need at least 2 classes with 13\\+ examples"):
        train_in_process(ws, min_class_samples=13)


def test_training_on_a_curated_folder_instead_of_the_workspace(ws, library):
    job_id = train_in_process(ws, dataset=str(library))
    assert get_job(ws, job_id).state == "completed"
    version = resolve(ws, "drums@1")
    assert version.task == library.name  # no taxonomy given: the folder's name
    assert version.label_set == CLASSES and version.label_counts == {name: PER_CLASS for name in CLASSES}
    assert version.meta["dataset"] == str(library) and str(version.spec) == "dsp"

    train_in_process(ws, dataset=str(library), taxonomy="drums")
    assert resolve(ws, "drums@2").task == "drums"


def test_training_on_an_exported_dataset_keeps_its_splits(ws, tmp_path):
    out = tmp_path / "exported"
    report = export_dataset(ws, out, FeatureSpec.parse("dsp"), split_by="clip", workers=1)
    job_id = train_in_process(ws, dataset=str(out))
    assert get_job(ws, job_id).state == "completed"
    version = resolve(ws, "drums@1")
    assert version.task == "exported" and version.label_set == CLASSES
    assert version.metrics["sizes"] == report.manifest["splits"]
    assert sum(version.label_counts.values()) == N_CLIPS
    assert version.spec == FeatureSpec.parse("dsp")


def test_a_cnn_on_dsp_features_fails_with_a_clear_message_and_registers_nothing(ws):
    with pytest.raises(InputError, match=r"cnn trains on mel patches \(--features mel\), not dsp"):
        train_in_process(ws, model="cnn", features="dsp", hyperparams={"epochs": 2, "device": "cpu"})
    assert list_versions(ws) == [] and version_folders(ws) == []


# -- real worker processes --------------------------------------------------------------------

def test_a_spawned_job_completes_in_its_own_process(ws):
    job_id = spawn_job(ws, "train", request().__dict__)
    record = wait_final(ws, job_id)
    reap(record.pid)
    assert record.state == "completed", worker_log(ws, job_id)
    assert record.pid != os.getpid()
    assert record.result["model"] == "drums@1"
    assert resolve(ws, "drums@1").job_id == job_id
    assert [data["state"] for data in events_of(ws, job_id, "state")] == ["preparing", "training", "evaluating"]
    assert (ws.runs_dir / job_id / "worker.log").is_file()


def test_cancelling_a_training_job_stops_it_within_seconds_and_registers_nothing(ws):
    job_id = spawn_job(ws, "train", request(model="mlp", hyperparams=LONG_MLP).__dict__)
    wait_for_epoch(ws, job_id)
    asked = time.monotonic()
    request_cancel(ws, job_id)
    record = wait_final(ws, job_id, timeout=15.0)
    took = time.monotonic() - asked
    reap(record.pid)
    assert record.state == "cancelled", worker_log(ws, job_id)
    assert took < 5.0, f"cancelling took {took:.1f} s"
    assert "cancelled after" in record.error
    epochs = events_of(ws, job_id, "epoch")
    assert 1 <= epochs[-1]["epoch"] < LONG_MLP["epochs"]
    assert list_versions(ws) == [] and version_folders(ws) == []


def test_a_killed_worker_shows_as_interrupted_and_registers_nothing(ws):
    job_id = spawn_job(ws, "train", request(model="mlp", hyperparams=LONG_MLP).__dict__)
    wait_for_epoch(ws, job_id)
    pid = get_job(ws, job_id).pid
    os.kill(pid, signal.SIGKILL)
    reap(pid)  # as init would, once the process that started the job is gone
    (record,) = [job for job in list_jobs(ws) if job.job_id == job_id]
    assert record.state == "interrupted"
    assert record.error == "its process ended without finishing" and record.finished_at is not None
    assert list_versions(ws) == [] and version_folders(ws) == []


def test_a_worker_killed_while_its_parent_lives_shows_as_interrupted(ws):
    job_id = spawn_job(ws, "train", request(model="mlp", hyperparams=LONG_MLP).__dict__)
    record = wait_until(ws, job_id, lambda r: r.state not in ("pending",), 60.0, "started")
    os.kill(record.pid, signal.SIGKILL)
    try:
        record = wait_until(ws, job_id, lambda r: r.state in FINAL_STATES, 3.5, "marked as ended")
        assert record.state == "interrupted"
    finally:
        reap(record.pid)


def test_cancelling_a_job_that_is_still_starting_ends_cancelled(ws):
    job_id = spawn_job(ws, "train", request(model="mlp", hyperparams=LONG_MLP).__dict__)
    record = request_cancel(ws, job_id)
    reap(record.pid, timeout=60.0)
    record = get_job(ws, job_id)
    assert list_versions(ws) == []
    assert record.state == "cancelled", f"{record.state}: {record.error}"


def test_train_detach_returns_at_once_and_the_job_outlives_the_cli(ws):
    command = [sys.executable, "-m", "cli.main", "--headless", "--workspace", str(ws.root), "train",
               "--name", "drums", "--model", "lgbm", "--patience", "400",
               "--min-class-samples", "2", "--split", "clip", "--detach", "--json"]
    started = time.monotonic()
    cli = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = cli.communicate(timeout=60)
    took = time.monotonic() - started
    assert cli.returncode == 0, err
    document = json.loads(out)
    assert document["ok"] is True and document["state"] == "pending"
    job_id = document["job_id"]

    # The CLI has exited; its job has not finished yet and runs in a process of its own.
    record = get_job(ws, job_id)
    assert record.state not in FINAL_STATES, f"the job finished before the CLI returned ({took:.1f} s)"
    assert record.pid not in (None, cli.pid, os.getpid())

    record = wait_final(ws, job_id)
    assert record.state == "completed", worker_log(ws, job_id)
    assert resolve(ws, "drums").job_id == job_id
    assert resolve(ws, "drums@1").kind == "lgbm" and events_of(ws, job_id, "epoch")


def test_a_section_taxonomy_brings_its_window_and_whole_window_features(workspace):
    from engine.training.run import TrainRequest

    sections = TrainRequest(name="s", model="logreg", features="dsp", taxonomy="sections").with_task_defaults(workspace)
    assert sections.window_s == workspace.taxonomy("sections").window_s == 4.0
    assert sections.feature_params == ["region_s=none"]
    hybrid = TrainRequest(name="s", model="logreg", features="hybrid:x", taxonomy="sections")
    assert hybrid.with_task_defaults(workspace).feature_params == ["dsp.region_s=none"]
    chosen = TrainRequest(name="s", model="logreg", features="dsp", taxonomy="sections", window_s=2.0,
                          feature_params=["region_s=1.0"]).with_task_defaults(workspace)
    assert (chosen.window_s, chosen.feature_params) == (2.0, ["region_s=1.0"])  # what you ask for wins
    drums = TrainRequest(name="d", model="logreg", features="dsp", taxonomy="drums").with_task_defaults(workspace)
    assert (drums.window_s, drums.feature_params) == (None, [])


def test_a_taxonomy_window_must_be_a_positive_number(tmp_path):
    from engine.taxonomy import load_taxonomy_file

    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\nwindow_s = -1\n[labels.a]\n[labels.b]\n')
    with pytest.raises(InputError, match="window_s must be a positive number"):
        load_taxonomy_file(path)
