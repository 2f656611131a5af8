"""The library's read model: clips joined with their effective labels and the active model's
predictions, for browsing, walking and counting.

A filter is a few words: `label:kick`, `source:808`, `unlabelled`, `predicted:snare`,
`license:cc-by-4.0` and `dataset:fsd_subset` (a clip imported from a dataset), `low`
(prediction confidence under LOW_CONFIDENCE), `disagrees` (see DISAGREEING), and plain words that
must all appear in the clip's path; a word in double quotes is always text of the path (`"low"`
finds low_tom.wav).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import duckdb

LOW_CONFIDENCE = 0.6
SORT_ORDERS = {  # a page's sort name → its ORDER BY
    "path": "c.path", "source": "c.source, c.path", "duration": "c.duration_s DESC, c.path",
    "confidence": "p.confidence NULLS LAST, c.path", "label": "labels NULLS LAST, c.path"}

# The one rule of "disagrees", for the library's filter and the label screen's suspect walk: the
# active model of a label's taxonomy predicts another label for the whole clip than the clip's
# own whole-clip label(s) in that taxonomy. A model of another taxonomy never disagrees with it.
DISAGREEING = (
    "SELECT p.clip_id FROM predictions p JOIN model_versions m ON m.model_id = p.model_id AND m.is_active "
    "JOIN (SELECT clip_id, taxonomy, list(DISTINCT label) AS labels FROM effective_labels "
    "      WHERE segment_key = 'whole' GROUP BY clip_id, taxonomy) l ON l.clip_id = p.clip_id AND l.taxonomy = m.task "
    "WHERE p.segment_key = 'whole' AND NOT list_contains(l.labels, p.label)")


class ClipRow(NamedTuple):  # a tuple, so 100,000 of them are built in a blink
    clip_id: str
    path: str
    source: str
    duration_s: float
    labels: str  # the clip's effective labels, comma-separated
    predicted: str | None  # the active model's label for the whole clip
    confidence: float | None
    provenance: str | None = None  # a clip imported from a dataset: "fsd_subset/default/train cc-by-4.0"

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Page:
    rows: list[ClipRow]
    total: int  # clips matching the filter


_WORD = re.compile(r'"([^"]*)"|(\S+)')


def _words(query: str) -> list[tuple[str, bool]]:
    """The filter's words, each with whether it was quoted."""
    return [(match[1], True) if match[1] is not None else (match[2], False)
            for match in _WORD.finditer(query) if match[1] or match[2]]


def _conditions(query: str) -> tuple[list[str], dict]:
    conditions, params = [], {}
    for number, (word, quoted) in enumerate(_words(query)):
        key, colon, value = word.partition(":")
        name = f"p{number}"
        if quoted:  # "low", "label:kick": text of the path, never a filter word
            conditions.append(f"c.path ILIKE ${name}")
            params[name] = f"%{word}%"
        elif colon and key == "label":
            conditions.append(f"list_contains(string_split(coalesce(labels, ''), ','), ${name})")
            params[name] = value
        elif colon and key == "source":
            conditions.append(f"c.source ILIKE ${name}")
            params[name] = f"%{value}%"
        elif colon and key in ("license", "licence"):
            conditions.append(f"c.clip_id IN (SELECT clip_id FROM clip_provenance WHERE license ILIKE ${name})")
            params[name] = value
        elif colon and key == "dataset":
            conditions.append(f"c.clip_id IN (SELECT clip_id FROM clip_provenance WHERE dataset ILIKE ${name})")
            params[name] = value
        elif colon and key == "predicted":
            conditions.append(f"p.label = ${name}")
            params[name] = value
        elif word == "unlabelled":
            conditions.append("labels IS NULL")
        elif word == "low":
            conditions.append(f"p.confidence < {LOW_CONFIDENCE}")
        elif word == "disagrees":
            conditions.append(f"c.clip_id IN ({DISAGREEING})")
        else:
            conditions.append(f"c.path ILIKE ${name}")
            params[name] = f"%{word}%"
    return conditions, params


_LABELS_AND_PREDICTION = (
    "LEFT JOIN (SELECT clip_id, array_to_string(list_sort(list(DISTINCT label)), ',') AS labels "
    "           FROM effective_labels GROUP BY clip_id) l USING (clip_id) "
    "LEFT JOIN (SELECT clip_id, label, confidence FROM predictions "
    "           WHERE segment_key = 'whole' AND model_id IN (SELECT model_id FROM model_versions WHERE is_active) "
    "           QUALIFY row_number() OVER (PARTITION BY clip_id ORDER BY confidence DESC) = 1) p USING (clip_id) "
    "LEFT JOIN clip_provenance pv USING (clip_id)"
)
_PROVENANCE = ("CASE WHEN pv.clip_id IS NOT NULL THEN concat_ws(' ', concat_ws('/', pv.dataset, pv.config, pv.split), "
               "pv.license) END")
