"""Walking from clip to clip while labelling: next, previous, next unlabelled, next suspect, next
suggestion.

The walk follows an order of clip ids (the library's filtered, sorted list when labelling starts
from there; all clips by path otherwise). "Unlabelled" and "suspect" are looked up fresh each
time, since labelling changes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.store.clips import clip_ids_by_path
from engine.store.library_view import doubted_clip_ids, unlabelled_clip_ids
from engine.store.suggestions import query_suggestions


def library_order(workspace) -> list[str]:
    """Every clip id, in the library's default order (by path)."""
    with workspace.db.transaction() as con:
        return clip_ids_by_path(con)


def unlabelled_ids(workspace) -> set[str]:
    with workspace.db.transaction() as con:
        return unlabelled_clip_ids(con)


def suspect_ids(workspace) -> set[str]:
    """Clips an active model doubts: the model of a label's taxonomy predicts another label (the
    rule the library's `disagrees` filter uses), or it is less than LOW_CONFIDENCE sure."""
    with workspace.db.transaction() as con:
        return doubted_clip_ids(con)


def suspect_queue(workspace) -> list[str]:
    """The clips to audition as suspects, in order: the saved `triage suspects` queue (most
    suspicious first), then the clips the active model doubts, by path."""
    from engine.library.suspect_queue import queued_clips

    queue = queued_clips(workspace)
    doubted = suspect_ids(workspace) - set(queue)
    return queue + [clip_id for clip_id in library_order(workspace) if clip_id in doubted]


def next_suggestion(workspace, current: str) -> str | None:
    """The clip of the most informative pending suggestion (oldest batch, then rank); from a clip
    whose suggestion is still pending (skipped), the one after it, going round to the start."""
    with workspace.db.transaction(read_only=True) as con:
        queue = list(dict.fromkeys(s.clip_id for s in query_suggestions(con, pending=True)))
    return next_in_queue(queue, current) or next((clip_id for clip_id in queue if clip_id != current), None)


def next_in_queue(queue: Sequence[str], current: str) -> str | None:
    """The clip after `current` in `queue`, or its first when `current` is not queued."""
    if current not in queue:
        return queue[0] if queue else None
    index = queue.index(current) + 1
    return queue[index] if index < len(queue) else None


@dataclass(frozen=True)
class ClipWalk:
    """An order of clips to walk through; `filter` says where it came from (for the status line)."""

    order: Sequence[str]
    filter: str = ""

    def step(self, current: str, direction: int) -> str | None:
        """The clip `direction` places away (+1 next, -1 previous); None past either end."""
        if current not in self.order:
            return self.order[0] if self.order else None
        index = self.order.index(current) + direction
        return self.order[index] if 0 <= index < len(self.order) else None

    def next_among(self, current: str, wanted: set[str]) -> str | None:
        """The first clip after `current` (going round to the start) that is in `wanted`."""
        start = self.order.index(current) + 1 if current in self.order else 0
        count = len(self.order)
        for offset in range(count):
            clip_id = self.order[(start + offset) % count]
            if clip_id in wanted and clip_id != current:
                return clip_id
        return None
