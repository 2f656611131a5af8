"""Running a model version: on files, over the whole library, and along a long track.

Features go through the same cache as training, so predicting on clips that were featurised
before decodes nothing. A section model (trained on windows of `window_s` seconds) is slid along
a track bar by bar on its beat grid; window probabilities are spread over the bars they cover,
smoothed across time, and consecutive bars with the same label become one section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.audio.beatgrid import BeatGrid
from engine.concepts import Rejection, Segment
from engine.errors import InputError
from engine.features.extract import Target, extract_features, load_features
from engine.features.track import track_window_features
from engine.evaluation.openset import UNKNOWN_LABEL
from engine.progress import CancelToken, Reporter
from engine.models.registry import ModelVersion, load_classifier, resolve
from engine.store.clips import all_clips
from engine.store.predictions import Prediction, replace_predictions

SMOOTHING_BARS = 2  # each bar's probabilities are averaged with this many bars either side


@dataclass
class LoadedModel:
    version: ModelVersion
    classifier: object
    extractors: list

    @property
    def window_s(self) -> float | None:
        return self.version.meta.get("window_s")

    def features(self, workspace, targets: list[Target], *, workers=None, reporter=None, cancel=None):
        """Features (through the cache) of the targets that could be featurised, their indices, rejections."""
        report = extract_features(workspace.cache, targets, self.version.spec, self.extractors, workers=workers,
                                  reporter=reporter, cancel=cancel)
        features, kept = load_features(workspace.cache, targets, self.extractors)
        return features, kept, report.rejections

    def probabilities(self, workspace, targets: list[Target], *, workers=None, reporter=None, cancel=None):
        """Probabilities for the targets whose features could be made, and those targets' indices."""
        features, kept, rejections = self.features(workspace, targets, workers=workers, reporter=reporter,
                                                   cancel=cancel)
        if not kept:
            return np.zeros((0, len(self.version.label_set))), [], rejections
        return self.classifier.predict_proba(features), kept, rejections

    def unknown(self, workspace, target: Target, probabilities: np.ndarray) -> bool:
        """Whether the version's stored open-set reject threshold calls this one-shot "unknown"."""
        from engine.evaluation.openset import is_unknown

        open_set = self.version.meta.get("open_set")
        if self.version.reject_threshold is None or not open_set:
            return False
        features = None if open_set["method"] == "max_softmax" else load_features(workspace.cache, [target], self.extractors)[0]
        return bool(is_unknown(open_set, self.version.reject_threshold, self.classifier, features, probabilities[None])[0])


def load(workspace, ref: str) -> LoadedModel:
    return loaded(workspace, resolve(workspace, ref))


def loaded(workspace, version: ModelVersion) -> LoadedModel:
    """A resolved version with its model read (and its files checked) and its extractors."""
    return LoadedModel(version, load_classifier(version), version.spec.extractors(workspace.embeddings_dir))


def top_k(probabilities: np.ndarray, classes: list[str], k: int) -> list[dict]:
    order = np.argsort(-probabilities)[:k]
    return [{"label": classes[i], "confidence": round(float(probabilities[i]), 6)} for i in order]