_COLUMNS = f"c.clip_id, c.path, c.source, c.duration_s, coalesce(labels, ''), p.label, p.confidence, {_PROVENANCE}"


def _clips_table_only(conditions: list[str], order: str) -> bool:
    """Whether the filter and the order read only the clips table (not labels or predictions)."""
    return order.startswith("c.") and all(condition.startswith("c.") for condition in conditions)


def browse_page(con: duckdb.DuckDBPyConnection, query: str = "", *, sort: str = "path", offset: int = 0,
                limit: int | None = 500, clip_ids: list[str] | None = None) -> Page:
    """One page of the clips matching the filter `query` (and among `clip_ids` when given), in
    `sort` order (one of SORT_ORDERS; by path when unknown); `limit=None` gives them all."""
    conditions, params = _conditions(query)
    if clip_ids is not None:
        conditions.append("c.clip_id IN (SELECT unnest($clip_ids))")
        params["clip_ids"] = list(clip_ids)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    order = SORT_ORDERS.get(sort, SORT_ORDERS["path"])
    matching = f"SELECT {_COLUMNS} FROM clips c {_LABELS_AND_PREDICTION} {where} ORDER BY {order}"
    if limit is None:
        rows = con.execute(f"{matching} OFFSET $offset", {**params, "offset": offset}).fetchall()
        total = offset + len(rows)
    elif _clips_table_only(conditions, order):
        # the page first, then labels and predictions of its rows alone: a screenful of
        # 100,000 clips in tens of milliseconds instead of a pass over every label
        total = con.execute(f"SELECT count(*) FROM clips c {where}", params).fetchone()[0]
        page = f"(SELECT * FROM clips c {where} ORDER BY {order} LIMIT $limit OFFSET $offset) c"
        rows = con.execute(f"SELECT {_COLUMNS} FROM {page} {_LABELS_AND_PREDICTION} ORDER BY {order}",
                           {**params, "limit": limit, "offset": offset}).fetchall()
    else:
        total = con.execute(f"SELECT count(*) FROM clips c {_LABELS_AND_PREDICTION} {where}", params).fetchone()[0]
        rows = con.execute(f"{matching} LIMIT $limit OFFSET $offset",
                           {**params, "limit": limit, "offset": offset}).fetchall()
    return Page(list(map(ClipRow._make, rows)), total)


def library_stamp(con: duckdb.DuckDBPyConnection) -> tuple:
    """A few milliseconds' summary of what the library shows: it changes with any import, move,
    label edit, activation or inference."""
    return con.execute(
        "SELECT (SELECT count(*) FROM clips), (SELECT max(seen_at) FROM clip_files), "
        "(SELECT count(*) FROM labels), (SELECT max(label_id) FROM labels), (SELECT max(updated_at) FROM labels), "
        "(SELECT list(model_id ORDER BY model_id) FROM model_versions WHERE is_active), "
        "(SELECT count(*) FROM predictions), (SELECT max(created_at) FROM predictions)").fetchone()


# -- walking ----------------------------------------------------------------------------------

def unlabelled_clip_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Clips without any effective label."""
    rows = con.execute(
        "SELECT clip_id FROM clips WHERE clip_id NOT IN (SELECT clip_id FROM effective_labels)").fetchall()
    return {row[0] for row in rows}


def doubted_clip_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Clips the active models doubt: one disagrees with the clip's label (DISAGREEING), or one is
    less than LOW_CONFIDENCE sure of the whole clip."""
    rows = con.execute(
        f"{DISAGREEING} UNION SELECT p.clip_id FROM predictions p "
        "JOIN model_versions m ON m.model_id = p.model_id AND m.is_active "
        "WHERE p.segment_key = 'whole' AND p.confidence < $low AND p.clip_id IN (SELECT clip_id FROM clips)",
        {"low": LOW_CONFIDENCE},
    ).fetchall()
    return {row[0] for row in rows}


# -- listing ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ListedClip:
    clip_id: str
    path: str
    source: str
    duration_s: float
    sample_rate: int
    channels: int
    labels: tuple[str, ...]  # its effective labels, in any taxonomy
    predicted: str | None = None  # the active model's label for the whole clip
    confidence: float | None = None
    dataset: str | None = None  # for a clip imported from a dataset: its id, config and split ("fsd/default/train")
    license: str | None = None


