"""Finding a clip from what a person types, and telling which files the workspace knows already."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from engine.concepts import Clip
from engine.errors import InputError, NotFound
from engine.library.scan import ProbedFile
from engine.store.clips import (ClipFile, clip_seen_at, clips_at_path_or_name, clips_by_ids, clips_with_id_prefix,
                                known_files)


def resolve_clip(con: duckdb.DuckDBPyConnection, ref: str) -> Clip:
    """A clip from its id, an id prefix (at least 4 characters), a file path or a unique file name."""
    ref = ref.strip()
    if not ref:
        raise InputError("no clip given")
    lowered = ref.lower()
    if len(lowered) >= 4 and all(c in "0123456789abcdef" for c in lowered):
        clips = clips_with_id_prefix(con, lowered, limit=2)
        if len(clips) == 1:
            return clips[0]
        if len(clips) > 1:
            raise InputError(f"clip id prefix {ref!r} matches more than one clip; give more characters")
    clip = clip_seen_at(con, os.path.abspath(os.path.expanduser(ref)))
    if clip is not None:
        return clip
    clips = clips_at_path_or_name(con, ref, limit=3)
    if len(clips) == 1:
        return clips[0]
    if len(clips) > 1:
        raise InputError(f"{ref!r} matches several clips; give the clip id or the full path")
    raise NotFound(f"no clip matches {ref!r} (give a clip id, an id prefix, a path or a file name)")


def is_unchanged(path: str, known: ClipFile | None) -> bool:
    """Whether a file seen before still has the size and mtime it had then."""
    if known is None:
        return False
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return stat.st_size == known.size_bytes and stat.st_mtime_ns == known.mtime_ns


@dataclass(frozen=True)
class KnownFile:
    """A file the workspace has hashed before and that has not changed since."""

    path: str
    clip_id: str
    size_bytes: int
    duration_s: float


def known_unchanged(con: duckdb.DuckDBPyConnection, paths: Sequence[str]) -> dict[str, KnownFile]:
    """The files among `paths` that the workspace knows and that have not changed since."""
    known = known_files(con, list(paths))
    unchanged = {path: known[path] for path in paths if is_unchanged(path, known.get(path))}
    clips = clips_by_ids(con, sorted({file.clip_id for file in unchanged.values()}))
    return {path: KnownFile(path, file.clip_id, file.size_bytes, clips[file.clip_id].duration_s)
            for path, file in unchanged.items() if file.clip_id in clips}


def identify_files(workspace, paths: Sequence[str], *, workers: int | None = None, reporter=None,
                   cancel=None, known: dict[str, KnownFile] | None = None) -> tuple[dict[str, KnownFile | ProbedFile], list]:
    """Clip identity of files: unchanged files the workspace knows are not read again; the rest are
    probed (hashed and decoded). Returns path → file for the good ones, and the rejections. `known`:
    `known_unchanged` of the paths, where the caller has read it in a transaction of its own."""
    from engine.library.scan import probe_files

    if known is None:
        with workspace.db.transaction(read_only=True) as con:
            known = known_unchanged(con, paths)
    found: dict[str, KnownFile | ProbedFile] = dict(known)
    probed, rejections = probe_files([p for p in paths if p not in found], workers=workers, reporter=reporter,
                                     cancel=cancel)
    found.update(probed)
    return found, rejections
