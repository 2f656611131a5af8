"""The model registry: version numbers, activation and its history, rollback, deletion, resolving
references, ONNX export and registration that fails halfway.

Versions are registered straight from model folders fitted once per module (a logreg and a tiny
LightGBM on the dsp features of a small curated library), so no test needs a training job.
"""

from __future__ import annotations

import json
import shutil
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

from conftest import copy_workspace, curated_library
from engine.audio.synth import DEMO_PACKS
from engine.concepts import Split
from engine.errors import InputError, NotFound
from engine.features.spec import FeatureSpec
from engine.inference import infer_library
from engine.library.importer import import_folder
from engine.models.kinds import make_model, save_model
from engine.models.registry import (activate, activation_history, delete, export, list_versions, load_classifier, register,
                             resolve, rollback)
from engine.training.data import training_data
from engine.workspace import Workspace

CLASSES = ["hihat_closed", "kick", "snare"]
N_CLIPS = 3 * 3 * 4
DSP = FeatureSpec.parse("dsp")


# -- fixtures and helpers ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A curated library imported with dsp features cached, plus fitted model folders beside it."""
    root = tmp_path_factory.mktemp("registry")
    curated_library(root / "curated", classes=tuple(CLASSES), per_pack=4, packs=DEMO_PACKS[:3])
    ws = Workspace.open(root / "ws")
    import_folder(ws, root / "curated", curated=True, workers=1)
    data = training_data(ws, DSP, min_class_samples=1, split_by="clip", workers=1)
    assert data.classes == CLASSES
    X, y = data.part(Split.TRAIN)
    np.save(root / "train_features.npy", X)
    for kind, hyperparams in (("logreg", {}), ("lgbm", {"n_estimators": 10, "patience": 10})):
        model = make_model(kind, **hyperparams).fit(X, y, n_classes=len(CLASSES))
        save_model(model, root / "artifacts" / kind)
    return root


@pytest.fixture
def ws(template, tmp_path) -> Workspace:
    return Workspace.open(copy_workspace(template / "ws", tmp_path))


@pytest.fixture
def train_features(template) -> np.ndarray:
    return np.load(template / "train_features.npy")


def scratch_artifact(ws: Workspace, template: Path, kind: str = "logreg") -> Path:
    """A finished model folder in the job scratch area, as a training job leaves it."""
    folder = ws.runs_dir / f"job-{uuid.uuid4().hex[:8]}" / "model"
    shutil.copytree(template / "artifacts" / kind, folder)
    return folder


def add_version(ws: Workspace, template: Path, name: str = "drums", kind: str = "logreg",
                artifact: Path | None = None):
    artifact = artifact or scratch_artifact(ws, template, kind)
    return register(ws, name=name, task="drums", kind=kind, artifact_dir=artifact,
                    feature_spec=DSP, classes=CLASSES, label_counts={c: 12 for c in CLASSES},
                    hyperparams={"kind": kind}, metrics={"test": {"accuracy": 1.0, "macro_f1": 1.0, "n": 6}},
                    dataset_fingerprint="0123456789abcdef", job_id=None, meta={"window_s": None})


def predictions_per_model(ws: Workspace) -> dict[int, int]:
    with ws.db.transaction() as con:
        return dict(con.execute("SELECT model_id, count(*) FROM predictions GROUP BY model_id").fetchall())


# -- versions ---------------------------------------------------------------------------------

def test_versions_count_up_per_name(ws, template):
    refs = [add_version(ws, template).ref for _ in range(3)] + [add_version(ws, template, name="other").ref]
    assert refs == ["drums@1", "drums@2", "drums@3", "other@1"]
    assert [v.ref for v in list_versions(ws)] == ["drums@1", "drums@2", "drums@3", "other@1"]
    assert [v.version for v in list_versions(ws, "drums")] == [1, 2, 3]
    for version in list_versions(ws, "drums"):
        assert Path(version.artifact_dir) == ws.models_dir / "drums" / f"v{version.version}"
        assert (Path(version.artifact_dir) / "model.json").is_file()
        assert version.label_set == CLASSES and version.spec == DSP and not version.is_active
    assert not list(ws.runs_dir.glob("*/model")), "the scratch folders were moved, not copied"