def _window_starts(duration_s: float, window_s: float, grid: BeatGrid | None,
                   hop_bars: float = 1.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Window start times: every `hop_bars` bar lines of the grid from the start of the track (bars
    before the grid's first beat are extrapolated), else every half window; with the beats they start on."""
    if grid is not None:
        per_bar = grid.beats_per_bar
        first_bar = int(np.ceil(float(grid.beat_at(0.0)) / per_bar - 1e-9))
        last_bar = int(np.floor(float(grid.beat_at(max(duration_s - window_s, 0.0))) / per_bar + 1e-9))
        bar_beats = np.arange(first_bar, last_bar + 1e-9, hop_bars) * per_bar
        if len(bar_beats):
            return np.asarray(grid.seconds_at(bar_beats), dtype=float), bar_beats
    hop = window_s / 2
    return np.arange(0.0, max(duration_s - window_s, 0.0) + 1e-9, hop), None


def smooth_sections(starts: np.ndarray, window_s: float, probabilities: np.ndarray, classes: list[str],
                    duration_s: float, grid: BeatGrid | None, beats: np.ndarray | None) -> list[dict]:
    """Sections from window probabilities: each step (bar) takes the mean of the windows covering it,
    smoothed over ±SMOOTHING_BARS steps; equal neighbours merge."""
    if len(starts) == 0:
        return []
    hop = (starts[1] - starts[0]) if len(starts) > 1 else window_s
    steps = len(starts)
    covering = np.zeros((steps, probabilities.shape[1]))
    counts = np.zeros(steps)
    span = max(int(round(window_s / hop)), 1)
    for index in range(steps):
        covering[index: index + span] += probabilities[index]
        counts[index: index + span] += 1
    covering /= counts[:, None]
    kernel = np.ones(2 * SMOOTHING_BARS + 1)
    padded = np.pad(covering, ((SMOOTHING_BARS, SMOOTHING_BARS), (0, 0)), mode="edge")
    smoothed = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(covering.shape[1])], axis=1)
    smoothed /= smoothed.sum(axis=1, keepdims=True)
    labels = smoothed.argmax(axis=1)
    sections = []
    first = 0
    for index in range(1, steps + 1):
        if index == steps or labels[index] != labels[first]:
            start_s = float(starts[first]) if first else 0.0  # the first section runs from the start
            end_s = float(starts[index]) if index < steps else duration_s
            section = {"label": classes[labels[first]], "confidence": round(float(smoothed[first:index, labels[first]].mean()), 6),
                       "start_s": round(start_s, 4), "end_s": round(end_s, 4)}
            if grid is not None and beats is not None:
                section["start_beat"] = round(float(grid.beat_at(start_s)), 3)
                section["end_beat"] = round(float(grid.beat_at(end_s)), 3)
            sections.append(section)
            first = index
    return sections


@dataclass
class FilePrediction:
    path: str
    clip_id: str
    label: str | None = None
    confidence: float | None = None
    top: list[dict] = field(default_factory=list)
    sections: list[dict] | None = None
    grid: dict | None = None

    def to_dict(self) -> dict:
        result = {"path": self.path, "clip_id": self.clip_id, "label": self.label, "confidence": self.confidence,
                  "top": self.top}
        if self.sections is not None:
            result.update({"sections": self.sections, "grid": self.grid})
        return result


def _grid_for(workspace, clip_id: str, path: str, duration_s: float,
              stored: dict[str, BeatGrid | None] | None = None) -> BeatGrid | None:
    """The clip's stored grid (from `stored`, the grids the caller has read, else read now), else one
    detected now (long clips only), else none."""
    from engine.library.grids import MIN_DETECT_SECONDS
    from engine.store.grids import get_grid

    if stored is not None and clip_id in stored:
        grid = stored[clip_id]
    else:
        with workspace.db.transaction() as con:
            grid = get_grid(con, clip_id)
    if grid is not None or duration_s < MIN_DETECT_SECONDS:
        return grid
    from engine.audio.beatgrid import detect_file_grid

    try:
        return detect_file_grid(path)
    except InputError:
        return None


@dataclass
class TrackSections:
    sections: list[dict]
    grid: BeatGrid | None
    probabilities: np.ndarray  # of the windows whose features could be made
    rejections: list[Rejection]


def track_sections(workspace, model: LoadedModel, clip_id: str, path: str, size_bytes: int, duration_s: float, *,
                   window_s: float | None = None, hop_bars: float = 1.0, workers: int | None = None,
                   cancel: CancelToken | None = None, grids: dict[str, BeatGrid | None] | None = None) -> TrackSections:
    """A section model slid along a long track (windows of `window_s`, default the model's own, every
    `hop_bars` bars of its grid), smoothed into timed sections. The windows' features come from the
    track decoded in chunks (`features.track`), not from each window decoded alone. `grids`: the
    stored grids the caller has read already, by clip id."""
    window = window_s or model.window_s
    grid = _grid_for(workspace, clip_id, path, duration_s, grids)
    starts, beats = _window_starts(duration_s, window, grid, hop_bars)
    features, kept, failed = track_window_features(workspace.cache, clip_id, path, size_bytes, starts, window,
                                                   model.extractors, workers=workers, cancel=cancel)
    probabilities = model.classifier.predict_proba(features) if kept else np.zeros((0, len(model.version.label_set)))
    sections = smooth_sections(starts[kept], window, probabilities, model.version.label_set, duration_s, grid, beats)
    return TrackSections(sections, grid, probabilities, failed)


