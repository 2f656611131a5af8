"""Model gates, each on a set built to pass and one built to fail it: a logistic regression on dsp
features of three tone classes (a curated folder), noise vs. the same tones as unknown sounds, a
folder with a planted confusable class, two-channel clips with a planted lag, and a section model
on synthesised DJ tracks with one track's labels planted four bars off."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import copy_workspace
from engine.audio.alignment import channel_lags
from engine.audio.beatgrid import BeatGrid
from engine.audio.synth import synthesize_section_track
from engine.evaluation.boundaries import matched
from engine.evaluation.metrics import evaluate
from engine.gates.core import all_gates, default_settings, load_settings, run_gates
from engine.gates.model import ModelContext
from engine.inference import predict_files
from engine.jobs.log import JobLog
from engine.library.editing import add_label
from engine.library.grids import set_grid
from engine.library.importer import import_folder
from engine.evaluation.openset import auroc, threshold_at_tpr
from engine.progress import CancelToken
from engine.models.registry import resolve
from engine.training.run import TrainRequest, run_training
from engine.workspace import Workspace
from tonelib import RATE, TONE_CLASSES, noise, noise_folder, tone, tone_folder, tone_library, write

MODEL_GATES = ["model.accuracy", "model.macro_f1", "model.class_recall", "model.calibration", "model.open_set",
               "model.boundaries", "model.alignment"]


def train(ws: Workspace, **fields) -> None:
    params = TrainRequest(**{"model": "logreg", "min_class_samples": 2, "split_by": "clip", **fields}).__dict__
    run_training(ws, JobLog(ws, "train", params, state="pending"), params, CancelToken())


def check(context: ModelContext, gate_id: str, **overrides):
    settings = default_settings()
    settings[gate_id].update(overrides)
    (result,) = run_gates("model", context, settings, subject={}, only=[gate_id]).results
    return result


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> Path:
    """A template: the tone library, a logreg version `tones@1` trained on it (split by clip)."""
    root = tmp_path_factory.mktemp("gates_tones")
    tone_library(root / "tones", per_pack=5)
    ws = Workspace.open(root / "ws")
    train(ws, name="tones", dataset=str(root / "tones"))
    return root


@pytest.fixture
def tones_ws(tones, tmp_path) -> Workspace:
    return Workspace.open(copy_workspace(tones / "ws", tmp_path))


def test_model_gates_are_registered_with_documented_defaults(tmp_path):
    gates = {g.id: g for g in all_gates("model")}
    assert list(gates) == MODEL_GATES
    for g in gates.values():
        assert g.doc and all(name in g.doc for name in g.defaults if name != "resamples")
    config = tmp_path / "gates.toml"
    config.write_text("[model.open_set]\nmin_auroc = 0.8\n[model.accuracy]\nmin_lower = 0.5\n")
    settings = load_settings(config)
    assert settings["model.open_set"]["min_auroc"] == 0.8 and settings["model.accuracy"]["min_lower"] == 0.5


def test_the_reproduced_test_split_is_the_one_training_held_out(tones_ws):
    version = resolve(tones_ws, "tones")
    context = ModelContext(tones_ws, version, workers=1)
    rows = context.rows
    assert rows.source == "test split" and len(rows.y) == version.metrics["test"]["n"]
    fresh = evaluate(rows.y, rows.probabilities, version.label_set, seed=context.seed).to_dict()
    assert fresh == version.metrics["test"]  # same rows, same predictions, same bootstrap


def test_score_gates_pass_on_a_good_model_and_carry_the_confusion_matrix(tones_ws):
    context = ModelContext(tones_ws, resolve(tones_ws, "tones"), workers=1)
    report = run_gates("model", context, default_settings(), subject={})
    status = {r.gate: r.status for r in report.results}
    assert status == {"model.accuracy": "PASS", "model.macro_f1": "PASS", "model.class_recall": "PASS",
                      "model.calibration": "PASS", "model.open_set": "SKIP", "model.boundaries": "SKIP",
                      "model.alignment": "SKIP"}
    accuracy = report.results[0]
    (matrix,) = accuracy.items
    assert matrix["classes"] == sorted(TONE_CLASSES)
    confusion = np.array(matrix["confusion"])
    assert confusion.sum() == context.evaluation().n and np.trace(confusion) == confusion.sum()


def test_a_small_test_set_fails_on_its_ci_lower_bound_though_its_accuracy_clears_the_bar(tones_ws, tmp_path):
    rng = np.random.default_rng(3)
    for n in range(5):  # six tones, one of them planted in the wrong class folder
        write(tmp_path / "small" / "low" / f"low_{n}.wav", tone(TONE_CLASSES["low"], rng))
    write(tmp_path / "small" / "low" / "really_high.wav", tone(TONE_CLASSES["high"], rng))
    context = ModelContext(tones_ws, resolve(tones_ws, "tones"), test_folder=tmp_path / "small", workers=1)
    result = check(context, "model.accuracy", min_lower=0.8)
    assert context.evaluation().accuracy == pytest.approx(5 / 6)
    assert result.passed is False and result.value < 0.8
    assert "on 6 examples" in result.detail and str(tmp_path / "small") in result.detail


def test_a_planted_confusable_class_fails_the_recall_floor_and_calibration(tones_ws, tmp_path):
    rng = np.random.default_rng(4)
    for label in TONE_CLASSES:
        for n in range(4):  # "mid" holds low tones: the model hears low, confidently
            freq = TONE_CLASSES["low" if label == "mid" else label]
            write(tmp_path / "confusable" / label / f"{label}_{n}.wav", tone(freq, rng))
    context = ModelContext(tones_ws, resolve(tones_ws, "tones"), test_folder=tmp_path / "confusable", workers=1)
    recall = check(context, "model.class_recall")
    assert recall.passed is False and recall.value == 0.0
    assert recall.items == [{"class": "mid", "recall": 0.0, "support": 4, "taken_for": "low"}]
    calibration = check(context, "model.calibration")
    assert calibration.passed is False and calibration.value > 0.2
    assert check(context, "model.calibration", max_ece=0.5).passed is True


def test_open_set_passes_on_noise_fails_on_the_same_tones_and_stores_the_threshold(tones_ws, tmp_path):
    version = resolve(tones_ws, "tones")
    noisy = ModelContext(tones_ws, version, ood_folder=noise_folder(tmp_path / "noise"), workers=1)
    result = check(noisy, "model.open_set", method="distance")
    assert result.passed is True and result.value >= 0.9
    assert {item["method"] for item in result.items} == {"max_softmax", "energy", "distance"}
    stored = resolve(tones_ws, "tones")
    assert stored.reject_threshold == pytest.approx(threshold_at_tpr(
        -noisy.centroids.nearest_distance(noisy.rows.features), 0.95))
    assert stored.meta["open_set"]["method"] == "distance" and stored.meta["open_set"]["centroids"]

    same = ModelContext(tones_ws, stored, ood_folder=tone_folder(tmp_path / "same"), workers=1)
    failing = check(same, "model.open_set", method="distance", store_threshold=False)
    assert failing.passed is False and failing.value < 0.9
    assert resolve(tones_ws, "tones").reject_threshold == stored.reject_threshold  # not overwritten

    skipped = check(ModelContext(tones_ws, stored, workers=1), "model.open_set")
    assert skipped.passed is None and "--ood" in skipped.detail


def test_predict_answers_unknown_below_the_stored_reject_threshold(tones_ws, tmp_path):
    version = resolve(tones_ws, "tones")
    context = ModelContext(tones_ws, version, ood_folder=noise_folder(tmp_path / "noise"), workers=1)
    data = context.training
    # With fewer than 20 known test examples, 95% TPR keeps all of them: each is accepted.
    held_out = [(t.path, data.classes[y]) for t, s, y in zip(data.targets, data.splits, data.y) if s == "test"]
    probes = [write(tmp_path / "probe" / "noise.wav", noise(np.random.default_rng(9)))] + [Path(p) for p, _ in held_out]
    _, before, _ = predict_files(tones_ws, "tones", probes, workers=1)
    assert "unknown" not in {p.label for p in before}
    check(context, "model.open_set", method="distance")
    _, after, _ = predict_files(tones_ws, "tones", probes, workers=1)
    labels = {p.path: p.label for p in after}
    assert labels == {str(probes[0]): "unknown", **{path: label for path, label in held_out}}
    assert [p.top for p in after] == [p.top for p in before]  # the class scores are still given


def test_auroc_counts_ties_as_half():
    assert auroc(np.array([1.0, 2.0]), np.array([0.0, 0.5])) == 1.0
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5
    assert auroc(np.array([0.0, 3.0]), np.array([1.0, 2.0])) == 0.5


# -- multi-mic alignment -----------------------------------------------------------------------

def two_channel(path: Path, lag_s: float, rng: np.random.Generator) -> Path:
    source = tone(TONE_CLASSES["mid"], rng, 0.5, 0.2) + 0.05 * rng.standard_normal(RATE).astype(np.float32)
    shift = int(round(lag_s * RATE))
    late = np.concatenate([np.zeros(shift, np.float32), source[:len(source) - shift]])
    return write(path, np.stack([source, late], axis=1))


def test_channel_lag_is_measured_to_a_fraction_of_a_millisecond(tmp_path):
    rng = np.random.default_rng(1)
    for lag in (0.0, 0.002, 0.005):
        channels, (measured,) = channel_lags(two_channel(tmp_path / f"lag{lag}.wav", lag, rng))
        assert channels == 2 and measured == pytest.approx(lag, abs=1e-4)


def test_alignment_fails_on_a_planted_lag_and_skips_without_multichannel_clips(tones_ws, tmp_path):
    rng = np.random.default_rng(2)
    version = resolve(tones_ws, "tones")
    aligned = tmp_path / "aligned" / "mid"
    for n in range(3):
        two_channel(aligned / f"take{n}.wav", 0.0, rng)
    passing = check(ModelContext(tones_ws, version, test_folder=tmp_path / "aligned", workers=1), "model.alignment")
    assert passing.passed is True and passing.value <= 0.1

    shutil.copytree(aligned, tmp_path / "lagged" / "mid")
    late = two_channel(tmp_path / "lagged" / "mid" / "late.wav", 0.005, rng)
    failing = check(ModelContext(tones_ws, version, test_folder=tmp_path / "lagged", workers=1), "model.alignment")
    assert failing.passed is False and failing.value == pytest.approx(5.0, abs=0.1)
    assert [item["path"] for item in failing.items] == [str(late)]
    assert failing.items[0]["lags_ms"][0] == pytest.approx(5.0, abs=0.1)
    assert check(ModelContext(tones_ws, version, test_folder=tmp_path / "lagged", workers=1), "model.alignment",
                 tolerance_ms=6.0).passed is True


def test_a_silent_channel_is_reported_as_silent_not_as_misaligned(tones_ws, tmp_path):
    rng = np.random.default_rng(3)
    version = resolve(tones_ws, "tones")
    takes = tmp_path / "takes" / "mid"
    aligned = two_channel(takes / "aligned.wav", 0.0, rng)
    source = soundfile.read(aligned, dtype="float32")[0][:, 0]
    dead = write(takes / "dead.wav", np.stack([source, np.zeros_like(source)], axis=1))
    result = check(ModelContext(tones_ws, version, test_folder=tmp_path / "takes", workers=1), "model.alignment")
    assert result.passed is True and result.value <= 0.1 and "1 with a silent channel" in result.detail
    assert result.items == [{"path": str(dead), "lags_ms": ["silent"]}]
    aligned.unlink()
    unmeasured = check(ModelContext(tones_ws, version, test_folder=tmp_path / "takes", workers=1), "model.alignment")
    assert unmeasured.passed is None and unmeasured.detail.startswith("no lag to measure")
    assert unmeasured.items == result.items

    mono = check(ModelContext(tones_ws, version, workers=1), "model.alignment")
    assert mono.passed is None and "multi-channel" in mono.detail


# -- streaming boundaries ----------------------------------------------------------------------

TRACKS = [
    ([("intro", 4), ("build", 4), ("drop", 8), ("break", 4), ("drop", 4)], 120.0, 0.0),
    ([("intro", 8), ("drop", 8), ("break", 4), ("build", 4), ("drop", 4)], 122.0, 0.05),
    ([("break", 4), ("build", 4), ("drop", 8), ("intro", 4)], 124.0, 0.1),
    ([("intro", 4), ("drop", 4), ("break", 8), ("build", 4), ("drop", 4)], 126.0, 0.15),
]


def add_track(ws: Workspace, folder: Path, number: int, arrangement, bpm: float, offset: float,
              label_shift_beats: int = 0) -> None:
    audio, layout = synthesize_section_track(arrangement, bpm=bpm, sample_rate=RATE, offset_s=offset, seed=number)
    path = folder / f"set{number}" / f"track{number}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, RATE)
    import_folder(ws, folder, workers=1)
    set_grid(ws, path.name, BeatGrid.constant(bpm, offset))
    total = layout[-1]["end_beat"]
    for section in layout:  # a shift moves every inner boundary later, as a careless labeller might
        start = 0 if section["start_beat"] == 0 else min(section["start_beat"] + label_shift_beats, total)
        end = total if section["end_beat"] == total else min(section["end_beat"] + label_shift_beats, total)
        add_label(ws, path.name, section["label"], taxonomy="sections", start_beat=start, end_beat=end)


@pytest.fixture(scope="module")
def sections(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gates_sections")
    ws = Workspace.open(root / "ws")
    for number, track in enumerate(TRACKS):
        add_track(ws, root / "tracks", number, *track)
    train(ws, name="sections", taxonomy="sections", window_s=4.0, features="dsp", feature_params=["region_s=none"],
          min_class_samples=3)
    return root / "ws"


def test_boundary_recall_passes_on_the_labelled_tracks_and_fails_on_labels_planted_four_bars_off(sections, tmp_path):
    ws = Workspace.open(copy_workspace(sections, tmp_path))
    version = resolve(ws, "sections")
    on_test = check(ModelContext(ws, version, workers=1), "model.boundaries")
    assert on_test.passed is True and "1 track(s)" in on_test.detail
    on_all = check(ModelContext(ws, version, workers=1), "model.boundaries", tracks="all")
    assert on_all.passed is True and on_all.value == 1.0 and "4 track(s)" in on_all.detail

    add_track(ws, tmp_path / "new", 7, [("intro", 4), ("drop", 8), ("break", 4), ("drop", 8)], 125.0, 0.0,
              label_shift_beats=16)
    planted = check(ModelContext(ws, version, workers=1), "model.boundaries", tracks="all")
    assert planted.passed is False and planted.value < 0.95
    assert {item["path"].rsplit("/", 1)[-1] for item in planted.items} == {"track7.wav"}
    assert len(planted.items) >= 2 and all(item["tolerance_s"] == pytest.approx(4 * 60 / 125, abs=1e-3)
                                           for item in planted.items)
    widened = check(ModelContext(ws, version, workers=1), "model.boundaries", tracks="all", tolerance_bars=4.5)
    assert widened.passed is True


def test_boundaries_skip_one_shot_models(tones_ws):
    result = check(ModelContext(tones_ws, resolve(tones_ws, "tones"), workers=1), "model.boundaries")
    assert result.passed is None and "one-shot" in result.detail


def test_each_predicted_change_matches_one_boundary_at_most():
    truth, predicted = np.array([10.0, 11.0, 30.0]), np.array([10.5])
    assert matched(truth, predicted, np.full(3, 1.0)).tolist() == [True, False, False]
    assert matched(truth, np.array([10.2, 11.1, 35.0]), np.full(3, 1.0)).tolist() == [True, True, False]