def test_resolve_gives_the_active_version_else_the_newest(ws, template):
    for _ in range(3):
        add_version(ws, template)
    assert resolve(ws, "drums").version == 3  # nothing active: the newest
    activate(ws, "drums@2")
    assert resolve(ws, "drums").version == 2
    assert resolve(ws, " drums@1 ").version == 1
    with pytest.raises(NotFound, match=r"drums has no version 99 \(versions: 1, 2, 3\)"):
        resolve(ws, "drums@99")
    with pytest.raises(NotFound, match=r"no model named 'snares' \(models: drums\)"):
        resolve(ws, "snares")
    with pytest.raises(InputError, match="must look like NAME or NAME@VERSION"):
        resolve(ws, "drums@latest")


def test_resolve_in_an_empty_registry_says_there_are_none(ws):
    with pytest.raises(NotFound, match="none yet; train one"):
        resolve(ws, "drums")


# -- activation, history, rollback ------------------------------------------------------------

def test_activation_history_records_when_from_which_version_and_why(ws, template):
    for _ in range(3):
        add_version(ws, template)
    before = datetime.now()
    active, previous = activate(ws, "drums@1", reason="first")
    assert (active.ref, active.is_active, previous) == ("drums@1", True, None)
    active, previous = activate(ws, "drums@3", reason="better on the new packs")
    assert (active.version, previous) == (3, 1)
    assert [v.version for v in list_versions(ws, "drums") if v.is_active] == [3]  # exactly one active

    active, previous = rollback(ws, "drums")
    assert (active.version, previous) == (1, 3)
    assert resolve(ws, "drums").version == 1

    history = activation_history(ws, "drums")
    assert [(h["version"], h["previous_version"], h["reason"], h["forced"]) for h in history] == [
        (1, None, "first", False), (3, 1, "better on the new packs", False), (1, 3, "rollback from 3", False)]
    times = [datetime.fromisoformat(h["at"]) for h in history]
    assert times == sorted(times)
    assert abs((times[0] - before).total_seconds()) < 86400  # a real timestamp of now (whatever the timezone)

    activate(ws, "drums@2")
    rollback(ws, "drums", reason="v2 mislabels rides")
    last = activation_history(ws, "drums")[-1]
    assert (last["version"], last["previous_version"], last["reason"]) == (1, 2, "v2 mislabels rides")


def test_rollback_needs_an_earlier_active_version(ws, template):
    add_version(ws, template)
    add_version(ws, template)
    with pytest.raises(InputError, match="no active version to roll back from"):
        rollback(ws, "drums")
    activate(ws, "drums@2")
    with pytest.raises(InputError, match="drums@2 has no earlier active version to roll back to"):
        rollback(ws, "drums")
    assert resolve(ws, "drums").version == 2 and len(activation_history(ws, "drums")) == 1


def test_activating_a_version_of_another_name_leaves_this_name_alone(ws, template):
    add_version(ws, template)
    add_version(ws, template, name="other")
    activate(ws, "drums@1")
    activate(ws, "other@1")
    assert {v.ref for v in list_versions(ws) if v.is_active} == {"drums@1", "other@1"}
    assert [h["version"] for h in activation_history(ws, "drums")] == [1]


# -- deletion ---------------------------------------------------------------------------------

def test_the_active_version_cannot_be_deleted(ws, template):
    add_version(ws, template)
    activate(ws, "drums@1")
    with pytest.raises(InputError, match="drums@1 is active"):
        delete(ws, "drums@1")
    with pytest.raises(InputError, match="say which version to delete, e.g. drums@1"):
        delete(ws, "drums")
    assert Path(resolve(ws, "drums@1").artifact_dir).is_dir()


def test_deleting_a_version_removes_its_folder_and_its_predictions_only(ws, template):
    first, second = add_version(ws, template), add_version(ws, template)
    activate(ws, "drums@2")
    for ref in ("drums@1", "drums@2"):
        _, count, rejections = infer_library(ws, ref, workers=1)
        assert count == N_CLIPS and rejections == []
    assert predictions_per_model(ws) == {first.model_id: N_CLIPS, second.model_id: N_CLIPS}

    removed = delete(ws, "drums@1")
    assert removed.ref == "drums@1"
    assert not Path(first.artifact_dir).exists()
    assert Path(second.artifact_dir).is_dir()
    assert [v.ref for v in list_versions(ws)] == ["drums@2"]
    assert predictions_per_model(ws) == {second.model_id: N_CLIPS}
    with pytest.raises(NotFound, match=r"versions: 2\)"):
        resolve(ws, "drums@1")


