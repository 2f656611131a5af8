"""Label edits: the one service through which the CLI (`labels add`, `labels remove`), the TUI's
label screen and label-file imports write labels.

An edit names its clip by id and is one short transaction, committed before the call returns; it
returns the Change it made (the labels it wrote, and the labels it removed or replaced), which is
what a face shows and what `undo_change` takes back. An edit never decides what a face shows next.

User wins: every origin keeps its own label on a segment, so a person's edit never overwrites an
imported or a model's label and an import never overwrites a person's; the label that counts is
the user's, else the imported one, else the model's (the store's `effective_labels` view).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from engine.concepts import Clip, Label, Origin
from engine.errors import NotFound
from engine.library.clips import resolve_clip
from engine.library.labels import make_segment, resolve_label_name
from engine.store.clips import get_clip
from engine.store.grids import get_grid
from engine.store.labels import (LabelWrite, delete_label, delete_labels_at, labels_at, remember_taxonomy,
                                 upsert_labels)
from engine.taxonomy import Taxonomy


@dataclass(frozen=True)
class Change:
    """One saved edit of one clip: the labels it wrote and the labels it removed or replaced."""

    clip_id: str
    description: str
    added: tuple[Label, ...]
    removed: tuple[Label, ...]


def put_label(workspace, clip_id: str, label: str, *, taxonomy: str | None = None, start_s: float | None = None,
              end_s: float | None = None, start_beat: float | None = None, end_beat: float | None = None,
              snap: str | None = None, origin: Origin = Origin.USER, confidence: float = 1.0,
              replacing: Label | None = None, lead_time_s: float | None = None) -> Change:
    """Label the whole clip, a seconds range or a beat range (snapped to `snap` when given), replacing
    the label of that segment and origin, and `replacing` too when given (a label moved to a new range).
    `lead_time_s`: how long the person took to make it, stored with the label."""
    tax = workspace.taxonomy(taxonomy)
    name = resolve_label_name(tax, label)
    with workspace.db.transaction() as con:
        clip = get_clip(con, clip_id)
        if clip is None:
            raise NotFound(f"no clip with id {clip_id}")
        return _put(con, clip, tax, name, start_s=start_s, end_s=end_s, start_beat=start_beat, end_beat=end_beat,
                    snap=snap, origin=origin, confidence=confidence, replacing=replacing, lead_time_s=lead_time_s)


def add_label(workspace, clip_ref: str, label: str, *, taxonomy: str | None = None, start_s: float | None = None,
              end_s: float | None = None, start_beat: float | None = None, end_beat: float | None = None,
              snap: str | None = None, origin: Origin = Origin.USER, confidence: float = 1.0) -> Label:
    """`put_label` on a clip named as a person types it (an id, an id prefix, a path or a file name).
    Returns the stored label."""
    tax = workspace.taxonomy(taxonomy)
    name = resolve_label_name(tax, label)
    with workspace.db.transaction() as con:
        change = _put(con, resolve_clip(con, clip_ref), tax, name, start_s=start_s, end_s=end_s,
                      start_beat=start_beat, end_beat=end_beat, snap=snap, origin=origin, confidence=confidence)
    return change.added[0]


def _put(con: duckdb.DuckDBPyConnection, clip: Clip, tax: Taxonomy, name: str, *, start_s: float | None,
         end_s: float | None, start_beat: float | None, end_beat: float | None, snap: str | None, origin: Origin,
         confidence: float, replacing: Label | None = None, lead_time_s: float | None = None) -> Change:
    grid = get_grid(con, clip.clip_id)
    if snap and grid is not None and start_beat is not None and end_beat is not None:
        start_beat, end_beat = grid.snap(start_beat, snap), grid.snap(end_beat, snap)
    segment = make_segment(clip, grid, start_s=start_s, end_s=end_s, start_beat=start_beat, end_beat=end_beat)
    write = LabelWrite(clip.clip_id, tax.name, name, Origin(origin), confidence, segment, lead_time_s=lead_time_s)
    removed = labels_at(con, write)
    if replacing is not None and all(old.label_id != replacing.label_id for old in removed):
        removed.append(delete_label(con, replacing.label_id))
    remember_taxonomy(con, tax)
    upsert_labels(con, [write])
    return Change(clip.clip_id, f"{name} on {segment.describe()}", tuple(labels_at(con, write)), tuple(removed))


def remove_label(workspace, label_id: int) -> Change:
    """Remove one label by id; NotFound when there is none."""
    with workspace.db.transaction() as con:
        removed = delete_label(con, label_id)
    return Change(removed.clip_id, f"removed {removed.label} on {removed.segment.describe()}", (), (removed,))


def undo_change(workspace, change: Change) -> Change:
    """Take back `change`: the labels it wrote go, the ones it removed come back. Returns `change`."""
    with workspace.db.transaction() as con:
        delete_labels_at(con, change.added)
        upsert_labels(con, [LabelWrite.of(label) for label in change.removed])
    return change


def import_labels(con: duckdb.DuckDBPyConnection, taxonomy: Taxonomy, writes: Sequence[LabelWrite]) -> int:
    """Store imported labels (a label file's rows, a curated folder's class folders) inside the
    import's own transaction, which adds their clips too. Returns how many segments were labelled."""
    remember_taxonomy(con, taxonomy)
    return upsert_labels(con, writes)
