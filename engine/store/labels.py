"""The labels repository: every read and write of the `labels` table and the `effective_labels` view.

A segment holds one label per origin (user, import, model); the effective label of a segment is the
user's if there is one, else the imported one, else the model's: the `effective_labels` view of the
schema ranks them, so no write ever has to overwrite another origin's label.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from engine.concepts import Label, LabelledSegment, Origin, Segment, Split
from engine.errors import NotFound
from engine.taxonomy import Taxonomy


@dataclass(frozen=True)
class LabelWrite:
    """A label to store on a segment; it replaces the label of the same segment, taxonomy and origin."""

    clip_id: str
    taxonomy: str
    label: str
    origin: Origin
    confidence: float
    segment: Segment
    split: Split | None = None
    lead_time_s: float | None = None  # seconds a person took to make it (clip opened → saved), when timed
    techniques: tuple[str, ...] = ()

    @classmethod
    def of(cls, label: Label) -> LabelWrite:
        """The write that stores `label` again (as undo does)."""
        return cls(label.clip_id, label.taxonomy, label.label, label.origin, label.confidence, label.segment,
                   label.split, label.lead_time_s, label.techniques)

    @property
    def conflict_key(self) -> tuple:
        return (self.clip_id, self.taxonomy, self.segment.key, self.origin)


_COLUMN_TYPES = {**{name: "DOUBLE" for name in ("confidence", "start_s", "end_s", "start_beat", "end_beat",
                                                "lead_time_s")}, "techniques": "VARCHAR[]"}
_LABEL_COLUMNS = ("label_id, clip_id, taxonomy, label, origin, confidence, start_s, end_s, start_beat, end_beat, "
                  "split, lead_time_s, techniques")


def _label_from_row(row: Sequence) -> Label:
    (label_id, clip_id, taxonomy, label, origin, confidence, start_s, end_s, start_beat, end_beat, split,
     lead_time_s, techniques) = row
    segment = Segment(start_s=start_s, end_s=end_s, start_beat=start_beat, end_beat=end_beat)
    return Label(label_id, clip_id, taxonomy, label, Origin(origin), confidence, segment,
                 Split(split) if split else None, lead_time_s, tuple(techniques or ()))


def upsert_labels(con: duckdb.DuckDBPyConnection, writes: Sequence[LabelWrite]) -> int:
    """Write labels in one statement; a later write for the same segment and origin replaces it.
    Returns how many segments were written."""
    unique = list({write.conflict_key: write for write in writes}.values())
    if not unique:
        return 0
    columns = {
        "clip_id": [w.clip_id for w in unique], "taxonomy": [w.taxonomy for w in unique],
        "segment_key": [w.segment.key for w in unique], "label": [w.label for w in unique],
        "origin": [str(w.origin) for w in unique], "confidence": [float(w.confidence) for w in unique],
        "start_s": [w.segment.start_s for w in unique], "end_s": [w.segment.end_s for w in unique],
        "start_beat": [w.segment.start_beat for w in unique], "end_beat": [w.segment.end_beat for w in unique],
        "split": [str(w.split) if w.split else None for w in unique],
        "lead_time_s": [w.lead_time_s for w in unique],
        "techniques": [list(w.techniques) or None for w in unique],
    }
    names = ", ".join(columns)
    selects = ", ".join(f"unnest(${name}::{_COLUMN_TYPES.get(name, 'VARCHAR')}[])" for name in columns)
    updates = ", ".join(f"{name} = excluded.{name}" for name in ("label", "confidence", "start_s", "end_s",
                                                                    "start_beat", "end_beat", "split",
                                                                    "lead_time_s", "techniques"))
    con.execute(
        f"INSERT INTO labels ({names}) SELECT {selects} "
        f"ON CONFLICT (clip_id, taxonomy, segment_key, origin) DO UPDATE SET {updates}, updated_at = now()",
        columns,
    )
    return len(unique)


def query_labels(con: duckdb.DuckDBPyConnection, *, clip_id: str | None = None, taxonomy: str | None = None,
                 label: str | None = None, origin: Origin | None = None, effective: bool = True) -> list[Label]:
    """Labels by clip, then start; only the effective one per segment unless `effective` is False."""
    table = "effective_labels" if effective else "labels"
    conditions, params = [], []
    for column, value in (("clip_id", clip_id), ("taxonomy", taxonomy), ("label", label),
                          ("origin", str(origin) if origin else None)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = con.execute(
        f"SELECT {_LABEL_COLUMNS} FROM {table} {where} ORDER BY clip_id, coalesce(start_s, -1), label_id", params
    ).fetchall()
    return [_label_from_row(row) for row in rows]


def labels_at(con: duckdb.DuckDBPyConnection, write: LabelWrite) -> list[Label]:
    """The stored label (none or one) that `write` would replace: same clip, taxonomy, segment and origin."""
    rows = con.execute(
        f"SELECT {_LABEL_COLUMNS} FROM labels WHERE clip_id = ? AND taxonomy = ? AND segment_key = ? AND origin = ?",
        [write.clip_id, write.taxonomy, write.segment.key, str(write.origin)],
    ).fetchall()
    return [_label_from_row(row) for row in rows]


def label_by_id(con: duckdb.DuckDBPyConnection, label_id: int) -> Label:
    """One label by id; NotFound when there is none."""
    row = con.execute(f"SELECT {_LABEL_COLUMNS} FROM labels WHERE label_id = ?", [label_id]).fetchone()
    if row is None:
        raise NotFound(f"no label with id {label_id}")
    return _label_from_row(row)


def technique_counts(con: duckdb.DuckDBPyConnection, taxonomy: str) -> dict[str, dict[str, int]]:
    """How many effective labels of `taxonomy` carry each technique, by technique, then label."""
    rows = con.execute(
        "SELECT technique, label, count(*) FROM (SELECT label, unnest(techniques) AS technique FROM effective_labels "
        "WHERE taxonomy = ?) GROUP BY ALL ORDER BY technique, label", [taxonomy]).fetchall()
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for technique, label, count in rows:
        counts[technique][label] = count
    return dict(counts)


def delete_label(con: duckdb.DuckDBPyConnection, label_id: int) -> Label:
    """Delete one label by id and return it; NotFound when there is none."""
    row = con.execute(f"SELECT {_LABEL_COLUMNS} FROM labels WHERE label_id = ?", [label_id]).fetchone()
    if row is None:
        raise NotFound(f"no label with id {label_id}")
    con.execute("DELETE FROM labels WHERE label_id = ?", [label_id])
    return _label_from_row(row)


def delete_labels_at(con: duckdb.DuckDBPyConnection, labels: Sequence[Label]) -> None:
    """Delete whatever is stored where each label was (same clip, taxonomy, segment and origin)."""
    for label in labels:
        con.execute("DELETE FROM labels WHERE clip_id = ? AND taxonomy = ? AND segment_key = ? AND origin = ?",
                    [label.clip_id, label.taxonomy, label.segment.key, str(label.origin)])


def remember_taxonomy(con: duckdb.DuckDBPyConnection, taxonomy: Taxonomy) -> None:
    """Keep a snapshot of the taxonomy a workspace labels with, so its labels stay readable."""
    con.execute(
        "INSERT INTO taxonomies (name, definition) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
        "definition = excluded.definition, updated_at = now()",
        [taxonomy.name, json.dumps(taxonomy.to_dict())],
    )


def labelled_segments(con: duckdb.DuckDBPyConnection, taxonomy: str | None = None, *,
                      min_confidence: float = 0.0) -> list[LabelledSegment]:
    """The effective labels of a taxonomy (every taxonomy when None) with at least `min_confidence`,
    leaving out a model's suggestions nobody has decided yet (`suggest`), each with its clip's file
    and source, and whether it answers a suggestion (a person's label where one was accepted or
    corrected): by clip path, then start (a whole clip first)."""
    rows = con.execute(
        "SELECT c.clip_id, c.path, c.size_bytes, c.source, l.start_s, l.end_s, l.start_beat, l.end_beat, l.label, "
        "l.split, l.lead_time_s, l.origin <> 'model' AND EXISTS (SELECT 1 FROM suggestions s "
        "WHERE s.outcome IN ('accepted', 'corrected') AND s.clip_id = l.clip_id AND s.taxonomy = l.taxonomy "
        "AND s.segment_key = l.segment_key) FROM effective_labels l JOIN clips c USING (clip_id) "
        "WHERE ($taxonomy IS NULL OR l.taxonomy = $taxonomy) AND l.confidence >= $min_confidence "
        "AND NOT (l.origin = 'model' AND EXISTS (SELECT 1 FROM suggestions s WHERE s.outcome IS NULL "
        "AND s.clip_id = l.clip_id AND s.taxonomy = l.taxonomy AND s.segment_key = l.segment_key)) "
        "ORDER BY c.path, l.start_s NULLS FIRST",
        {"taxonomy": taxonomy, "min_confidence": min_confidence},
    ).fetchall()
    return [LabelledSegment(clip_id, path, size, source,
                            Segment(start_s=start_s, end_s=end_s, start_beat=start_beat, end_beat=end_beat),
                            label, Split(split) if split else None, lead_time_s, bool(asked))
            for clip_id, path, size, source, start_s, end_s, start_beat, end_beat, label, split, lead_time_s, asked
            in rows]


def labelled_clip_paths(con: duckdb.DuckDBPyConnection, taxonomy: str) -> dict[str, list[str]]:
    """Every path the bytes of each clip labelled in `taxonomy` were seen at, by clip."""
    rows = con.execute(
        "SELECT f.clip_id, f.path FROM clip_files f WHERE f.clip_id IN "
        "(SELECT DISTINCT clip_id FROM effective_labels WHERE taxonomy = ?) ORDER BY f.path", [taxonomy]).fetchall()
    paths: dict[str, list[str]] = defaultdict(list)
    for clip_id, path in rows:
        paths[clip_id].append(path)
    return dict(paths)


def labelled_clip_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The clips with at least one label, of any taxonomy and origin."""
    return {row[0] for row in con.execute("SELECT DISTINCT clip_id FROM labels").fetchall()}


def clip_ids_labelled_in(con: duckdb.DuckDBPyConnection, taxonomy: str) -> set[str]:
    """Clips with an effective label (any origin) of `taxonomy`."""
    rows = con.execute("SELECT DISTINCT clip_id FROM effective_labels WHERE taxonomy = ?", [taxonomy]).fetchall()
    return {row[0] for row in rows}
