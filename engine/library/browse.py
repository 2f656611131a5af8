"""Browsing the library: one page of clips with their labels and predictions, filtered and sorted.

Shared by the CLI's `clips list` and the TUI's library screen. A filter is a few words:
`label:kick`, `source:808`, `unlabelled`, `predicted:snare`, `low` (prediction confidence under
0.6), `disagrees` (the active model's label differs from the clip's label), and plain words
that must all appear in the clip's path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

LOW_CONFIDENCE = 0.6
SORTS = {"path": "c.path", "source": "c.source, c.path", "duration": "c.duration_s DESC, c.path",
         "confidence": "p.confidence NULLS LAST, c.path", "label": "labels NULLS LAST, c.path"}


class ClipRow(NamedTuple):  # a tuple, so 100,000 of them are built in a blink
    clip_id: str
    path: str
    source: str
    duration_s: float
    labels: str  # the clip's effective labels, comma-separated
    predicted: str | None  # the active model's label for the whole clip
    confidence: float | None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Page:
    rows: list[ClipRow]
    total: int  # clips matching the filter


def _conditions(query: str) -> tuple[list[str], dict]:
    conditions, params = [], {}
    for number, word in enumerate(query.split()):
        key, colon, value = word.partition(":")
        name = f"p{number}"
        if colon and key == "label":
            conditions.append(f"list_contains(string_split(coalesce(labels, ''), ','), ${name})")
            params[name] = value
        elif colon and key == "source":
            conditions.append(f"c.source ILIKE ${name}")
            params[name] = f"%{value}%"
        elif colon and key == "predicted":
            conditions.append(f"p.label = ${name}")
            params[name] = value
        elif word == "unlabelled":
            conditions.append("labels IS NULL")
        elif word == "low":
            conditions.append(f"p.confidence < {LOW_CONFIDENCE}")
        elif word == "disagrees":
            conditions.append("p.label IS NOT NULL AND labels IS NOT NULL "
                              "AND NOT list_contains(string_split(labels, ','), p.label)")
        else:
            conditions.append(f"c.path ILIKE ${name}")
            params[name] = f"%{word}%"
    return conditions, params


LABELS_AND_PREDICTION = (
    "LEFT JOIN (SELECT clip_id, array_to_string(list_sort(list(DISTINCT label)), ',') AS labels "
    "           FROM effective_labels GROUP BY clip_id) l USING (clip_id) "
    "LEFT JOIN (SELECT clip_id, label, confidence FROM predictions "
    "           WHERE segment_key = 'whole' AND model_id IN (SELECT model_id FROM model_versions WHERE is_active) "
    "           QUALIFY row_number() OVER (PARTITION BY clip_id ORDER BY confidence DESC) = 1) p USING (clip_id)"
)
COLUMNS = "c.clip_id, c.path, c.source, c.duration_s, coalesce(labels, ''), p.label, p.confidence"


def library_stamp(workspace) -> tuple:
    """A few milliseconds' summary of what the list shows: it changes with any import, move, label
    edit, activation or inference, so a screen can tell whether its rows are stale."""
    with workspace.db.transaction(read_only=True) as con:
        return con.execute(
            "SELECT (SELECT count(*) FROM clips), (SELECT max(seen_at) FROM clip_files), "
            "(SELECT count(*) FROM labels), (SELECT max(label_id) FROM labels), (SELECT max(updated_at) FROM labels), "
            "(SELECT list(model_id ORDER BY model_id) FROM model_versions WHERE is_active), "
            "(SELECT count(*) FROM predictions), (SELECT max(created_at) FROM predictions)").fetchone()


def _clips_table_only(conditions: list[str], order: str) -> bool:
    """Whether the filter and the order read only the clips table (not labels or predictions)."""
    return order.startswith("c.") and all(condition.startswith("c.") for condition in conditions)


def browse(workspace, query: str = "", *, sort: str = "path", offset: int = 0, limit: int | None = 500,
           clip_ids: list[str] | None = None) -> Page:
    """One page of the clips matching `query` (and among `clip_ids` when given), in `sort` order;
    `limit=None` gives them all (the TUI's table holds every matching row and draws only the
    visible ones)."""
    conditions, params = _conditions(query)
    if clip_ids is not None:
        conditions.append("c.clip_id IN (SELECT unnest($clip_ids))")
        params["clip_ids"] = list(clip_ids)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    order = SORTS.get(sort, SORTS["path"])
    matching = f"SELECT {COLUMNS} FROM clips c {LABELS_AND_PREDICTION} {where} ORDER BY {order}"
    with workspace.db.transaction(read_only=True) as con:
        if limit is None:
            rows = con.execute(f"{matching} OFFSET $offset", {**params, "offset": offset}).fetchall()
            total = offset + len(rows)
        elif _clips_table_only(conditions, order):
            # the page first, then labels and predictions of its rows alone: a screenful of
            # 100,000 clips in tens of milliseconds instead of a pass over every label
            total = con.execute(f"SELECT count(*) FROM clips c {where}", params).fetchone()[0]
            page = f"(SELECT * FROM clips c {where} ORDER BY {order} LIMIT $limit OFFSET $offset) c"
            rows = con.execute(f"SELECT {COLUMNS} FROM {page} {LABELS_AND_PREDICTION} ORDER BY {order}",
                               {**params, "limit": limit, "offset": offset}).fetchall()
        else:
            total = con.execute(f"SELECT count(*) FROM clips c {LABELS_AND_PREDICTION} {where}", params).fetchone()[0]
            rows = con.execute(f"{matching} LIMIT $limit OFFSET $offset",
                               {**params, "limit": limit, "offset": offset}).fetchall()
    return Page(list(map(ClipRow._make, rows)), total)