@dataclass(frozen=True)
class ClipListing:
    clips: list[ListedClip]  # the first ones in the listing's order
    total: int  # clips matching


def list_clips(con: duckdb.DuckDBPyConnection, *, query: str = "", sort: str = "path", source: str | None = None,
               unlabelled: bool = False, limit: int = 100) -> ClipListing:
    """The first `limit` clips matching the filter `query` (the library's filter words), of one
    source and only those without any label when asked, in `sort` order (one of SORT_ORDERS)."""
    conditions, params = _conditions(query)
    if source:
        conditions.append("c.source = $source")
        params["source"] = source
    if unlabelled:
        conditions.append("c.clip_id NOT IN (SELECT clip_id FROM labels)")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    total = con.execute(f"SELECT count(*) FROM clips c {_LABELS_AND_PREDICTION} {where}", params).fetchone()[0]
    rows = con.execute(
        "SELECT c.clip_id, c.path, c.source, c.duration_s, c.sample_rate, c.channels, coalesce(labels, ''), "
        "p.label, p.confidence, concat_ws('/', pv.dataset, pv.config, pv.split), pv.license "
        f"FROM clips c {_LABELS_AND_PREDICTION} {where} "
        f"ORDER BY {SORT_ORDERS[sort]} LIMIT $limit", {**params, "limit": limit},
    ).fetchall()
    clips = [ListedClip(*row[:6], labels=tuple(label for label in row[6].split(",") if label),
                        predicted=row[7], confidence=row[8], dataset=row[9] or None, license=row[10]) for row in rows]
    return ClipListing(clips, total)


# -- counting ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceTally:
    source: str
    clips: int
    labels: int  # effective labels on its clips


@dataclass(frozen=True)
class LabelTally:
    """How many segments carry one label of a taxonomy (effective labels), on how many clips."""

    taxonomy: str
    label: str
    segments: int
    clips: int


@dataclass(frozen=True)
class TaxonomyTally:
    taxonomy: str
    segments: int
    clips: int


@dataclass(frozen=True)
class LeadTimes:
    """The lead times of the labels people made in the label screen (timed user labels)."""

    labels: int
    total_s: float
    median_s: float | None


@dataclass(frozen=True)
class LibraryCounts:
    clips: int
    total_duration_s: float
    clips_labelled: int  # clips with at least one effective label
    labels: int  # effective labels
    sources: list[SourceTally]  # by source name
    origins: dict[str, int]  # every label (effective or overruled) per origin
    beat_grids: int
    per_label: list[LabelTally]  # by taxonomy and label
    per_taxonomy: list[TaxonomyTally]
    lead_times: LeadTimes


def library_counts(con: duckdb.DuckDBPyConnection) -> LibraryCounts:
    clips, duration = con.execute("SELECT count(*), coalesce(sum(duration_s), 0) FROM clips").fetchone()
    labelled, label_total = con.execute("SELECT count(DISTINCT clip_id), count(*) FROM effective_labels").fetchone()
    sources = con.execute(
        "SELECT c.source, count(DISTINCT c.clip_id), count(l.label_id) FROM clips c "
        "LEFT JOIN effective_labels l USING (clip_id) GROUP BY c.source ORDER BY c.source").fetchall()
    origins = dict(con.execute("SELECT origin, count(*) FROM labels WHERE clip_id IN (SELECT clip_id FROM clips) "
                               "GROUP BY origin ORDER BY origin").fetchall())
    grids = con.execute("SELECT count(*) FROM beat_grids WHERE clip_id IN (SELECT clip_id FROM clips)").fetchone()[0]
    per_label = con.execute(
        "SELECT taxonomy, label, count(*), count(DISTINCT clip_id) FROM effective_labels "
        "GROUP BY taxonomy, label ORDER BY taxonomy, label").fetchall()
    per_taxonomy = con.execute(
        "SELECT taxonomy, count(*), count(DISTINCT clip_id) FROM effective_labels GROUP BY taxonomy").fetchall()
    lead_times = con.execute(
        "SELECT count(*), coalesce(sum(lead_time_s), 0), median(lead_time_s) FROM labels "
        "WHERE origin = 'user' AND lead_time_s IS NOT NULL").fetchone()
    return LibraryCounts(
        clips=clips, total_duration_s=duration, clips_labelled=labelled, labels=label_total,
        sources=[SourceTally(*row) for row in sources], origins=origins, beat_grids=grids,
        per_label=[LabelTally(*row) for row in per_label], per_taxonomy=[TaxonomyTally(*row) for row in per_taxonomy],
        lead_times=LeadTimes(*lead_times),
    )
