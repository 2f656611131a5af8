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
    source = (
        "FROM clips c "
        "LEFT JOIN (SELECT clip_id, array_to_string(list_sort(list(DISTINCT label)), ',') AS labels "
        "           FROM effective_labels GROUP BY clip_id) l USING (clip_id) "
        "LEFT JOIN (SELECT clip_id, label, confidence FROM predictions "
        "           WHERE segment_key = 'whole' AND model_id IN (SELECT model_id FROM model_versions WHERE is_active) "
        "           QUALIFY row_number() OVER (PARTITION BY clip_id ORDER BY confidence DESC) = 1) p USING (clip_id) "
    )
    select = (f"SELECT c.clip_id, c.path, c.source, c.duration_s, coalesce(labels, ''), p.label, p.confidence "
              f"{source} {where} ORDER BY {SORTS.get(sort, SORTS['path'])}")
    with workspace.db.transaction(read_only=True) as con:
        if limit is None:
            rows = con.execute(f"{select} OFFSET $offset", {**params, "offset": offset}).fetchall()
            total = offset + len(rows)
        else:
            total = con.execute(f"SELECT count(*) {source} {where}", params).fetchone()[0]
            rows = con.execute(f"{select} LIMIT $limit OFFSET $offset", {**params, "limit": limit, "offset": offset}).fetchall()
    return Page(list(map(ClipRow._make, rows)), total)
