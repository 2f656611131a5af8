"""Damaged model files: registration records each artifact's SHA-256, loading checks it before any
parser sees the bytes, the kinds check what they parse, and `models verify` reports per version.

Each damage case builds the bad file and asserts `ModelFilesDamaged` naming it. LightGBM's parser
crashes or spins on cut or garbled text, so in the LightGBM cases `lightgbm.Booster` is replaced by
a function that fails the test: the file is refused before LightGBM is reached, and the test
process never runs the parser on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import lightgbm
import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import write_tone
from engine.features.spec import FeatureSpec
from engine.models.artifacts import ModelFilesDamaged
from engine.models.kinds import load_model, make_model, save_model
from engine.models.registry import (DAMAGED, NO_HASHES, OK, ModelVersion, load_classifier, register, resolve,
                                    verify)
from engine.workspace import Workspace

CLASSES = ["hihat", "kick", "snare"]
QUICK = {"logreg": {}, "lgbm": {"n_estimators": 5, "patience": 5},
         "mlp": {"hidden": 8, "epochs": 1, "device": "cpu"}, "cnn": {"epochs": 1, "device": "cpu", "augment": False}}
FILES = {"logreg": ["logreg.json", "model.json"], "lgbm": ["lgbm.json", "lgbm.txt", "model.json"],
         "mlp": ["model.json", "network.json", "weights.safetensors"],
         "cnn": ["model.json", "network.json", "weights.safetensors"]}
runner = CliRunner()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    """A saved model folder of each kind, fitted on a small learnable problem, and its inputs."""
    root = tmp_path_factory.mktemp("fitted")
    rng = np.random.default_rng(0)
    saved = {}
    for kind, hyperparams in QUICK.items():
        shape = (8, 8) if kind == "cnn" else (6,)
        X = rng.normal(size=(45, *shape)).astype(np.float32)
        y = np.arange(45) % 3
        X[np.arange(45), y] += 2.0  # each class lifts one row of inputs
        save_model(make_model(kind, **hyperparams).fit(X, y, n_classes=3), root / kind)
        saved[kind] = root / kind, X
    return saved


@pytest.fixture
def forbid_lightgbm_parsing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("LightGBM was asked to parse a damaged file")

    monkeypatch.setattr(lightgbm, "Booster", refuse)


def add(ws: Workspace, fitted, kind: str, *, name: str = "drums", registered_kind: str | None = None,
        classes: list[str] = CLASSES) -> ModelVersion:
    artifact = ws.runs_dir / f"{name}-{kind}" / "model"
    shutil.copytree(fitted[kind][0], artifact)
    return register(ws, name=name, task="drums", kind=registered_kind or kind, artifact_dir=artifact,
                    feature_spec=FeatureSpec.parse("dsp"), classes=classes, label_counts={c: 15 for c in classes},
                    hyperparams={}, metrics={}, dataset_fingerprint="f", job_id=None)


def forget_hashes(ws: Workspace, version: ModelVersion) -> ModelVersion:
    """The version as registered before hashes were kept: no "files" in its meta."""
    meta = {k: v for k, v in version.meta.items() if k != "files"}
    with ws.db.transaction() as con:
        con.execute("UPDATE model_versions SET meta = ? WHERE model_id = ?", [json.dumps(meta), version.model_id])
    return resolve(ws, version.ref)


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "cut in half":
        path.write_bytes(data[:len(data) // 2])
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(1).bytes(len(data)))
    elif how == "header claims 1 TiB":
        path.write_bytes(struct.pack("<Q", 1 << 40) + data[8:])
    elif how == "not JSON":
        path.write_bytes(b'{"kind": "logreg", ' + b" " * max(0, len(data) - 19))
    else:
        raise ValueError(how)


def edit_json(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def refused(call, path: Path, problem: str) -> ModelFilesDamaged:
    with pytest.raises(ModelFilesDamaged) as caught:
        call()
    assert caught.value.path == path
    assert str(caught.value).startswith(f"model files damaged: {path} (")
    assert problem in caught.value.problem, caught.value.problem
    return caught.value


# -- registration and loading ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(QUICK))
def test_registration_records_each_file_and_the_version_loads_and_verifies(kind, fitted, workspace):
    version = add(workspace, fitted, kind)
    folder = Path(version.artifact_dir)
    assert sorted(version.meta["files"]) == FILES[kind] == sorted(p.name for p in folder.iterdir())
    for name, recorded in version.meta["files"].items():
        data = (folder / name).read_bytes()
        assert recorded == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

    folder_of_fit, X = fitted[kind]
    np.testing.assert_allclose(load_classifier(version).predict_proba(X), load_model(folder_of_fit).predict_proba(X),
                               rtol=0, atol=1e-9)
    assert verify(version).to_dict() == {"ref": "drums@1", "status": OK, "file": None, "problem": None}


# -- damage to registered files: refused on the hash, before any parser ------------------------------

@pytest.mark.parametrize("kind, name, how, problem", [
    ("lgbm", "lgbm.txt", "cut in half", "bytes where"),
    ("lgbm", "lgbm.txt", "garbage", "SHA-256 differs from the one recorded at registration"),
    ("mlp", "weights.safetensors", "header claims 1 TiB", "SHA-256 differs"),
    ("cnn", "weights.safetensors", "cut in half", "bytes where"),
    ("logreg", "model.json", "not JSON", "SHA-256 differs"),
])
def test_a_registered_file_that_changed_is_refused_before_it_is_parsed(kind, name, how, problem, fitted, workspace,
                                                                        forbid_lightgbm_parsing):
    version = add(workspace, fitted, kind)
    path = Path(version.artifact_dir) / name
    damage(path, how)
    refused(lambda: load_classifier(version), path, problem)
    check = verify(version)
    assert (check.status, check.file) == (DAMAGED, str(path)) and problem in check.problem


def test_a_wrong_coef_shape_in_a_registered_file_is_refused_on_its_hash(fitted, workspace):
    version = add(workspace, fitted, "logreg")
    path = Path(version.artifact_dir) / "logreg.json"
    edit_json(path, lambda d: d.update(coef=d["coef"][:-1]))
    refused(lambda: load_classifier(version), path, "registered")


def test_a_missing_file_a_fifo_and_an_unrecorded_file_are_refused(fitted, workspace):
    version = add(workspace, fitted, "lgbm")
    folder = Path(version.artifact_dir)
    (folder / "lgbm.json").unlink()
    refused(lambda: load_classifier(version), folder / "lgbm.json", "missing")
    os.mkfifo(folder / "lgbm.json")  # opening it for reading would wait for a writer forever
    refused(lambda: load_classifier(version), folder / "lgbm.json", "not a regular file")

    other = add(workspace, fitted, "logreg", name="other")
    recorded = dict(other.meta["files"])
    del recorded["logreg.json"]
    with workspace.db.transaction() as con:
        con.execute("UPDATE model_versions SET meta = ? WHERE model_id = ?",
                    [json.dumps({**other.meta, "files": recorded}), other.model_id])
    other = resolve(workspace, other.ref)
    refused(lambda: load_classifier(other), Path(other.artifact_dir) / "logreg.json", "not among the files recorded")


def test_a_folder_that_does_not_fit_its_registry_row_is_refused(fitted, workspace):
    wrong_kind = add(workspace, fitted, "logreg", name="a", registered_kind="lgbm")
    refused(lambda: load_classifier(wrong_kind), Path(wrong_kind.artifact_dir) / "model.json",
            "kind 'logreg' where the registry has 'lgbm'")
    two_classes = add(workspace, fitted, "lgbm", name="b", classes=["kick", "snare"])
    refused(lambda: load_classifier(two_classes), Path(two_classes.artifact_dir) / "lgbm.json",
            "3 classes where the registry has 2")


# -- versions registered before hashes were kept: the kinds' own checks -----------------------------

def test_a_version_without_hashes_loads_and_verify_says_so(fitted, workspace):
    version = forget_hashes(workspace, add(workspace, fitted, "lgbm"))
    assert "files" not in version.meta
    _, X = fitted["lgbm"]
    assert load_classifier(version).predict_proba(X).shape == (45, 3)
    assert verify(version).status == NO_HASHES


@pytest.mark.parametrize("how", ["cut in half", "garbage"])
def test_lightgbm_text_without_hashes_is_checked_before_lightgbm_parses_it(how, fitted, workspace,
                                                                          forbid_lightgbm_parsing):
    version = forget_hashes(workspace, add(workspace, fitted, "lgbm"))
    path = Path(version.artifact_dir) / "lgbm.txt"
    damage(path, how)
    problem = "not a complete LightGBM text model" if how == "cut in half" else "not UTF-8 text"
    refused(lambda: load_classifier(version), path, problem)
    assert verify(version).status == DAMAGED


def test_lightgbm_text_whose_class_or_feature_count_differs_from_its_json_is_refused(fitted, tmp_path,
                                                                                     forbid_lightgbm_parsing):
    folder = shutil.copytree(fitted["lgbm"][0], tmp_path / "m")
    edit_json(folder / "lgbm.json", lambda d: d.update(n_features=9))
    refused(lambda: load_model(folder), folder / "lgbm.txt", "max_feature_idx=5 where lgbm.json says 9 features")
    edit_json(folder / "lgbm.json", lambda d: d.update(n_classes=4, n_features=6))
    refused(lambda: load_model(folder), folder / "lgbm.txt", "num_class=3 where lgbm.json says 4")


def test_a_safetensors_header_claiming_1_tib_is_refused(fitted, tmp_path):
    folder = shutil.copytree(fitted["mlp"][0], tmp_path / "m")
    damage(folder / "weights.safetensors", "header claims 1 TiB")
    refused(lambda: load_model(folder), folder / "weights.safetensors", "not a readable safetensors file")


@pytest.mark.parametrize("kind, name, change, problem", [
    ("logreg", "model.json", lambda d: d.update(kind="svm"), "unknown model kind 'svm'"),
    ("logreg", "model.json", lambda d: d.pop("kind"), "'kind' is missing or not a string"),
    ("logreg", "logreg.json", lambda d: d.update(coef=d["coef"][:-1]), "'coef' has shape (2, 6), not (3, 6)"),
    ("logreg", "logreg.json", lambda d: d["coef"][0].append(1.0), "'coef' is not an array of numbers"),
    ("logreg", "logreg.json", lambda d: d.update(scale=[0.0] * 6), "'scale' holds a value that is not positive"),
    ("logreg", "logreg.json", lambda d: d.update(n_classes=True), "'n_classes' is missing or not an integer"),
    ("logreg", "logreg.json", lambda d: d["hyperparams"].update(gamma=1), "unknown hyperparameter(s) gamma"),
    ("lgbm", "lgbm.json", lambda d: d["hyperparams"].update(num_leaves="many"), "hyperparameter num_leaves is 'many'"),
    ("mlp", "network.json", lambda d: d["hyperparams"].update(hidden=10**9),
     "tensor 1.bias has shape (8,) where network.json needs (1000000000,)"),
    ("mlp", "network.json", lambda d: d["config"].update(mean=[0.0] * 5), "'mean' is not 6 finite numbers"),
    ("mlp", "network.json", lambda d: d["hyperparams"].update(dropout=7.0), "does not describe a network"),
    ("cnn", "network.json", lambda d: d["config"].update(input_shape=[8]), "input_shape is [8], not 2 positive"),
    ("cnn", "network.json", lambda d: d.update(n_classes=5), "tensor head.2.bias has shape (3,) where network.json needs (5,)"),
])
def test_a_file_that_parses_but_does_not_fit_is_refused(kind, name, change, problem, fitted, tmp_path):
    folder = shutil.copytree(fitted[kind][0], tmp_path / "m")
    edit_json(folder / name, change)
    blamed = "weights.safetensors" if problem.startswith("tensor ") else name
    refused(lambda: load_model(folder), folder / blamed, problem)


def test_bad_model_json_is_refused(fitted, tmp_path):
    folder = shutil.copytree(fitted["logreg"][0], tmp_path / "m")
    damage(folder / "model.json", "not JSON")
    refused(lambda: load_model(folder), folder / "model.json", "not valid JSON")
    (folder / "model.json").write_text("[1, 2]")
    refused(lambda: load_model(folder), folder / "model.json", "not a JSON object")


# -- the CLI --------------------------------------------------------------------------------------

def cli(ws: Workspace, *args: str):
    result = runner.invoke(app, ["--headless", "--workspace", str(ws.root), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_models_verify_reports_each_version_and_exits_1_on_damage(fitted, workspace):
    good = add(workspace, fitted, "logreg")
    old = forget_hashes(workspace, add(workspace, fitted, "lgbm", name="old"))
    bad = add(workspace, fitted, "lgbm", name="bad")
    damage(Path(bad.artifact_dir) / "lgbm.txt", "garbage")

    result = cli(workspace, "models", "verify", good.ref)
    assert result.exit_code == 0 and result.stdout == "drums@1: OK\n"
    result = cli(workspace, "models", "verify", old.ref, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["versions"] == [{"ref": "old@1", "status": "no hashes recorded",
                                                       "file": None, "problem": None}]

    result = cli(workspace, "models", "verify", "--all")
    lgbm_txt = Path(bad.artifact_dir) / "lgbm.txt"
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"bad@1: damaged: {lgbm_txt} (SHA-256 differs from the one recorded at registration)",
        "drums@1: OK", "old@1: no hashes recorded"]
    result = cli(workspace, "models", "verify", "--all", "--json")
    document = json.loads(result.stdout)
    assert result.exit_code == document["exit_code"] == 1 and document["ok"] is False
    assert document["error"]["type"] == "ModelFilesDamaged"
    assert document["error"]["message"].startswith(f"model files damaged: bad@1: {lgbm_txt}")
    assert [v["status"] for v in document["versions"]] == [DAMAGED, OK, NO_HASHES]

    assert cli(workspace, "models", "verify").exit_code == 2
    assert cli(workspace, "models", "verify", "drums", "--all").exit_code == 2


def test_predict_with_a_damaged_model_exits_1_with_the_error_document(fitted, workspace, tmp_path):
    version = add(workspace, fitted, "lgbm")
    path = Path(version.artifact_dir) / "lgbm.txt"
    damage(path, "cut in half")
    result = cli(workspace, "predict", str(write_tone(tmp_path / "a.wav", seconds=0.5)), "--model", version.ref,
                 "--json")
    document = json.loads(result.stdout)
    assert result.exit_code == document["exit_code"] == 1
    assert document["error"]["type"] == "ModelFilesDamaged"
    assert document["error"]["message"].startswith(f"model files damaged: {path} (")
