"""Streaming boundary recall for section models: slide the model along labelled tracks (the same
path `predict` takes) and check that every labelled change of section is found near where it is.

A labelled boundary is the start of a range label whose label differs from the range before it on
the same track. It is found when a predicted section change lies within the tolerance (one bar of
the track's grid, else seconds); each predicted change finds at most one boundary. Recall is
averaged over the labels the boundaries open (macro), so a rare kind of change counts as much as a
common one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.audio.beatgrid import BeatGrid
from engine.concepts import Clip, LabelledSegment
from engine.store.labels import labelled_segments


@dataclass
class LabelledTrack:
    """A clip with its range labels (seconds or beats), by start."""

    clip: Clip
    ranges: list[LabelledSegment]
    grid: BeatGrid | None = None

    @property
    def boundaries(self) -> list[tuple[float, str]]:
        """(time, label it opens) of each change of label between consecutive ranges."""
        return [(after.segment.start_s, after.label) for before, after in zip(self.ranges, self.ranges[1:])
                if after.label != before.label]


def labelled_tracks(workspace, taxonomy: str, clip_ids: set[str] | None = None) -> list[LabelledTrack]:
    """Clips with at least two range labels (seconds or beats) in `taxonomy`, optionally only some clips."""
    from engine.store.clips import clips_by_ids
    from engine.store.grids import grids_by_clip

    with workspace.db.transaction(read_only=True) as con:
        ranges: dict[str, list[LabelledSegment]] = {}
        for item in labelled_segments(con, taxonomy):
            if not item.segment.is_whole and (clip_ids is None or item.clip_id in clip_ids):
                ranges.setdefault(item.clip_id, []).append(item)
        clips = clips_by_ids(con, sorted(ranges))
        grids = grids_by_clip(con)
    return [LabelledTrack(clips[clip_id], items, grids.get(clip_id)) for clip_id, items in ranges.items()
            if len(items) >= 2]


def change_points(sections: list[dict]) -> np.ndarray:
    """Where predicted sections change: the start of every section but the first."""
    return np.array([s["start_s"] for s in sections[1:]], dtype=np.float64)


def matched(truth: np.ndarray, predicted: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """Per true boundary, whether a predicted change lies within its tolerance, each predicted change
    matching at most one boundary. The matching pairs as many boundaries as can be paired (a maximum
    matching, as `mir_eval.util.match_events` finds), and of such matchings the closest in total:
    pairs within tolerance cost their gap, any other pair more than all those gaps together."""
    from scipy.optimize import linear_sum_assignment

    found = np.zeros(len(truth), dtype=bool)
    gaps = np.abs(truth[:, None] - predicted[None, :])
    within = gaps <= tolerance[:, None]
    if not within.any():
        return found
    rows, columns = linear_sum_assignment(np.where(within, gaps, gaps[within].sum() + 1))
    found[rows[within[rows, columns]]] = True
    return found


@dataclass
class BoundaryScore:
    macro_recall: float
    per_label: dict[str, float]
    boundaries: int
    missed: list[dict] = field(default_factory=list)


def score_boundaries(tracks: list[tuple[LabelledTrack, list[dict]]], *, tolerance_bars: float,
                     tolerance_s: float) -> BoundaryScore:
    """Macro recall of the labelled boundaries of each (track, predicted sections) pair."""
    hits: dict[str, list[bool]] = {}
    missed = []
    for track, sections in tracks:
        truth = track.boundaries
        if not truth:
            continue
        times = np.array([t for t, _ in truth])
        if track.grid is not None:  # the length of the bar that starts at each boundary
            grid = track.grid
            bar_s = np.asarray(grid.seconds_at(np.asarray(grid.beat_at(times)) + grid.beats_per_bar)) - times
            tolerance = tolerance_bars * bar_s
        else:
            tolerance = np.full(len(times), tolerance_s)
        predicted = change_points(sections)
        found = matched(times, predicted, tolerance)
        for (time, label), ok, within in zip(truth, found, tolerance):
            hits.setdefault(label, []).append(bool(ok))
            if not ok:
                nearest = float(np.min(np.abs(predicted - time))) if len(predicted) else None
                missed.append({"clip_id": track.clip.clip_id, "path": track.clip.path, "time_s": round(time, 3),
                               "label": label, "nearest_change_s": None if nearest is None else round(nearest, 3),
                               "tolerance_s": round(float(within), 3)})
    per_label = {label: float(np.mean(found)) for label, found in sorted(hits.items())}
    macro = float(np.mean(list(per_label.values()))) if per_label else float("nan")
    return BoundaryScore(macro, per_label, sum(len(v) for v in hits.values()), missed)
