"""The clips repository: clips (known by the hash of their bytes), the files they were seen at, and
retired clips: a clip whose file was edited in place leaves `clips` for `retired_clips`, so nothing
counts, lists, trains on or gates it, while its labels stay in the history."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from engine.concepts import Clip

CLIP_COLUMNS = ("clip_id", "path", "source", "format", "duration_s", "sample_rate", "channels", "frames",
                "size_bytes", "peak", "rms_db", "clipped_fraction")
_SELECT_CLIPS = f"SELECT {', '.join(CLIP_COLUMNS)} FROM clips"


@dataclass(frozen=True)
class ClipFile:
    """A path where a clip's bytes were found, with the size and mtime they had (to skip re-hashing)."""

    path: str
    clip_id: str
    size_bytes: int
    mtime_ns: int


def _clip(row: Sequence) -> Clip:
    return Clip(*row)


def get_clip(con: duckdb.DuckDBPyConnection, clip_id: str) -> Clip | None:
    row = con.execute(f"{_SELECT_CLIPS} WHERE clip_id = ?", [clip_id]).fetchone()
    return _clip(row) if row else None


def clips_by_ids(con: duckdb.DuckDBPyConnection, clip_ids: Sequence[str]) -> dict[str, Clip]:
    if not clip_ids:
        return {}
    rows = con.execute(f"{_SELECT_CLIPS} WHERE clip_id IN (SELECT unnest($ids))", {"ids": list(clip_ids)}).fetchall()
    return {row[0]: _clip(row) for row in rows}


def all_clips(con: duckdb.DuckDBPyConnection) -> list[Clip]:
    """Every clip, by path."""
    return [_clip(row) for row in con.execute(f"{_SELECT_CLIPS} ORDER BY path").fetchall()]


def clip_ids_by_path(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every clip id, in the order of the clips' paths."""
    return [row[0] for row in con.execute("SELECT clip_id FROM clips ORDER BY path").fetchall()]


def clips_with_id_prefix(con: duckdb.DuckDBPyConnection, prefix: str, limit: int) -> list[Clip]:
    rows = con.execute(f"{_SELECT_CLIPS} WHERE starts_with(clip_id, ?) LIMIT ?", [prefix, limit]).fetchall()
    return [_clip(row) for row in rows]


def clip_seen_at(con: duckdb.DuckDBPyConnection, path: str) -> Clip | None:
    """The clip whose bytes were found at `path` (its current path or an earlier one)."""
    columns = ", ".join(f"c.{name}" for name in CLIP_COLUMNS)
    row = con.execute(
        f"SELECT {columns} FROM clip_files f JOIN clips c USING (clip_id) WHERE f.path = ? LIMIT 1", [path]
    ).fetchone()
    return _clip(row) if row else None


def clips_at_path_or_name(con: duckdb.DuckDBPyConnection, ref: str, limit: int) -> list[Clip]:
    """Clips whose path is `ref` or ends with the file name (or path tail) `ref`."""
    rows = con.execute(f"{_SELECT_CLIPS} WHERE path = ? OR ends_with(path, ?) LIMIT ?",
                       [ref, os.sep + ref, limit]).fetchall()
    return [_clip(row) for row in rows]


def insert_clips(con: duckdb.DuckDBPyConnection, clips: Sequence[Clip]) -> None:
    """Add clips; a clip the workspace already has is left as it is, and a retired one whose bytes
    are found again is back in the library."""
    if not clips:
        return
    columns = {name: [getattr(clip, name) for clip in clips] for name in CLIP_COLUMNS}
    selects = ", ".join(f"unnest(${name})" for name in CLIP_COLUMNS)
    con.execute(f"INSERT INTO clips ({', '.join(CLIP_COLUMNS)}) SELECT {selects} ON CONFLICT DO NOTHING", columns)
    con.execute("DELETE FROM retired_clips WHERE clip_id IN (SELECT unnest($ids))", {"ids": columns["clip_id"]})


def retire_clip(con: duckdb.DuckDBPyConnection, clip_id: str, *, replaced_by: str) -> None:
    """Take a clip out of the library because other bytes (clip `replaced_by`) took its place at its
    path: it is kept in `retired_clips`, its labels stay, and the paths recorded for it are forgotten."""
    columns = ", ".join(CLIP_COLUMNS)
    con.execute(f"INSERT INTO retired_clips ({columns}, replaced_by) SELECT {columns}, ? FROM clips WHERE clip_id = ? "
                "ON CONFLICT (clip_id) DO UPDATE SET path = excluded.path, replaced_by = excluded.replaced_by, "
                "retired_at = now()", [replaced_by, clip_id])
    con.execute("DELETE FROM clips WHERE clip_id = ?", [clip_id])
    con.execute("DELETE FROM clip_files WHERE clip_id = ?", [clip_id])


def move_clip(con: duckdb.DuckDBPyConnection, clip_id: str, path: str, *, old_path: str,
              source: str | None = None) -> None:
    """A clip found at `path` after its file left `old_path`; a new `source` too when given."""
    con.execute("UPDATE clips SET path = ? WHERE clip_id = ?", [path, clip_id])
    if source is not None:
        con.execute("UPDATE clips SET source = ? WHERE clip_id = ?", [source, clip_id])
    con.execute("DELETE FROM clip_files WHERE path = ?", [old_path])


def record_files(con: duckdb.DuckDBPyConnection, files: Sequence[ClipFile]) -> None:
    """Remember every path where a clip's bytes were seen (and its size and mtime, to skip re-hashing)."""
    if not files:
        return
    con.execute(
        "INSERT INTO clip_files (path, clip_id, size_bytes, mtime_ns) "
        "SELECT unnest($path), unnest($clip_id), unnest($size), unnest($mtime) "
        "ON CONFLICT (path) DO UPDATE SET clip_id = excluded.clip_id, size_bytes = excluded.size_bytes, "
        "mtime_ns = excluded.mtime_ns, seen_at = now()",
        {"path": [f.path for f in files], "clip_id": [f.clip_id for f in files],
         "size": [f.size_bytes for f in files], "mtime": [f.mtime_ns for f in files]},
    )


def files_of_clip(con: duckdb.DuckDBPyConnection, clip_id: str) -> list[ClipFile]:
    """Every path where a clip's bytes were seen, by path."""
    rows = con.execute("SELECT path, clip_id, size_bytes, mtime_ns FROM clip_files WHERE clip_id = ? ORDER BY path",
                       [clip_id]).fetchall()
    return [ClipFile(*row) for row in rows]


def known_files(con: duckdb.DuckDBPyConnection, paths: Sequence[str]) -> dict[str, ClipFile]:
    """path → what the workspace recorded of it, for the paths it has seen before."""
    if not paths:
        return {}
    rows = con.execute(
        "SELECT path, clip_id, size_bytes, mtime_ns FROM clip_files WHERE path IN (SELECT unnest($paths))",
        {"paths": list(paths)},
    ).fetchall()
    return {row[0]: ClipFile(*row) for row in rows}
