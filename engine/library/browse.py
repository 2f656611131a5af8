"""Browsing the library: one page of clips with their labels and predictions, filtered and sorted.

Shared by the CLI's `clips list` and the TUI's library screen. The filter words (`label:kick`,
`source:808`, `unlabelled`, `predicted:snare`, `low`, `disagrees`, plain words of the path) are
described in engine/store/library_view.py, which runs the query.
"""

from __future__ import annotations

from engine.store import library_view
from engine.store.library_view import ClipRow, Page

SORTS = tuple(library_view.SORT_ORDERS)  # the orders a page can come in
__all__ = ["SORTS", "ClipRow", "Page", "browse", "library_stamp"]


def library_stamp(workspace) -> tuple:
    """A few milliseconds' summary of what the list shows: it changes with any import, move, label
    edit, activation or inference, so a screen can tell whether its rows are stale."""
    with workspace.db.transaction(read_only=True) as con:
        return library_view.library_stamp(con)


def browse(workspace, query: str = "", *, sort: str = "path", offset: int = 0, limit: int | None = 500,
           clip_ids: list[str] | None = None) -> Page:
    """One page of the clips matching `query` (and among `clip_ids` when given), in `sort` order;
    `limit=None` gives them all (the TUI's table holds every matching row and draws only the
    visible ones)."""
    with workspace.db.transaction(read_only=True) as con:
        return library_view.browse_page(con, query, sort=sort, offset=offset, limit=limit, clip_ids=clip_ids)
