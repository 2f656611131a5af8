"""The beat grids repository: one grid per clip, with where it came from (detected | user | import).

Saving a clip's grid moves the seconds of its beat-range labels in the same transaction, so a
label "beats 64–128" stays on beats 64–128 of the new grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from engine.audio.beatgrid import BeatGrid


def _grid(row: Sequence) -> BeatGrid:
    bpm, offset_s, beats_per_bar, beat_times = row
    return BeatGrid(bpm=bpm, offset_s=offset_s, beats_per_bar=beats_per_bar,
                    beat_times=tuple(beat_times) if beat_times else None)


def get_grid(con: duckdb.DuckDBPyConnection, clip_id: str) -> BeatGrid | None:
    row = con.execute(
        "SELECT bpm, offset_s, beats_per_bar, beat_times FROM beat_grids WHERE clip_id = ?", [clip_id]
    ).fetchone()
    return _grid(row) if row else None


def grids_by_clip(con: duckdb.DuckDBPyConnection) -> dict[str, BeatGrid]:
    rows = con.execute("SELECT clip_id, bpm, offset_s, beats_per_bar, beat_times FROM beat_grids").fetchall()
    return {row[0]: _grid(row[1:]) for row in rows}


def clip_ids_with_grid_from(con: duckdb.DuckDBPyConnection, origin: str) -> set[str]:
    """The clips whose grid came from `origin` (e.g. 'user': set by hand)."""
    return {row[0] for row in con.execute("SELECT clip_id FROM beat_grids WHERE origin = ?", [origin]).fetchall()}


def save_grid(con: duckdb.DuckDBPyConnection, clip_id: str, grid: BeatGrid, origin: str) -> int:
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
