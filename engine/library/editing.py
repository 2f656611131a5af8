"""Label edits: the one service through which the CLI (`labels add`, `labels remove`), the TUI's
label screen and label-file imports write labels.

An edit names its clip by id and is one short transaction, committed before the call returns; it
returns the Change it made (the labels it wrote, and the labels it removed or replaced), which is
what a face shows and what `undo_change` takes back. An edit never decides what a face shows next.

User wins: every origin keeps its own label on a segment, so a person's edit never overwrites an
imported or a model's label and an import never overwrites a person's; the label that counts is
the user's, else the imported one, else the model's (the store's `effective_labels` view).

A new range replaces what it covers, as in a DAW: the ranges of its taxonomy that it overlaps, of
its own origin or one that counts less, are trimmed, split or removed (a label on the very same
segment from an origin that counts less stays, hidden). The Change says what happened to each and
holds them all, so undo restores every one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import duckdb

from engine.audio.beatgrid import BeatGrid
from engine.concepts import Clip, Label, Origin, Segment
from engine.errors import InputError, NotFound
from engine.library.clips import resolve_clip
from engine.library.labels import make_segment, resolve_label_name
from engine.store.clips import get_clip
from engine.store.grids import clip_ids_with_grid_from, get_grid, save_grid
from engine.store.labels import (LabelWrite, delete_label, delete_labels_at, label_by_id, labels_at, query_labels,
                                 remember_taxonomy, upsert_labels)
from engine.taxonomy import Taxonomy

# How much each origin counts, most first (as the effective_labels view ranks them).
ORIGIN_RANK = {Origin.USER: 0, Origin.IMPORT: 1, Origin.MODEL: 2}


@dataclass(frozen=True)
class Change:
    """One saved edit of one clip: the labels it wrote and the labels it removed or replaced;
    `covered` says what a new range did to the ranges it covers (also the end of `description`)."""

    clip_id: str
    description: str
    added: tuple[Label, ...]
    removed: tuple[Label, ...]
    covered: tuple[str, ...] = ()


def put_label(workspace, clip_id: str, label: str, *, taxonomy: str | None = None, start_s: float | None = None,
              end_s: float | None = None, start_beat: float | None = None, end_beat: float | None = None,
              snap: str | None = None, origin: Origin = Origin.USER, confidence: float = 1.0,
              replacing: Label | None = None, lead_time_s: float | None = None,
              techniques: Sequence[str] = ()) -> Change:
    """Label the whole clip, a seconds range or a beat range (snapped to `snap` when given), replacing
    the label of that segment and origin, and `replacing` too when given (a label moved to a new range).
    `lead_time_s`: how long the person took to make it, stored with the label; `techniques`: tags from
    the taxonomy's technique catalogue."""
    tax = workspace.taxonomy(taxonomy)
    name = resolve_label_name(tax, label)
    checked = workspace.technique_catalogue(tax.name).check(techniques, name) if techniques else ()
    with workspace.db.transaction() as con:
        clip = get_clip(con, clip_id)
        if clip is None:
            raise NotFound(f"no clip with id {clip_id}")
        return _put(con, clip, tax, name, start_s=start_s, end_s=end_s, start_beat=start_beat, end_beat=end_beat,
                    snap=snap, origin=origin, confidence=confidence, replacing=replacing, lead_time_s=lead_time_s,
                    techniques=checked)


def add_label(workspace, clip_ref: str, label: str, *, taxonomy: str | None = None, start_s: float | None = None,
              end_s: float | None = None, start_beat: float | None = None, end_beat: float | None = None,
              snap: str | None = None, origin: Origin = Origin.USER, confidence: float = 1.0,
              techniques: Sequence[str] = ()) -> Label:
    """`put_label` on a clip named as a person types it (an id, an id prefix, a path or a file name).
    Returns the stored label."""
    tax = workspace.taxonomy(taxonomy)
    name = resolve_label_name(tax, label)
    checked = workspace.technique_catalogue(tax.name).check(techniques, name) if techniques else ()
    with workspace.db.transaction() as con:
        change = _put(con, resolve_clip(con, clip_ref), tax, name, start_s=start_s, end_s=end_s,
                      start_beat=start_beat, end_beat=end_beat, snap=snap, origin=origin, confidence=confidence,
                      techniques=checked)
    return change.added[0]


def _put(con: duckdb.DuckDBPyConnection, clip: Clip, tax: Taxonomy, name: str, *, start_s: float | None,
         end_s: float | None, start_beat: float | None, end_beat: float | None, snap: str | None, origin: Origin,
         confidence: float, replacing: Label | None = None, lead_time_s: float | None = None,
         techniques: tuple[str, ...] = ()) -> Change:
    grid = get_grid(con, clip.clip_id)
    if snap and grid is not None and start_beat is not None and end_beat is not None:
        start_beat, end_beat = grid.snap(start_beat, snap), grid.snap(end_beat, snap)
    segment = make_segment(clip, grid, start_s=start_s, end_s=end_s, start_beat=start_beat, end_beat=end_beat)
    write = LabelWrite(clip.clip_id, tax.name, name, Origin(origin), confidence, segment, lead_time_s=lead_time_s,
                       techniques=techniques)
    removed = labels_at(con, write)
    if replacing is not None and all(old.label_id != replacing.label_id for old in removed):
        removed.append(delete_label(con, replacing.label_id))
    pieces, said = [], []
    for old in _covered(con, write, {label.label_id for label in removed}):
        removed.append(delete_label(con, old.label_id))
        kept = [LabelWrite(old.clip_id, old.taxonomy, old.label, old.origin, old.confidence, part, old.split,
                           techniques=old.techniques)
                for part in _outside(clip, grid, old.segment, segment)]
        pieces += kept
        said.append(_what_became(old, [piece.segment for piece in kept], grid))
    for piece in pieces:  # a piece may land on a segment that holds a label already: that one is replaced
        removed += [label for label in labels_at(con, piece) if label not in removed]
    remember_taxonomy(con, tax)
    upsert_labels(con, [write, *pieces])
    added = [label for each in (write, *pieces) for label in labels_at(con, each)]
    description = "; ".join([f"{name} on {describe_segment(segment, grid)}", *said])
    return Change(clip.clip_id, description, tuple(added), tuple(removed), tuple(said))


