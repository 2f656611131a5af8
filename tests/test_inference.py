"""Running model versions: predicting files, storing predictions for the whole library without
touching labels, and labelling the sections of a long track with a section model.

Two module templates: a small drum library with a logreg version, and five synthesised DJ tracks
(each with its beat grid and its sections labelled as beat ranges) with a logreg section model on
4-second windows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import copy_workspace, curated_library, write_hits
from engine.audio.beatgrid import BeatGrid
from engine.audio.synth import DEMO_PACKS, synthesize_section_track
from engine.errors import Cancelled
from engine.inference import SMOOTHING_BARS, _window_starts, infer_library, predict_files, smooth_sections
from engine.jobs.log import JobLog, get_job
from engine.library.editing import add_label
from engine.library.grids import set_grid
from engine.library.importer import import_folder
from engine.progress import CancelToken
from engine.models.registry import activation_history, resolve
from engine.services.activation import run_activation_job
from engine.training.run import TrainRequest, run_training
from engine.workspace import Workspace

CLASSES = ["hihat_closed", "kick", "snare"]
N_CLIPS = 3 * 3 * 4
TRACK_RATE = 22050
WINDOW_S = 4.0
# (arrangement in bars, bpm, offset): five training tracks, each in a folder (source) of its own
TRACKS = [
    ([("intro", 4), ("build", 4), ("drop", 8), ("break", 4), ("drop", 4)], 120.0, 0.0),
    ([("intro", 8), ("drop", 8), ("break", 4), ("build", 4), ("drop", 4)], 122.0, 0.05),
    ([("break", 4), ("build", 4), ("drop", 8), ("intro", 4)], 124.0, 0.1),
    ([("intro", 4), ("drop", 4), ("break", 8), ("build", 4), ("drop", 4)], 126.0, 0.15),
    ([("drop", 8), ("break", 4), ("build", 4), ("intro", 4)], 128.0, 0.2),
]
NEW_TRACK = ([("intro", 4), ("build", 4), ("drop", 8), ("break", 4), ("drop", 4), ("intro", 4)], 125.0, 0.3)


def train(ws: Workspace, **fields) -> None:
    params = TrainRequest(**fields).__dict__
    run_training(ws, JobLog(ws, "train", params, state="pending"), params, CancelToken())


def labels_table(ws: Workspace) -> list[tuple]:
    with ws.db.transaction() as con:
        return con.execute("SELECT * FROM labels ORDER BY label_id").fetchall()


def predictions(ws: Workspace, model_id: int) -> list[tuple]:
    with ws.db.transaction() as con:
        return con.execute("SELECT clip_id, segment_key, label, confidence, probabilities FROM predictions "
                           "WHERE model_id = ? ORDER BY clip_id, segment_key", [model_id]).fetchall()


def write_track(path: Path, arrangement, bpm: float, offset: float, seed: int) -> tuple[list[dict], float]:
    audio, layout = synthesize_section_track(arrangement, bpm=bpm, sample_rate=TRACK_RATE, offset_s=offset, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, TRACK_RATE)
    return layout, len(audio) / TRACK_RATE


def label_at(sections: list[dict], seconds: np.ndarray) -> list[str | None]:
    found = []
    for t in seconds:
        found.append(next((s["label"] for s in sections if s["start_s"] <= t < s["end_s"]), None))
    return found


# -- drum classifier --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def drums_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inference_drums")
    curated_library(root / "curated", classes=tuple(CLASSES), per_pack=4, packs=DEMO_PACKS[:3])
    ws = Workspace.open(root / "ws")
    import_folder(ws, root / "curated", curated=True, workers=1)
    train(ws, name="drums", model="mlp", min_class_samples=2, split_by="clip")
    return ws.root


@pytest.fixture
def drums_ws(drums_template, tmp_path) -> Workspace:
    """A copy for tests that only read the model: the copy's version still points at the template's
    model folder (versions keep absolute artifact paths; see test_registry.py)."""
    return Workspace.open(copy_workspace(drums_template, tmp_path))


def test_predict_files_gives_label_confidence_and_sorted_top_k(drums_ws, tmp_path):
    new_pack = DEMO_PACKS[3]  # a pack the model never heard
    files = {kind: write_hits(tmp_path / "new" / kind, kind, 3, pack=new_pack, seed=11) for kind in CLASSES}
    paths = [p for kind in CLASSES for p in files[kind]]
    version, results, rejections = predict_files(drums_ws, "drums", paths, top=2, workers=1)
    assert version.ref == "drums@1" and rejections == []
    assert [r.path for r in results] == sorted(str(p) for p in paths)
    for result in results:
        assert result.label in CLASSES and result.sections is None
        assert len(result.top) == 2
        confidences = [t["confidence"] for t in result.top]
        assert confidences == sorted(confidences, reverse=True)
        assert 0.0 < sum(confidences) <= 1.0 + 1e-6
        assert (result.label, result.confidence) == (result.top[0]["label"], confidences[0])
        assert len(result.clip_id) == 64  # the file's sha256, as in the library
    truth = {str(p): kind for kind, group in files.items() for p in group}
    correct = sum(result.label == truth[result.path] for result in results)
    assert correct >= 8, f"only {correct}/9 hits of an unseen pack right"

    _, full, _ = predict_files(drums_ws, "drums@1", paths[:1], top=10, workers=1)
    assert len(full[0].top) == 3 and sum(t["confidence"] for t in full[0].top) == pytest.approx(1.0, abs=1e-5)


def test_predict_files_rejects_what_is_not_audio(drums_ws, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    good = write_hits(tmp_path / "hits", "kick", 1)[0]
    _, results, rejections = predict_files(drums_ws, "drums", [junk, good], workers=1)
    assert [r.path for r in results] == [str(good)]
    assert [Path(r.path).name for r in rejections] == ["junk.wav"]


def test_infer_library_stores_one_prediction_per_clip_and_never_touches_labels(drums_ws):
    before = labels_table(drums_ws)
    version, count, rejections = infer_library(drums_ws, "drums", workers=1)
    assert count == N_CLIPS and rejections == []
    stored = predictions(drums_ws, version.model_id)
    assert len(stored) == N_CLIPS and len({row[0] for row in stored}) == N_CLIPS
    for _, segment, label, confidence, probabilities in stored:
        assert segment == "whole" and label in CLASSES and 0.0 < confidence <= 1.0
    assert labels_table(drums_ws) == before

    # Running again replaces the predictions: no duplicates, same values, labels still untouched.
    _, again, _ = infer_library(drums_ws, "drums@1", workers=1)
    assert again == N_CLIPS
    assert [row[:4] for row in predictions(drums_ws, version.model_id)] == [row[:4] for row in stored]
    assert labels_table(drums_ws) == before
    with drums_ws.db.transaction() as con:
        truth = dict(con.execute("SELECT clip_id, label FROM labels WHERE segment_key = 'whole'").fetchall())
    assert np.mean([truth[clip] == label for clip, _, label, _, _ in stored]) >= 0.8


def test_an_activation_job_activates_then_stores_the_librarys_predictions(drums_ws):
    params = {"ref": "drums@1", "reason": "first", "forced": False, "rollback": False}
    job = JobLog(drums_ws, "activate", params, state="pending")
    run_activation_job(drums_ws, job, params, CancelToken())
    record = get_job(drums_ws, job.job_id)
    assert record.state == "completed"
    assert record.result == {"active": "drums@1", "previous_version": None, "predictions": N_CLIPS, "rejected": 0}
    assert resolve(drums_ws, "drums").is_active
    assert len(predictions(drums_ws, resolve(drums_ws, "drums@1").model_id)) == N_CLIPS
    assert [(e["version"], e["reason"]) for e in activation_history(drums_ws, "drums")] == [(1, "first")]


def test_an_activation_job_cancelled_before_it_starts_changes_nothing(drums_ws):
    params = {"ref": "drums@1", "reason": None, "forced": False, "rollback": False}
    job = JobLog(drums_ws, "activate", params, state="pending")
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled, match="nothing changed"):
        run_activation_job(drums_ws, job, params, cancel)
    assert not resolve(drums_ws, "drums@1").is_active and activation_history(drums_ws, "drums") == []
    assert predictions(drums_ws, resolve(drums_ws, "drums@1").model_id) == []


# -- section model ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sections_ws(tmp_path_factory) -> tuple[Workspace, Path]:
    root = tmp_path_factory.mktemp("inference_sections")
    ws = Workspace.open(root / "ws")
    layouts = {}
    for number, (arrangement, bpm, offset) in enumerate(TRACKS):
        path = root / "tracks" / f"set{number}" / f"track{number}.wav"
        layouts[path.name] = (write_track(path, arrangement, bpm, offset, seed=number)[0], bpm, offset)
    import_folder(ws, root / "tracks", workers=1)
    for name, (layout, bpm, offset) in layouts.items():
        set_grid(ws, name, BeatGrid.constant(bpm, offset))
        for section in layout:
            add_label(ws, name, section["label"], taxonomy="sections", start_beat=section["start_beat"],
                      end_beat=section["end_beat"])
    # no window or region given: the sections taxonomy's window_s (4 s) and whole-window dsp are the defaults
    train(ws, name="sections", model="mlp", taxonomy="sections", features="dsp", min_class_samples=3)
    return ws, root


def test_a_section_model_labels_the_sections_of_a_new_track(sections_ws):
    ws, root = sections_ws
    version = resolve(ws, "sections")
    assert version.label_set == ["break", "build", "drop", "intro"]
    assert version.meta["window_s"] == WINDOW_S and version.spec.params == {"region_s": None}

    arrangement, bpm, offset = NEW_TRACK
    path = root / "new" / "unseen.wav"
    layout, duration = write_track(path, arrangement, bpm, offset, seed=42)
    import_folder(ws, path, workers=1)
    set_grid(ws, "unseen.wav", BeatGrid.constant(bpm, offset))

    _, (result,), rejections = predict_files(ws, "sections", [path], workers=1)
    assert rejections == []
    sections = result.sections
    assert result.grid == {"bpm": bpm, "offset_s": offset, "beats_per_bar": 4, "beat_times": None}
    assert len(sections) >= 2 and result.label in version.label_set

    starts = [s["start_s"] for s in sections]
    assert starts == sorted(set(starts))
    for before, after in zip(sections, sections[1:]):
        assert before["end_s"] == after["start_s"]  # contiguous
        assert before["label"] != after["label"]  # equal neighbours were merged
    assert sections[0]["start_s"] == 0.0  # from the start of the track ...
    assert sections[-1]["end_s"] == pytest.approx(duration, abs=1e-3)  # ... to its end
    bar_s = 4 * 60.0 / bpm
    for section in sections:
        assert section["end_s"] > section["start_s"] and 0.0 < section["confidence"] <= 1.0
        assert section["start_beat"] == pytest.approx((section["start_s"] - offset) * bpm / 60.0, abs=2e-3)
        assert section["end_beat"] == pytest.approx((section["end_s"] - offset) * bpm / 60.0, abs=2e-3)
    for section in sections[1:]:  # inner boundaries fall on bar lines
        assert (section["start_s"] - offset) / bar_s == pytest.approx(round((section["start_s"] - offset) / bar_s),
                                                                      abs=1e-3)

    times = np.arange(offset, duration, 0.05)  # the labelled part: beat 0 to the end
    agreement = np.mean([p == t for p, t in zip(label_at(sections, times), label_at(layout, times))])
    assert agreement >= 0.75, f"only {agreement:.0%} of the track labelled with its true section: {sections}"


def test_track_windows_from_one_stft_match_the_windows_decoded_alone(sections_ws, tmp_path):
    """The section path's window features (chunks of the track, one STFT each) against each window
    decoded and extracted alone (the path training takes): close vectors and the same sections."""
    from engine.features.extract import Target, extract_features, load_features
    from engine.concepts import Segment
    from engine.features.track import track_window_features
    from engine.inference import load
    from engine.store.clips import clip_seen_at

    ws, _ = sections_ws
    model = load(ws, "sections")
    arrangement, bpm, offset = NEW_TRACK
    path = tmp_path / "again.wav"
    write_track(path, arrangement, bpm, offset, seed=7)
    import_folder(ws, path, workers=1)
    with ws.db.transaction(read_only=True) as con:
        clip = clip_seen_at(con, str(path.resolve()))
    grid = BeatGrid.constant(bpm, offset)
    starts, beats = _window_starts(clip.duration_s, WINDOW_S, grid)
    sliced, kept, rejections = track_window_features(ws.cache, clip.clip_id, str(path), clip.size_bytes, starts,
                                                     WINDOW_S, model.extractors, workers=2)
    assert rejections == [] and kept == list(range(len(starts)))
    targets = [Target(clip.clip_id, str(path), clip.size_bytes, Segment.window(s, WINDOW_S)) for s in starts]
    extract_features(ws.cache, targets, model.version.spec, model.extractors, workers=1)
    alone, _ = load_features(ws.cache, targets, model.extractors)
    scale = alone.std(axis=0) + 1e-6  # each feature against its spread over the track's windows
    assert np.median(np.abs(sliced - alone) / scale) < 0.05
    assert np.percentile(np.abs(sliced - alone) / scale, 99) < 1.0
    classes = model.version.label_set
    sections = [smooth_sections(starts, WINDOW_S, model.classifier.predict_proba(x), classes, clip.duration_s, grid,
                                beats) for x in (sliced, alone)]
    assert [(s["label"], s["start_s"]) for s in sections[0]] == [(s["label"], s["start_s"]) for s in sections[1]]


def test_infer_library_labels_the_windows_of_long_tracks_through_the_track_path(sections_ws):
    """Activation's inference (the TUI's) takes a section model's windows from the same track path
    as `predict`: each stored window prediction is the model on `track_window_features`."""
    from engine.concepts import Segment
    from engine.features.track import track_window_features
    from engine.inference import load
    from engine.store.clips import all_clips

    ws, _ = sections_ws
    version, count, rejections = infer_library(ws, "sections", workers=2)
    model = load(ws, "sections")
    with ws.db.transaction(read_only=True) as con:
        clips = all_clips(con)
    expected = []
    for clip in clips:
        starts = np.arange(0.0, clip.duration_s - WINDOW_S + 1e-9, WINDOW_S)
        features, kept, _ = track_window_features(ws.cache, clip.clip_id, clip.path, clip.size_bytes, starts,
                                                  WINDOW_S, model.extractors, workers=1)
        for k, row in zip(kept, model.classifier.predict_proba(features)):
            expected.append((clip.clip_id, Segment.window(starts[k], WINDOW_S).region_key,
                             version.label_set[int(np.argmax(row))], pytest.approx(float(row.max()), abs=1e-6)))
    stored = [row[:4] for row in predictions(ws, version.model_id)]
    assert rejections == [] and count == len(stored) == len(expected) > 5 * len(clips)
    assert sorted(stored) == sorted(expected, key=lambda row: row[:3])


def test_smoothing_removes_a_one_window_blip():
    starts = np.arange(12) * 2.0  # a window per 2-second bar
    probabilities = np.tile([0.9, 0.1], (12, 1))
    probabilities[5] = [0.05, 0.95]
    sections = smooth_sections(starts, 2.0, probabilities, ["drop", "break"], 24.0, None, None)
    assert [(s["label"], s["start_s"], s["end_s"]) for s in sections] == [("drop", 0.0, 24.0)]
    assert "start_beat" not in sections[0]


def test_smoothing_keeps_two_clear_halves_as_two_sections_on_the_grid():
    grid = BeatGrid.constant(120.0, 0.0)  # a bar every 2 s
    starts = np.arange(16) * 2.0
    probabilities = np.vstack([np.tile([0.8, 0.1, 0.1], (8, 1)), np.tile([0.1, 0.1, 0.8], (8, 1))])
    sections = smooth_sections(starts, 2.0, probabilities, ["intro", "build", "drop"], 32.5, grid, starts * 2)
    assert [(s["label"], s["start_s"], s["end_s"]) for s in sections] == [("intro", 0.0, 16.0), ("drop", 16.0, 32.5)]
    assert [(s["start_beat"], s["end_beat"]) for s in sections] == [(0.0, 32.0), (32.0, 65.0)]
    assert all(s["confidence"] > 0.6 for s in sections)
    assert SMOOTHING_BARS >= 1  # what makes the blip above go away


def test_smoothing_of_nothing_is_nothing():
    assert smooth_sections(np.zeros(0), 4.0, np.zeros((0, 2)), ["a", "b"], 10.0, None, None) == []


@pytest.mark.parametrize("offset", [0.5, 4.5])
def test_sections_of_a_track_with_a_pickup_cover_it_from_zero(offset):
    """A first beat after 0 s: windows start at the first bar line inside the track (extrapolated
    back from the grid's first beat) and the first section runs from 0 s."""
    grid = BeatGrid.constant(120.0, offset)  # a bar every 2 s
    duration = 20.5
    starts, beats = _window_starts(duration, 4.0, grid)
    assert 0.0 <= starts[0] < 2.0 and beats[0] <= 0
    np.testing.assert_allclose(np.diff(starts), 2.0)
    assert starts[-1] + 4.0 <= duration + 1e-6
    probabilities = np.tile([0.6, 0.4], (len(starts), 1))
    probabilities[len(starts) // 2:] = [0.4, 0.6]
    sections = smooth_sections(starts, 4.0, probabilities, ["intro", "drop"], duration, grid, beats)
    assert [s["label"] for s in sections] == ["intro", "drop"]
    assert sections[0]["start_s"] == 0.0 and sections[0]["start_beat"] == -offset * 2
    assert sections[0]["end_s"] == sections[1]["start_s"] and sections[-1]["end_s"] == duration
