"""Triage suspects (likely mislabels and near-duplicate pairs, most suspicious first), and the two
searches behind them checked against plain references."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import copy_workspace
from engine.datasets.mislabels import confident_learning, out_of_fold_probabilities
from engine.datasets.similarity import near_duplicate_pairs, unit_rows
from engine.gates.dataset import DatasetContext
from engine.triage.suspects import KINDS, suspects
from engine.workspace import Workspace
from gates_library import PACKS, build, clip_of, copy_at_gain, import_files, library_files, relabel


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("triage"))


@pytest.fixture
def workspace(template, tmp_path) -> Workspace:
    return Workspace.open(copy_workspace(template, tmp_path))


def test_blocked_search_finds_exactly_the_pairs_of_the_full_matrix():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 12))
    features[250:260] = features[:10] + 1e-3 * rng.normal(size=(10, 12))  # near copies
    found = near_duplicate_pairs(features, 0.999, block_rows=64)
    unit = unit_rows(features)
    full = unit @ unit.T
    expected = {(i, j) for i, j in zip(*np.nonzero(full >= 0.999)) if i < j}
    assert {(int(a), int(b)) for a, b in zip(found.first, found.second)} == expected
    assert len(expected) >= 10 and found.total_pairs == len(expected)
    assert np.all(np.diff(found.similarity) <= 0) and found.involved.sum() == len({x for pair in expected for x in pair})
    limited = near_duplicate_pairs(features, 0.999, block_rows=64, limit=3)
    assert len(limited) == 3 and limited.total_pairs == len(expected)


def test_confident_learning_finds_flipped_labels_of_separable_classes():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0, 0], [6, 0, 0], [0, 6, 0]], dtype=float)
    y = np.repeat(np.arange(3), 40)
    features = centres[y] + rng.normal(size=(120, 3))
    noisy = y.copy()
    flipped = [3, 50, 95]
    noisy[flipped] = [1, 2, 0]
    out_of_fold = out_of_fold_probabilities(features, noisy, np.arange(120) % 6, 3, folds=5)
    assert out_of_fold.grouped  # six groups, every class in several
    found = confident_learning(out_of_fold.probabilities, noisy)
    assert set(found.rows[:3]) == set(flipped)
    assert [int(found.suggested[list(found.rows).index(r)]) for r in flipped] == [0, 1, 2]
    assert len(found) <= 6 and np.all(np.diff(found.margin) <= 0)


def test_a_planted_mislabel_leads_the_suspects(workspace, template):
    clean = suspects(DatasetContext(workspace, workers=1))
    assert all(s.kind == "likely_mislabel" for s in clean) and len(clean) <= 2
    planted = clip_of(workspace, library_files(template.parent, "kick", PACKS[1])[2])
    relabel(workspace, planted, "hihat_closed")
    found = suspects(DatasetContext(workspace, workers=1))
    top = [s for s in found[:3] if s.clip_id == planted]
    assert top and top[0].kind == "likely_mislabel" and top[0].label == "hihat_closed" and top[0].suggested == "kick"


def test_duplicates_are_ordered_conflicts_first(workspace, template, tmp_path):
    kick = library_files(template.parent, "kick", PACKS[0])[0]
    snare = library_files(template.parent, "snare", PACKS[2])[0]
    copy_at_gain(kick, tmp_path / "planted" / "snare" / PACKS[0].name / "kick_as_snare.wav")  # conflicting
    copy_at_gain(snare, tmp_path / "planted" / "snare" / PACKS[0].name / "snare_elsewhere.wav")  # leaks
    import_files(workspace, tmp_path, {})
    found = suspects(DatasetContext(workspace, workers=1))
    kinds = [s.kind for s in found]
    assert kinds == sorted(kinds, key=KINDS.index)
    assert kinds[0] == "conflicting_duplicate" and "leaked_duplicate" in kinds
    conflict = found[0]
    assert {conflict.clip_id, conflict.other["clip_id"]} == {
        clip_of(workspace, kick), clip_of(workspace, tmp_path / "planted" / "snare" / PACKS[0].name / "kick_as_snare.wav")}
    assert conflict.score >= 0.999 and {conflict.label, conflict.suggested} == {"kick", "snare"}


def test_triage_suspects_command(workspace, template):
    planted = clip_of(workspace, library_files(template.parent, "snare", PACKS[0])[3])
    relabel(workspace, planted, "kick")
    result = CliRunner().invoke(app, ["--headless", "--workspace", str(workspace.root), "triage", "suspects",
                                      "--features", "dsp", "--workers", "1", "--limit", "5", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["taxonomy"] == "drums" and answer["features"] == "dsp" and len(answer["suspects"]) <= 5
    assert planted in [s["clip_id"] for s in answer["suspects"][:3]]
    assert set(answer["suspects"][0]) == {"kind", "score", "clip_id", "path", "label", "source", "segment", "split",
                                          "suggested", "other", "detail"}
    from engine.library.walk import suspect_queue

    assert suspect_queue(workspace)[:len(answer["suspects"])] == list(dict.fromkeys(s["clip_id"] for s in answer["suspects"]))
    del result
    gc.collect()
    unknown = CliRunner().invoke(app, ["--headless", "--workspace", str(workspace.root), "triage", "suspects",
                                       "--model", "nope", "--json"])
    assert unknown.exit_code == 1 and "no model named 'nope'" in json.loads(unknown.stdout)["error"]["message"]
