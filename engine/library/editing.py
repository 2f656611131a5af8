"""Label edits a person makes, one at a time (the CLI's `labels add`, the TUI's label keys)."""

from __future__ import annotations

from engine.concepts import Label, Origin
from engine.library.clips import resolve_clip
from engine.library.labels import (LabelWrite, make_segment, query_labels, remember_taxonomy, resolve_label_name,
                                   upsert_labels)
from engine.store.grids import get_grid


def add_label(workspace, clip_ref: str, label: str, *, taxonomy: str | None = None, start_s: float | None = None,
              end_s: float | None = None, start_beat: float | None = None, end_beat: float | None = None,
              snap: str | None = None, origin: Origin = Origin.USER, confidence: float = 1.0) -> Label:
    """Label a whole clip, a seconds range or a beat range; saved at once. Returns the stored label."""
    tax = workspace.taxonomy(taxonomy)
    name = resolve_label_name(tax, label)
    with workspace.db.transaction() as con:
        clip = resolve_clip(con, clip_ref)
        grid = get_grid(con, clip.clip_id)
        if snap and grid is not None and start_beat is not None and end_beat is not None:
            start_beat, end_beat = grid.snap(start_beat, snap), grid.snap(end_beat, snap)
        segment = make_segment(clip, grid, start_s=start_s, end_s=end_s, start_beat=start_beat, end_beat=end_beat)
        remember_taxonomy(con, tax)
        upsert_labels(con, [LabelWrite(clip.clip_id, tax.name, name, Origin(origin), confidence, segment)])
        stored = [item for item in query_labels(con, clip_id=clip.clip_id, taxonomy=tax.name, effective=False)
                  if item.segment.key == segment.key and item.origin == origin]
    return stored[0]
