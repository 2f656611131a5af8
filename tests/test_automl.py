"""`train --cv K` and `train --model auto`: grouped folds (checked against scikit-learn), the
interval over folds (checked against scipy), the model search over the training and validation
rows only, and the CV table in the job, the version and the CLI.

A curated library of 3 classes x 5 packs x 4 clips; the search is narrowed to logreg and lgbm
(monkeypatched SEARCH) so it takes seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.model_selection import StratifiedGroupKFold
from typer.testing import CliRunner

from cli.main import app
from conftest import curated_library
from engine.audio.synth import DEMO_PACKS
from engine.datasets.splits import grouped_folds
from engine.errors import InputError
from engine.evaluation.metrics import mean_interval
from engine.features.spec import FeatureSpec
from engine.jobs.log import JobLog, job_events
from engine.models.registry import resolve
from engine.progress import CancelToken
from engine.training import auto
from engine.training.crossval import cross_validate
from engine.training.data import training_data
from engine.training.run import TrainRequest, run_training

SMALL_SEARCH = {"logreg": ({"C": 0.01}, {"C": 1.0}), "lgbm": ({"n_estimators": 20, "num_leaves": 4},)}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return curated_library(tmp_path_factory.mktemp("automl") / "curated", per_pack=4, packs=DEMO_PACKS[:5])


@pytest.fixture
def small_search(monkeypatch):
    monkeypatch.setattr(auto, "SEARCH", SMALL_SEARCH)
    monkeypatch.setattr(auto, "AUTO_FOLDS", 3)
    monkeypatch.setattr(auto, "ensure_embedding", lambda workspace: None)  # no aiSFX conversion: dsp only


def test_grouped_folds_are_scikit_learns_and_never_split_a_group():
    rng = np.random.default_rng(4)
    labels = list(rng.choice(["a", "b", "c"], size=60))
    groups = [f"pack{g}" for g in rng.integers(0, 9, size=60)]
    fold_of = grouped_folds(labels, groups, 4, seed=7)
    splitter = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=7)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(60), labels, groups)):
        assert sorted(np.flatnonzero(fold_of == fold)) == sorted(held_out)
    for group in set(groups):
        assert len({fold_of[i] for i in range(60) if groups[i] == group}) == 1
    with pytest.raises(InputError, match="3 groups"):
        grouped_folds(labels[:3], ["x", "y", "z"], 4)


def test_the_interval_over_folds_is_the_student_t_interval_of_scipy():
    values = [0.71, 0.64, 0.80, 0.77, 0.69]
    result = mean_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert result["mean"] == pytest.approx(np.mean(values))
    assert (result["low"], result["high"]) == (pytest.approx(low), pytest.approx(high))
    assert mean_interval([0.5]) == {"mean": 0.5, "low": 0.5, "high": 0.5, "values": [0.5]}
    spread = mean_interval([0.6, 1.0, 0.95], bounds=(0.0, 1.0))  # scipy's interval reaches past 1
    assert spread["high"] == 1.0 and spread["low"] == pytest.approx(
        stats.t.interval(0.95, 2, loc=0.85, scale=stats.sem([0.6, 1.0, 0.95]))[0])


def test_cross_validation_scores_each_held_out_pack_with_a_model_that_never_saw_it(workspace, library):
    data = training_data(workspace, FeatureSpec.parse("dsp"), dataset=library, min_class_samples=2, seed=1)
    assert data.grouping == "source" and "test" in set(data.splits)
    cv = cross_validate(data, "logreg", {}, 3, seed=1)
    assert cv["folds"] == 3 and cv["rows"] == int((data.splits != "test").sum())
    for metric in ("accuracy", "macro_f1", "ece"):
        m = cv["metrics"][metric]
        assert len(m["values"]) == 3 and m["mean"] == pytest.approx(np.mean(m["values"]))
    # the first fold again by hand: scikit-learn's fold, a logistic regression, scikit-learn's metrics
    from sklearn.metrics import accuracy_score

    from engine.models.logreg import LogisticRegressionClassifier

    rows = np.flatnonzero(data.splits != "test")
    fold_of = grouped_folds([data.classes[i] for i in data.y[rows]], [data.split_groups[r] for r in rows], 3, seed=1)
    held, fitting = rows[fold_of == 0], rows[fold_of != 0]
    assert not {data.split_groups[r] for r in held} & {data.split_groups[r] for r in fitting}
    model = LogisticRegressionClassifier(seed=1).fit(data.features[fitting], data.y[fitting],
                                                     n_classes=len(data.classes))
    assert cv["metrics"]["accuracy"]["values"][0] == pytest.approx(
        accuracy_score(data.y[held], model.predict(data.features[held])))


def test_auto_picks_the_best_candidate_by_cross_validation_and_trains_it(workspace, library, small_search):
    params = TrainRequest(name="picked", dataset=str(library), min_class_samples=2, seed=1).__dict__
    assert params["model"] == "auto"
    job = JobLog(workspace, "train", params, state="pending")
    run_training(workspace, job, params, CancelToken())
    version = resolve(workspace, "picked@1")
    search = version.meta["auto"]
    table = search["table"]
    assert [(r["kind"], r["features"]) for r in table] == [("logreg", "dsp"), ("logreg", "dsp"), ("lgbm", "dsp")]
    best = max(table, key=lambda r: r["metrics"]["macro_f1"]["mean"])
    assert [r["chosen"] for r in table].count(True) == 1 and best["chosen"]
    assert version.kind == best["kind"] and version.hyperparams["C" if best["kind"] == "logreg" else "num_leaves"] \
        == best["hyperparams"]["C" if best["kind"] == "logreg" else "num_leaves"]
    sizes = version.metrics["sizes"]
    assert all(r["rows"] == sizes["train"] + sizes["val"] for r in table)  # validation only, never test
    assert version.metrics["cv"]["metrics"] == best["metrics"]
    kinds = [kind for _, kind, _ in job_events(workspace, job.job_id)]
    assert kinds.count("candidate") == 3 and "auto" in kinds
    from tui.screens.train import cv_lines  # what the train screen shows under the result

    lines = cv_lines(search, version.metrics["cv"])
    assert len(lines) == 4 and sum(line.startswith("search *") for line in lines) == 1
    assert lines[-1].startswith(f"cross-validation, {search['cv']['folds']} folds by source: macro-F1")


def test_the_candidates_are_each_kind_on_the_features_its_input_takes(workspace, monkeypatch):
    found = auto.candidates(workspace)
    assert {(c.kind, c.features) for c in found} == {("logreg", "dsp"), ("lgbm", "dsp"), ("mlp", "dsp"), ("cnn", "mel")}
    assert {c.kind for c in auto.candidates(workspace, "mel")} == {"cnn"}
    assert all(c.hyperparams["epochs"] == 3 for c in auto.candidates(workspace, given={"epochs": 3}) if c.kind == "mlp")
    (workspace.embeddings_dir / "aisfx.onnx").parent.mkdir(parents=True, exist_ok=True)
    (workspace.embeddings_dir / "aisfx.onnx").write_bytes(b"")
    assert ("mlp", "hybrid:aisfx") in {(c.kind, c.features) for c in auto.candidates(workspace)}


def test_the_default_search_converts_the_bundled_embedding_once_and_goes_on_without_it_if_it_cannot(
        workspace, monkeypatch):
    from engine.embeddings import aisfx

    converted = []

    def install(ws, reporter=None):  # stands in for the ONNX export (tested in test_aisfx.py)
        converted.append(ws)
        path = ws.embeddings_dir / "aisfx.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        return path

    def broken(ws, reporter=None):
        raise InputError("no weights here")

    monkeypatch.setattr(aisfx, "install_aisfx", broken)
    problem = auto.ensure_embedding(workspace)
    assert "could not be installed" in problem and "no weights here" in problem
    assert {c.features for c in auto.candidates(workspace)} == {"dsp", "mel"}
    monkeypatch.setattr(aisfx, "install_aisfx", install)
    assert auto.ensure_embedding(workspace) is None and auto.ensure_embedding(workspace) is None
    assert converted == [workspace]  # once: the second call finds it installed
    assert ("mlp", "hybrid:aisfx") in {(c.kind, c.features) for c in auto.candidates(workspace)}


def test_train_cv_prints_the_table_and_puts_it_in_the_json_document(workspace, library):
    runner = CliRunner()
    args = ["--headless", "--workspace", str(workspace.root), "train", "--name", "checked", "--model", "logreg",
            "--dataset", str(library), "--min-class-samples", "2", "--cv", "3"]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.stdout + shown.stderr
    assert "3-fold grouped cross-validation (source)" in shown.stdout and "macro-F1" in shown.stdout
    document = json.loads(runner.invoke(app, [*args[:3], "models", "show", "checked@1", "--json"]).stdout)
    cv = document["model"]["metrics"]["cv"]
    assert cv["folds"] == 3 and cv["grouping"] == "source" and set(cv["metrics"]) == {"accuracy", "macro_f1", "ece"}
    assert (cv["kind"], cv["features"]) == ("logreg", document["model"]["features"])  # what was cross-validated
    assert any(line.split()[:2] == ["logreg", cv["features"]] for line in shown.stdout.splitlines())  # the table's row
    f1 = cv["metrics"]["macro_f1"]
    assert f"({f1['low']:.2f}–{f1['high']:.2f})" in shown.stdout  # the interval whole, at 80 columns
    bad = runner.invoke(app, [*args[:5], "bad", *args[6:-1], "1"])
    assert bad.exit_code != 0 and "at least 2 folds" in bad.stdout + bad.stderr


def test_an_ensemble_averages_the_best_candidates_and_its_member_files_are_checked(workspace, library, small_search,
                                                                                    tmp_path):
    from engine.models.artifacts import ModelFilesDamaged
    from engine.models.base import NotSupported
    from engine.models.registry import load_classifier

    params = TrainRequest(name="mix", dataset=str(library), min_class_samples=2, seed=1, ensemble=2).__dict__
    run_training(workspace, JobLog(workspace, "train", params, state="pending"), params, CancelToken())
    version = resolve(workspace, "mix@1")
    table = version.meta["auto"]["table"]
    best_two = sorted(table, key=lambda r: -r["metrics"]["macro_f1"]["mean"])[:2]
    assert version.kind == "ensemble"
    assert version.hyperparams["members"] == [{"kind": r["kind"], "hyperparams": r["hyperparams"]} for r in best_two]
    model = load_classifier(version)
    data = training_data(workspace, FeatureSpec.parse("dsp"), dataset=library, min_class_samples=2, seed=1)
    features = data.features[:8]
    mean = np.mean([m.predict_proba(features) for m in model.members_], axis=0)
    calibrated = mean ** (1 / model.temperature_)  # softmax(log(mean) / T)
    assert np.allclose(model.predict_proba(features), calibrated / calibrated.sum(axis=1, keepdims=True))
    with pytest.raises(NotSupported, match="ensemble"):
        model.export_onnx(tmp_path / "mix.onnx")
    member_file = next(p for p in (Path(version.artifact_dir) / "member1").iterdir() if p.name != "model.json")
    member_file.write_bytes(member_file.read_bytes()[:-1] + b" ")
    with pytest.raises(ModelFilesDamaged, match="member1"):
        load_classifier(version)
