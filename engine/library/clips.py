"""Reading and writing clips, and finding a clip from what a person types."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from engine.concepts import Clip
from engine.errors import InputError, NotFound
from engine.library.scan import ProbedFile

CLIP_COLUMNS = ("clip_id, path, source, format, duration_s, sample_rate, channels, frames, size_bytes, "
                "peak, rms_db, clipped_fraction")


def clip_from_row(row: Sequence) -> Clip:
    return Clip(*row)


def get_clip(con: duckdb.DuckDBPyConnection, clip_id: str) -> Clip | None:
    row = con.execute(f"SELECT {CLIP_COLUMNS} FROM clips WHERE clip_id = ?", [clip_id]).fetchone()
    return clip_from_row(row) if row else None


def clips_by_ids(con: duckdb.DuckDBPyConnection, clip_ids: Sequence[str]) -> dict[str, Clip]:
    if not clip_ids:
        return {}
    rows = con.execute(
        f"SELECT {CLIP_COLUMNS} FROM clips WHERE clip_id IN (SELECT unnest($ids))", {"ids": list(clip_ids)}
    ).fetchall()
    return {row[0]: clip_from_row(row) for row in rows}


def all_clips(con: duckdb.DuckDBPyConnection) -> list[Clip]:
    return [clip_from_row(row) for row in con.execute(f"SELECT {CLIP_COLUMNS} FROM clips ORDER BY path").fetchall()]


def resolve_clip(con: duckdb.DuckDBPyConnection, ref: str) -> Clip:
    """A clip from its id, an id prefix (at least 4 characters), a file path or a unique file name."""
    ref = ref.strip()
    if not ref:
        raise InputError("no clip given")
    lowered = ref.lower()
    if len(lowered) >= 4 and all(c in "0123456789abcdef" for c in lowered):
        rows = con.execute(
            f"SELECT {CLIP_COLUMNS} FROM clips WHERE starts_with(clip_id, ?) LIMIT 2", [lowered]
        ).fetchall()
        if len(rows) == 1:
            return clip_from_row(rows[0])
        if len(rows) > 1:
            raise InputError(f"clip id prefix {ref!r} matches more than one clip; give more characters")
    absolute = os.path.abspath(os.path.expanduser(ref))
    row = con.execute(
        f"SELECT {', '.join('c.' + c.strip() for c in CLIP_COLUMNS.split(','))} FROM clip_files f "
        "JOIN clips c USING (clip_id) WHERE f.path = ? LIMIT 1",
        [absolute],
    ).fetchone()
    if row:
        return clip_from_row(row)
    rows = con.execute(
        f"SELECT {CLIP_COLUMNS} FROM clips WHERE path = ? OR ends_with(path, ?) LIMIT 3", [ref, os.sep + ref]
    ).fetchall()
    if len(rows) == 1:
        return clip_from_row(rows[0])
    if len(rows) > 1:
        raise InputError(f"{ref!r} matches several clips; give the clip id or the full path")
    raise NotFound(f"no clip matches {ref!r} (give a clip id, an id prefix, a path or a file name)")


def insert_clips(con: duckdb.DuckDBPyConnection, files: Sequence[ProbedFile], sources: Sequence[str]) -> None:
    if not files:
        return
    columns = {
        "clip_id": [f.clip_id for f in files], "path": [f.path for f in files], "source": list(sources),
        "format": [f.format for f in files], "duration_s": [f.duration_s for f in files],
        "sample_rate": [f.sample_rate for f in files], "channels": [f.channels for f in files],
        "frames": [f.frames for f in files], "size_bytes": [f.size_bytes for f in files],
        "peak": [f.peak for f in files], "rms_db": [f.rms_db for f in files],
        "clipped_fraction": [f.clipped_fraction for f in files],
    }
    names = ", ".join(columns)
    selects = ", ".join(f"unnest(${name})" for name in columns)
    con.execute(f"INSERT INTO clips ({names}) SELECT {selects} ON CONFLICT DO NOTHING", columns)


def record_files(con: duckdb.DuckDBPyConnection, files: Sequence[ProbedFile]) -> None:
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


def is_unchanged(path: str, known: tuple[str, int, int] | None) -> bool:
    """Whether a file seen before (clip id, size, mtime) still has the same size and mtime."""
    if known is None:
        return False
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return stat.st_size == known[1] and stat.st_mtime_ns == known[2]


@dataclass(frozen=True)
class KnownFile:
    """A file the workspace has hashed before and that has not changed since."""

    path: str
    clip_id: str
    size_bytes: int
    duration_s: float


def identify_files(workspace, paths: Sequence[str], *, workers: int | None = None, reporter=None,
                   cancel=None) -> tuple[dict[str, KnownFile | ProbedFile], list]:
    """Clip identity of files: unchanged files the workspace knows are not read again; the rest are
    probed (hashed and decoded). Returns path → file for the good ones, and the rejections."""
    from engine.library.scan import probe_files

    with workspace.db.transaction(read_only=True) as con:
        known = known_files(con, list(paths))
        unchanged = {path: known[path] for path in paths if is_unchanged(path, known.get(path))}
        clips = clips_by_ids(con, sorted({clip_id for clip_id, _, _ in unchanged.values()}))
    found: dict[str, KnownFile | ProbedFile] = {
        path: KnownFile(path, clip_id, size, clips[clip_id].duration_s)
        for path, (clip_id, size, _) in unchanged.items() if clip_id in clips}
    probed, rejections = probe_files([p for p in paths if p not in found], workers=workers, reporter=reporter,
                                     cancel=cancel)
    found.update(probed)
    return found, rejections


def known_files(con: duckdb.DuckDBPyConnection, paths: Sequence[str]) -> dict[str, tuple[str, int, int]]:
    """path → (clip_id, size, mtime_ns) for the paths the workspace has seen before."""
    if not paths:
        return {}
    rows = con.execute(
        "SELECT path, clip_id, size_bytes, mtime_ns FROM clip_files WHERE path IN (SELECT unnest($paths))",
        {"paths": list(paths)},
    ).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}