# -- export -----------------------------------------------------------------------------------

def test_logreg_exports_to_onnx_with_the_same_probabilities(ws, template, train_features, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    version = add_version(ws, template)
    out = export(ws, "drums", tmp_path / "out" / "drums.onnx")
    assert out == tmp_path / "out" / "drums.onnx" and out.is_file()

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    (onnx_probabilities,) = session.run(None, {"features": train_features.astype(np.float32)})
    native = load_classifier(version).predict_proba(train_features)
    assert onnx_probabilities.shape == native.shape == (len(train_features), len(CLASSES))
    np.testing.assert_allclose(onnx_probabilities, native, atol=1e-4, rtol=0)

    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["classes"] == CLASSES and sidecar["model"] == "drums@1" and sidecar["kind"] == "logreg"
    assert sidecar["features"]["kind"] == "dsp"
    assert sidecar["temperature"] == load_classifier(version).temperature_
    assert sorted(p.name for p in out.parent.iterdir()) == ["drums.json", "drums.onnx"]  # no temp files


def test_an_export_its_check_refuses_writes_nothing(ws, template, tmp_path):
    add_version(ws, template, kind="lgbm")
    out = tmp_path / "out" / "drums.onnx"
    seen = []

    def refuse(version, data: bytes) -> None:
        seen.append((version.ref, len(data)))
        raise InputError("parity missed")

    with pytest.raises(InputError, match="parity missed"):
        export(ws, "drums@1", out, check=refuse)
    assert seen and seen[0][0] == "drums@1" and seen[0][1] > 0  # the check saw the graph's bytes
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    with pytest.raises(InputError, match="unknown export format 'tflite'"):
        export(ws, "drums@1", out, fmt="tflite")


# -- registration that fails ------------------------------------------------------------------

class _FailingInsert:
    """A connection whose INSERT of a model version fails, as a full disk or a constraint would."""

    def __init__(self, connection) -> None:
        self._connection = connection

    def execute(self, sql, *args, **kwargs):
        if sql.lstrip().startswith("INSERT INTO model_versions"):
            raise duckdb.IOException("simulated: could not write to the database")
        return self._connection.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._connection, name)


def test_a_registration_whose_insert_fails_leaves_no_version_folder(ws, template, monkeypatch):
    add_version(ws, template)
    artifact = scratch_artifact(ws, template)
    files = sorted(p.name for p in artifact.iterdir())
    real_transaction = ws.db.transaction

    @contextmanager
    def failing_transaction(**kwargs):
        with real_transaction(**kwargs) as connection:
            yield _FailingInsert(connection)

    monkeypatch.setattr(ws.db, "transaction", failing_transaction)
    with pytest.raises(duckdb.IOException, match="simulated"):
        add_version(ws, template, artifact=artifact)
    monkeypatch.undo()

    assert sorted(p.name for p in (ws.models_dir / "drums").iterdir()) == ["v1"]
    assert sorted(p.name for p in artifact.iterdir()) == files, "the artifact went back where it was"
    assert [v.ref for v in list_versions(ws)] == ["drums@1"]
    # and the same artifact registers fine afterwards
    assert add_version(ws, template, artifact=artifact).ref == "drums@2"


def test_a_folder_left_by_an_uncommitted_registration_is_replaced(ws, template):
    leftover = ws.models_dir / "drums" / "v1"
    leftover.mkdir(parents=True)
    (leftover / "half-written.bin").write_bytes(b"\0" * 16)
    version = add_version(ws, template)
    assert version.ref == "drums@1"
    assert sorted(p.name for p in leftover.iterdir()) == sorted(
        p.name for p in (template / "artifacts" / "logreg").iterdir())


# -- a workspace is a folder ------------------------------------------------------------------

def test_a_moved_workspace_still_loads_its_models(ws, template, tmp_path):
    add_version(ws, template)
    moved = tmp_path / "moved"
    ws.root.rename(moved)
    version = resolve(Workspace.open(moved), "drums@1")
    assert load_classifier(version).predict_proba(np.load(template / "train_features.npy")).shape[1] == 3


def test_deleting_a_version_in_a_copy_leaves_the_original_alone(ws, template, tmp_path):
    add_version(ws, template)
    add_version(ws, template)
    copy = Workspace.open(copy_workspace(ws.root, tmp_path / "copy"))
    delete(copy, "drums@1")
    assert (ws.models_dir / "drums" / "v1" / "model.json").is_file()