def describe_segment(segment: Segment, grid: BeatGrid | None) -> str:
    """A segment as the label screen shows it: a beat range with its bar.beat positions too."""
    if segment.is_beat_range and grid is not None:
        return grid.describe_range(segment.start_beat, segment.end_beat)
    return segment.describe()


def _covered(con: duckdb.DuckDBPyConnection, write: LabelWrite, skip: set[int]) -> list[Label]:
    """The range labels of the write's clip and taxonomy that its range overlaps, of its origin or one
    that counts less; a label on the very same segment is the write's to replace (or to leave hidden)."""
    new = write.segment
    if new.is_whole:
        return []
    rank = ORIGIN_RANK[write.origin]
    return [old for old in query_labels(con, clip_id=write.clip_id, taxonomy=write.taxonomy, effective=False)
            if old.label_id not in skip and not old.segment.is_whole and ORIGIN_RANK[old.origin] >= rank
            and old.segment.key != new.key and old.segment.start_s < new.end_s and new.start_s < old.segment.end_s]


def _outside(clip: Clip, grid: BeatGrid | None, old: Segment, new: Segment) -> list[Segment]:
    """What is left of `old` once `new` covers its part: none, one or two segments, in beats when
    `old` is a beat range on the clip's grid, else in seconds."""
    if old.is_beat_range and grid is not None:
        if new.is_beat_range:
            cut = (new.start_beat, new.end_beat)
        else:
            cut = tuple(round(float(grid.beat_at(edge)), 4) for edge in (new.start_s, new.end_s))
        ranges, unit = [(old.start_beat, cut[0]), (cut[1], old.end_beat)], "beat"
    else:
        ranges, unit = [(old.start_s, new.start_s), (new.end_s, old.end_s)], "s"
    return [make_segment(clip, grid, **{f"start_{unit}": start, f"end_{unit}": end})
            for start, end in ranges if end - start > 1e-4]


def _what_became(old: Label, left: list[Segment], grid: BeatGrid | None) -> str:
    if not left:
        return f"replaced {old.label} on {describe_segment(old.segment, grid)}"
    parts = " and ".join(describe_segment(part, grid) for part in left)
    return f"{'trimmed' if len(left) == 1 else 'split'} {old.label} {'to' if len(left) == 1 else 'into'} {parts}"


def remove_label(workspace, label_id: int) -> Change:
    """Remove one label by id; NotFound when there is none."""
    with workspace.db.transaction() as con:
        removed = delete_label(con, label_id)
        grid = get_grid(con, removed.clip_id)
    return Change(removed.clip_id, f"removed {removed.label} on {describe_segment(removed.segment, grid)}", (),
                  (removed,))


def tag_label(workspace, label_id: int, techniques: Sequence[str]) -> Change:
    """Set the technique tags of one label (none clears them), checked against its taxonomy's
    catalogue; undo puts the old tags back. NotFound when there is no such label."""
    with workspace.db.transaction() as con:
        old = label_by_id(con, label_id)
        checked = workspace.technique_catalogue(old.taxonomy).check(techniques, old.label) if techniques else ()
        write = replace(LabelWrite.of(old), techniques=checked)
        upsert_labels(con, [write])
        new = labels_at(con, write)
        grid = get_grid(con, old.clip_id)
    tags = ", ".join(checked) or "no technique"
    return Change(old.clip_id, f"{old.label} on {describe_segment(old.segment, grid)}: {tags}", tuple(new), (old,))


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


def carry_user_labels(con: duckdb.DuckDBPyConnection, old: Clip, new: Clip) -> tuple[int, list[str]]:
    """Put a person's labels of `old` on `new`, the clip found at `old`'s path after its file was edited
    in place, inside the import's transaction; `old`'s beat grid comes along when `new` has none. A
    label `new` already has from a person stays. Returns how many labels were carried, and why each
    of the others was not."""
    grid = get_grid(con, new.clip_id)
    old_grid = get_grid(con, old.clip_id)
    if grid is None and old_grid is not None:
        grid = old_grid
        save_grid(con, new.clip_id, grid, "user" if old.clip_id in clip_ids_with_grid_from(con, "user") else "import")
    writes, left = [], []
    for label in query_labels(con, clip_id=old.clip_id, origin=Origin.USER, effective=False):
        segment = label.segment
        try:
            if segment.is_beat_range:
                moved = make_segment(new, grid, start_beat=segment.start_beat, end_beat=segment.end_beat)
            else:
                moved = make_segment(new, None, start_s=segment.start_s, end_s=segment.end_s)
        except InputError as error:
            left.append(f"{label.label} on {segment.describe()}: {error}")
            continue
        write = LabelWrite(new.clip_id, label.taxonomy, label.label, Origin.USER, label.confidence, moved, label.split,
                           techniques=label.techniques)
        if labels_at(con, write):
            left.append(f"{label.label} on {segment.describe()}: the new file has its own label there")
            continue
        writes.append(write)
    return upsert_labels(con, writes), left
