"""Per-group sampling weights: derived (inverse frequency within class, rarest group = 1, clamped),
written atomically by `weights derive`, and honoured by every model kind and by `train --weights`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import write_hits
from engine.audio.synth import DEMO_PACKS
from engine.errors import InputError
from engine.jobs.log import JobLog
from engine.library.importer import import_folder
from engine.models.kinds import make_model
from engine.progress import CancelToken
from engine.models.registry import load_classifier, resolve
from engine.training.run import TrainRequest, run_training
from engine.datasets.weights import derive_weights, group_weights, read_weights, write_weights
from engine.workspace import Workspace


def test_weights_are_inverse_frequency_within_class_with_the_rarest_group_at_one_then_clamped():
    labels = ["kick"] * 13 + ["snare"] * 4
    groups = ["a"] * 10 + ["b"] * 2 + ["c"] + ["a"] * 2 + ["b"] * 2
    assert group_weights(labels, groups, 0.0001, 10.0) == {"kick": {"a": 0.1, "b": 0.5, "c": 1.0},
                                                           "snare": {"a": 1.0, "b": 1.0}}
    assert group_weights(labels, groups, 0.2, 0.5) == {"kick": {"a": 0.2, "b": 0.5, "c": 0.5},
                                                       "snare": {"a": 0.5, "b": 0.5}}
    with pytest.raises(InputError, match="clamp"):
        group_weights(labels, groups, 0.5, 0.2)
    with pytest.raises(InputError, match="clamp"):
        group_weights(labels, groups, 0.0, 0.2)


@pytest.fixture
def drums_ws(tmp_path) -> Workspace:
    """kick: 8 clips from pack 0, 2 from pack 1, 2 from pack 2; snare: 4 from each pack."""
    counts = {"kick": (8, 2, 2), "snare": (4, 4, 4)}
    for kind, per_pack in counts.items():
        for number, (pack, count) in enumerate(zip(DEMO_PACKS[:3], per_pack)):
            write_hits(tmp_path / "curated" / kind / pack.name, kind, count, pack=pack, seed=number)
    ws = Workspace.open(tmp_path / "ws")
    import_folder(ws, tmp_path / "curated", curated=True, workers=1)
    return ws


def test_derive_weights_by_source_and_by_session(drums_ws, tmp_path):
    packs = [p.name for p in DEMO_PACKS[:3]]
    document = derive_weights(drums_ws, grouping="source", clamp=(0.05, 0.5))
    assert document["counts"]["kick"] == {packs[0]: 8, packs[1]: 2, packs[2]: 2}
    assert document["weights"]["kick"] == {packs[0]: 0.25, packs[1]: 0.5, packs[2]: 0.5}
    assert document["weights"]["snare"] == {p: 0.5 for p in packs}
    sessions = derive_weights(drums_ws, grouping="session", clamp=(0.05, 1.0))
    assert sessions["weights"]["kick"] == {str(tmp_path / "curated" / "kick" / packs[0]): 0.25,
                                           str(tmp_path / "curated" / "kick" / packs[1]): 1.0,
                                           str(tmp_path / "curated" / "kick" / packs[2]): 1.0}
    out = write_weights(document, tmp_path / "weights.json")
    assert read_weights(out) == document and not list(tmp_path.glob(".weights.json.*"))
    with pytest.raises(InputError, match="--group"):
        derive_weights(drums_ws, grouping="pack")


def test_weights_derive_command_writes_the_file(drums_ws, tmp_path):
    out = tmp_path / "out" / "weights.json"
    result = CliRunner().invoke(app, ["--headless", "--workspace", str(drums_ws.root), "weights", "derive",
                                      "--group", "source", "--clamp", "0.05", "0.5", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["out"] == str(out)
    assert json.loads(out.read_text())["weights"]["kick"][DEMO_PACKS[0].name] == 0.25
    bad = CliRunner().invoke(app, ["--headless", "--workspace", str(drums_ws.root), "weights", "derive",
                                   "--clamp", "0.6", "0.5", "--out", str(out)])
    assert bad.exit_code == 1 and "clamp" in bad.output


@pytest.mark.parametrize("kind, extra", [("logreg", {}), ("lgbm", {"n_estimators": 30, "min_child_samples": 2}),
                                         ("mlp", {"epochs": 40, "device": "cpu", "patience": 40})])
def test_every_feature_kind_follows_sample_weights(kind, extra):
    """The same points carry both labels; the weights decide which one the model learns. (Without
    class balancing: scikit-learn's "balanced" would even out the classes' weighted totals.)"""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    X2 = np.concatenate([X, X])
    y2 = np.concatenate([np.zeros(60, int), np.ones(60, int)])
    for favoured in (0, 1):
        weight = np.where(y2 == favoured, 1.0, 0.05)
        model = make_model(kind, seed=0, class_balance=False, **extra)
        model.fit(X2, y2, n_classes=2, sample_weight=weight)
        assert np.mean(model.predict(X) == favoured) > 0.9, (kind, favoured)


def train(ws: Workspace, **fields):
    params = TrainRequest(**{"name": "drums", "model": "logreg", "min_class_samples": 2, "split_by": "clip",
                             **fields}).__dict__
    run_training(ws, JobLog(ws, "train", params, state="pending"), params, CancelToken())
    return resolve(ws, "drums")


def test_train_with_weights_uses_them(drums_ws, tmp_path):
    plain = train(drums_ws)
    path = write_weights(derive_weights(drums_ws, grouping="source", clamp=(0.01, 1.0)), tmp_path / "w.json")
    weighted = train(drums_ws, weights=str(path))
    assert weighted.meta["weights"] == str(path)
    assert any("sample weights from w.json" in note for note in weighted.meta["notes"])
    assert not np.allclose(load_classifier(plain).coef_, load_classifier(weighted).coef_)
    with pytest.raises(InputError, match="not a workbench weights file"):
        (tmp_path / "bad.json").write_text("{}")
        train(drums_ws, weights=str(tmp_path / "bad.json"))
