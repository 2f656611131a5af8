"""The clips behind a gate result: its items name them by `clip_id` (at any depth, e.g. the two
sides of a duplicate pair) or by `path`; the Gates screen jumps to them in the library."""

from __future__ import annotations

from collections.abc import Iterable

from engine.gates.core import GateResult
from engine.store.clips import known_files


def _walk(value, key: str) -> Iterable[str]:
    if isinstance(value, dict):
        for name, inner in value.items():
            if name == key and isinstance(inner, str):
                yield inner
            else:
                yield from _walk(inner, key)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk(inner, key)


def clips_behind(workspace, result: GateResult) -> list[str]:
    """Clip ids named by the result's items, in the order they appear, each once."""
    ids = list(dict.fromkeys(_walk(result.items, "clip_id")))
    paths = list(dict.fromkeys(_walk(result.items, "path")))
    if paths:
        with workspace.db.transaction(read_only=True) as con:
            found = known_files(con, paths)
        ids += [found[path].clip_id for path in paths if path in found]
    return list(dict.fromkeys(ids))
