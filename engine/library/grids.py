"""Beat grids of clips: stored per clip, set by hand or detected, and kept consistent with labels.

Changing a clip's grid moves the seconds of its beat-range labels in the same transaction, so a
label "beats 64–128" stays on beats 64–128 of the new grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from engine.audio.beatgrid import BeatGrid
from engine.concepts import Clip, Reason, Rejection
from engine.errors import InputError
from engine.library.clips import all_clips, resolve_clip
from engine.jobs.parallel import parallel_map
from engine.progress import CancelToken, Reporter

MIN_DETECT_SECONDS = 4.0


def grid_from_row(row: Sequence) -> BeatGrid:
    bpm, offset_s, beats_per_bar, beat_times = row
    return BeatGrid(bpm=bpm, offset_s=offset_s, beats_per_bar=beats_per_bar,
                    beat_times=tuple(beat_times) if beat_times else None)


def get_grid(con: duckdb.DuckDBPyConnection, clip_id: str) -> BeatGrid | None:
    row = con.execute(
        "SELECT bpm, offset_s, beats_per_bar, beat_times FROM beat_grids WHERE clip_id = ?", [clip_id]
    ).fetchone()
    return grid_from_row(row) if row else None


def grids_by_clip(con: duckdb.DuckDBPyConnection) -> dict[str, BeatGrid]:
    rows = con.execute("SELECT clip_id, bpm, offset_s, beats_per_bar, beat_times FROM beat_grids").fetchall()
    return {row[0]: grid_from_row(row[1:]) for row in rows}


def store_grid(con: duckdb.DuckDBPyConnection, clip_id: str, grid: BeatGrid, origin: str) -> int:
    """Save a clip's grid and move its beat-range labels onto it; returns how many labels moved."""
    con.execute(
        "INSERT INTO beat_grids (clip_id, bpm, offset_s, beats_per_bar, beat_times, origin) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (clip_id) DO UPDATE SET bpm = excluded.bpm, offset_s = excluded.offset_s, "
        "beats_per_bar = excluded.beats_per_bar, beat_times = excluded.beat_times, origin = excluded.origin, "
        "updated_at = now()",
        [clip_id, grid.bpm, grid.offset_s, grid.beats_per_bar,
         list(grid.beat_times) if grid.beat_times else None, origin],
    )
    rows = con.execute(
        "SELECT label_id, start_beat, end_beat FROM labels WHERE clip_id = ? AND start_beat IS NOT NULL", [clip_id]
    ).fetchall()
    if not rows:
        return 0
    ids = [row[0] for row in rows]
    starts = [float(grid.seconds_at(row[1])) for row in rows]
    ends = [float(grid.seconds_at(row[2])) for row in rows]
    con.execute(
        "UPDATE labels SET start_s = moved.start_s, end_s = moved.end_s, updated_at = now() "
        "FROM (SELECT unnest($ids) AS label_id, unnest($starts) AS start_s, unnest($ends) AS end_s) AS moved "
        "WHERE labels.label_id = moved.label_id",
        {"ids": ids, "starts": starts, "ends": ends},
    )
    return len(ids)


def set_grid(workspace, clip_ref: str, grid: BeatGrid, origin: str = "user") -> tuple[Clip, int]:
    with workspace.db.transaction() as con:
        clip = resolve_clip(con, clip_ref)
        if grid.seconds_at(0) > clip.duration_s:
            raise InputError(f"first beat at {grid.offset_s:g} s is past the end of {clip.path} ({clip.duration_s:.3f} s)")
        moved = store_grid(con, clip.clip_id, grid, origin)
    return clip, moved


def _detect_one(job: tuple[str, int]) -> dict | str:
    path, beats_per_bar = job
    from engine.audio.beatgrid import detect_beat_grid
    from engine.audio.decode import decode

    try:
        samples, rate = decode(path, sample_rate=22050)
        return detect_beat_grid(samples, rate, beats_per_bar).to_dict()
    except InputError as error:
        return str(error)
    except (OSError, RuntimeError) as error:
        return f"cannot read: {error}"


@dataclass
class DetectReport:
    detected: list[tuple[Clip, BeatGrid]] = field(default_factory=list)
    skipped: list[Rejection] = field(default_factory=list)
    cancelled: bool = False


def detect_grids(workspace, clip_refs: Sequence[str] | None = None, *, beats_per_bar: int = 4,
                 overwrite_user: bool = False, workers: int | None = None, reporter: Reporter | None = None,
                 cancel: CancelToken | None = None) -> DetectReport:
    """Detect beat grids with librosa for the given clips (all clips when None).

    Clips shorter than a few seconds (one-shots) are skipped with a reason; a grid set by hand is
    kept unless `overwrite_user`."""
    report = DetectReport()
    with workspace.db.transaction(read_only=True) as con:
        clips = [resolve_clip(con, ref) for ref in clip_refs] if clip_refs else all_clips(con)
        user_grids = {row[0] for row in con.execute("SELECT clip_id FROM beat_grids WHERE origin = 'user'").fetchall()}
    candidates = []
    for clip in clips:
        if clip.duration_s < MIN_DETECT_SECONDS:
            report.skipped.append(Rejection(clip.path, Reason.TOO_SHORT,
                                            f"{clip.duration_s:.2f} s is too short for beat tracking"))
        elif clip.clip_id in user_grids and not overwrite_user:
            report.skipped.append(Rejection(clip.path, Reason.KEPT, "has a hand-set grid (use --overwrite)"))
        else:
            candidates.append(clip)
    if reporter is not None:
        reporter.start("Detecting beats", len(candidates))
    by_path = {clip.path: clip for clip in candidates}
    jobs = [(clip.path, beats_per_bar) for clip in candidates]
    for (path, _), result in parallel_map(_detect_one, jobs, workers=workers, chunk_size=1,
                                          reporter=reporter, cancel=cancel):
        clip = by_path[path]
        if isinstance(result, str):
            report.skipped.append(Rejection(path, Reason.DETECTION_FAILED, result))
            continue
        grid = BeatGrid.from_dict(result)
        with workspace.db.transaction() as con:
            store_grid(con, clip.clip_id, grid, "detected")
        report.detected.append((clip, grid))
    report.cancelled = bool(cancel and cancel.cancelled)
    return report
