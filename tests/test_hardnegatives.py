"""Hard negatives: confident predictions of a label the clip was not given, most confident first,
capped per predicted label, written atomically as JSONL (`triage hard-negatives`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import copy_workspace
from engine.errors import InputError
from engine.triage.hard_negatives import HardNegative, hard_negatives, rank_hard_negatives, write_jsonl
from engine.jobs.log import JobLog
from engine.progress import CancelToken
from engine.training.run import TrainRequest, run_training
from engine.workspace import Workspace
from tonelib import TONE_CLASSES, noise_folder, tone, tone_library, write


def negative(path: str, label: str | None, predicted: str, confidence: float) -> HardNegative:
    return HardNegative(path, path, None, None, label, predicted, confidence, "labelled" if label else "ood")


def test_ranking_keeps_confident_mistakes_most_confident_first_capped_per_label():
    candidates = [negative("a", "low", "mid", 0.75), negative("b", "low", "mid", 0.95), negative("c", "mid", "mid", 0.99),
                  negative("d", "high", "mid", 0.85), negative("e", "low", "high", 0.65), negative("f", None, "high", 0.9),
                  negative("g", "mid", "low", 0.8)]
    ranked = rank_hard_negatives(candidates, min_confidence=0.7, max_per_label=2)
    assert [n.path for n in ranked] == ["b", "f", "d", "g"]  # c is right, e unsure, a beyond mid's cap of 2
    assert [n.path for n in rank_hard_negatives(candidates, 0.7, 5)] == ["b", "f", "d", "g", "a"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Workspace, Path, list[Path]]:
    """A tone model trained on a clean library, then looked at with a library holding three high
    tones filed under "low"."""
    root = tmp_path_factory.mktemp("hard_negatives")
    tone_library(root / "clean", per_pack=4)
    ws = Workspace.open(root / "ws")
    params = TrainRequest(name="tones", model="logreg", dataset=str(root / "clean"), min_class_samples=2,
                          split_by="clip").__dict__
    run_training(ws, JobLog(ws, "train", params, state="pending"), params, CancelToken())
    tone_library(root / "labelled", per_pack=2, seed=3)
    rng = np.random.default_rng(8)
    planted = [write(root / "labelled" / "low" / "pack_a" / f"mislabelled_{n}.wav", tone(TONE_CLASSES["high"], rng))
               for n in range(3)]
    return ws, root, planted


def test_planted_mislabels_come_out_as_hard_negatives_of_the_label_they_sound_like(planted, tmp_path):
    ws, root, planted_files = planted
    version, negatives, rejections = hard_negatives(ws, "tones", dataset=root / "labelled", min_confidence=0.7,
                                                    workers=1)
    assert version.ref == "tones@1" and rejections == []
    assert sorted(n.path for n in negatives) == sorted(str(p) for p in planted_files)
    assert {(n.label, n.predicted, n.origin) for n in negatives} == {("low", "high", "labelled")}
    confidences = [n.confidence for n in negatives]
    assert confidences == sorted(confidences, reverse=True) and min(confidences) >= 0.7

    capped = hard_negatives(ws, "tones", dataset=root / "labelled", max_per_label=1, workers=1)[1]
    assert capped == negatives[:1]

    with_ood = hard_negatives(ws, "tones", dataset=root / "labelled", ood_folder=noise_folder(tmp_path / "noise", 4),
                              min_confidence=0.0, workers=1)[1]
    ood = [n for n in with_ood if n.origin == "ood"]
    assert len(ood) == 4 and all(n.label is None for n in ood)
    assert [n.confidence for n in with_ood] == sorted((n.confidence for n in with_ood), reverse=True)

    with pytest.raises(InputError, match="min-confidence"):
        hard_negatives(ws, "tones", min_confidence=1.5)


def test_the_model_s_own_training_folder_is_the_default_and_jsonl_is_written_atomically(planted, tmp_path):
    ws, root, _ = planted
    _, negatives, _ = hard_negatives(ws, "tones", min_confidence=0.0, workers=1)
    assert all(str(root / "clean") in n.path for n in negatives)  # the clean library: few or no mistakes
    out = write_jsonl(negatives, tmp_path / "negatives.jsonl", "tones@1")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(negatives) and all(line["model"] == "tones@1" for line in lines)
    assert not list(tmp_path.glob(".negatives.jsonl.*"))


def test_triage_hard_negatives_command(planted, tmp_path):
    ws, root, planted_files = planted
    out = tmp_path / "negatives.jsonl"
    copy = copy_workspace(ws.root, tmp_path)  # the CLI opens its own cache; this process holds the template's
    result = CliRunner().invoke(app, ["--headless", "--workspace", str(copy), "triage", "hard-negatives",
                                      "--model", "tones", "--dataset", str(root / "labelled"), "--min-confidence",
                                      "0.7", "--max-per-label", "150", "--out", str(out), "--json", "--workers", "1"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["count"] == 3 and document["per_label"] == {"high": 3}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(row["path"] for row in rows) == sorted(str(p) for p in planted_files)
    assert [row["confidence"] for row in rows] == sorted((row["confidence"] for row in rows), reverse=True)