def predict_files(workspace, ref: str, paths: list[Path], *, top: int = 3, workers: int | None = None,
                  reporter: Reporter | None = None, cancel: CancelToken | None = None
                  ) -> tuple[ModelVersion, list[FilePrediction], list[Rejection]]:
    """Label, confidence and top-k for each file, in the order given (each file once); timed sections
    for a section model on long files."""
    from engine.library.clips import identify_files, known_unchanged
    from engine.store.grids import get_grid

    given = {path: n for n, path in enumerate(dict.fromkeys(str(Path(p).expanduser().resolve()) for p in paths))}
    with workspace.db.transaction() as con:  # one connection for all the workspace knows
        version = resolve(workspace, ref, con=con)
        known = known_unchanged(con, list(given))
        window = version.meta.get("window_s")
        grids = {file.clip_id: get_grid(con, file.clip_id) for file in known.values()
                 if window and file.duration_s >= 1.5 * window}
    model = loaded(workspace, version)
    classes = model.version.label_set
    probed, rejections = identify_files(workspace, list(given), workers=workers, reporter=reporter, cancel=cancel,
                                        known=known)
    results = []
    for path, info in sorted(probed.items(), key=lambda item: given[item[0]]):
        prediction = FilePrediction(path, info.clip_id)
        window = model.window_s
        if window and info.duration_s >= 1.5 * window:
            timeline = track_sections(workspace, model, info.clip_id, path, info.size_bytes, info.duration_s,
                                      workers=workers, cancel=cancel, grids=grids)
            rejections += timeline.rejections
            prediction.sections = timeline.sections
            prediction.grid = timeline.grid.to_dict() if timeline.grid else None
            overall = timeline.probabilities.mean(axis=0) if len(timeline.probabilities) else None
        else:
            target = Target(info.clip_id, path, info.size_bytes)
            probabilities, kept, failed = model.probabilities(workspace, [target], workers=workers, cancel=cancel)
            rejections += failed
            overall = probabilities[0] if kept else None
        if overall is not None:
            prediction.top = top_k(overall, classes, top)
            prediction.label, prediction.confidence = prediction.top[0]["label"], prediction.top[0]["confidence"]
            if prediction.sections is None and model.unknown(workspace, target, overall):
                prediction.label = UNKNOWN_LABEL
        results.append(prediction)
    return model.version, results, rejections


def infer_library(workspace, ref: str, *, workers: int | None = None, reporter: Reporter | None = None,
                  cancel: CancelToken | None = None) -> tuple[ModelVersion, int, list[Rejection]]:
    """Store the version's prediction for every clip (whole clips; for a section model, the windows
    of long clips, every `window_s` from the start, their features from the track path as `predict`'s)
    in the predictions table. Labels are never touched."""
    model = load(workspace, ref)
    window = model.window_s
    with workspace.db.transaction() as con:
        clips = all_clips(con)
    is_track = [bool(window) and clip.duration_s >= 1.5 * window for clip in clips]
    tracks = [clip for clip, long in zip(clips, is_track) if long]
    targets = [Target(clip.clip_id, clip.path, clip.size_bytes) for clip, long in zip(clips, is_track) if not long]
    probabilities, kept, rejections = model.probabilities(workspace, targets, workers=workers, reporter=reporter,
                                                          cancel=cancel)
    chosen = [(targets[k].clip_id, targets[k].segment) for k in kept]
    if tracks and reporter is not None:
        reporter.start("Windows of long clips", len(tracks))
    for clip in tracks:
        if cancel is not None and cancel.cancelled:
            break
        starts = np.arange(0.0, clip.duration_s - window + 1e-9, window)
        features, found, failed = track_window_features(workspace.cache, clip.clip_id, clip.path, clip.size_bytes,
                                                        starts, window, model.extractors, workers=workers,
                                                        cancel=cancel)
        rejections += failed
        if found:
            probabilities = np.concatenate([probabilities, model.classifier.predict_proba(features)])
            chosen += [(clip.clip_id, Segment.window(starts[k], window)) for k in found]
        if reporter is not None:
            reporter.advance()
    classes = model.version.label_set
    best = probabilities.argmax(axis=1) if len(chosen) else np.zeros(0, dtype=int)
    stored = [Prediction(model.version.model_id, clip_id, segment, classes[i], float(probabilities[n, i]),
                         dict(zip(classes, np.round(probabilities[n], 6).tolist())))
              for n, ((clip_id, segment), i) in enumerate(zip(chosen, best))]
    with workspace.db.transaction() as con:
        replace_predictions(con, model.version.model_id, stored)
    return model.version, len(chosen), rejections
