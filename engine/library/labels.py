"""Checking what a label is put on: a segment inside its clip, and a label name of the taxonomy.

Labels are stored by `engine.store.labels` and edited through `engine.library.editing`.
"""

from __future__ import annotations

from engine.audio.beatgrid import BeatGrid
from engine.concepts import Clip, Segment
from engine.errors import InputError
from engine.taxonomy import Taxonomy

SECONDS_TOLERANCE = 1e-3


def make_segment(clip: Clip, grid: BeatGrid | None, *, start_s: float | None = None, end_s: float | None = None,
                 start_beat: float | None = None, end_beat: float | None = None) -> Segment:
    """A checked segment of `clip`: whole (nothing given), seconds, or beats on the clip's grid.

    Raises InputError with the reason when the range is malformed, lies outside the clip, or
    names beats on a clip without a beat grid."""
    if start_beat is not None or end_beat is not None:
        if start_beat is None or end_beat is None:
            raise InputError("a beat range needs both a start beat and an end beat")
        if grid is None:
            raise InputError(f"{clip.path}: clip has no beat grid; set one with 'beats set' or 'beats detect'")
        grid.check_range(start_beat, end_beat, clip.duration_s)
        return Segment(start_s=float(grid.seconds_at(start_beat)), end_s=float(grid.seconds_at(end_beat)),
                       start_beat=float(start_beat), end_beat=float(end_beat))
    if start_s is None and end_s is None:
        return Segment.whole()
    if start_s is None or end_s is None:
        raise InputError("a time range needs both a start and an end (seconds)")
    if not start_s < end_s:
        raise InputError(f"start ({start_s:g} s) must be before end ({end_s:g} s)")
    if start_s < 0:
        raise InputError(f"start ({start_s:g} s) must not be negative")
    if end_s > clip.duration_s + SECONDS_TOLERANCE:
        raise InputError(f"end ({end_s:g} s) is past the end of the clip ({clip.duration_s:.3f} s)")
    return Segment.seconds(start_s, min(end_s, clip.duration_s))


def resolve_label_name(taxonomy: Taxonomy, raw: str) -> str:
    name = taxonomy.resolve(raw)
    if name is None:
        raise InputError(
            f"label {raw!r} is not in taxonomy {taxonomy.name} (labels: {', '.join(taxonomy.names)}; "
            "aliases are accepted too)"
        )
    return name
