"""Labels on segments: writing them (one bulk upsert), reading them, and checking a segment.

A segment holds one label per origin; the effective label of a segment is the user's if there
is one, else the imported one, else the model's (the `effective_labels` view).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from engine.audio.beatgrid import BeatGrid
from engine.concepts import Clip, Label, Origin, Segment, Split
from engine.errors import InputError, NotFound
from engine.taxonomy import Taxonomy

SECONDS_TOLERANCE = 1e-3


@dataclass(frozen=True)
class LabelWrite:
    clip_id: str
    taxonomy: str
    label: str
    origin: Origin
    confidence: float
    segment: Segment
    split: Split | None = None

    @property
    def conflict_key(self) -> tuple:
        return (self.clip_id, self.taxonomy, self.segment.key, self.origin)


def make_segment(clip: Clip, grid: BeatGrid | None, *, start_s: float | None = None, end_s: float | None = None,
                 start_beat: float | None = None, end_beat: float | None = None) -> Segment:
    """A checked segment of `clip`: whole (nothing given), seconds, or beats on the clip's grid.

    Raises InputError with the reason when the range is malformed, lies outside the clip, or
    names beats on a clip without a beat grid."""
    if start_beat is not None or end_beat is not None:
        if start_beat is None or end_beat is None:
            raise InputError("a beat range needs both a start beat and an end beat")
        if grid is None:
            raise InputError(f"{clip.path}: clip has no beat grid; set one with 'beats set' or 'beats detect'")
        grid.check_range(start_beat, end_beat, clip.duration_s)
        return Segment(start_s=float(grid.seconds_at(start_beat)), end_s=float(grid.seconds_at(end_beat)),
                       start_beat=float(start_beat), end_beat=float(end_beat))
    if start_s is None and end_s is None:
        return Segment.whole()
    if start_s is None or end_s is None:
        raise InputError("a time range needs both a start and an end (seconds)")
    if not start_s < end_s:
        raise InputError(f"start ({start_s:g} s) must be before end ({end_s:g} s)")
    if start_s < 0:
        raise InputError(f"start ({start_s:g} s) must not be negative")
    if end_s > clip.duration_s + SECONDS_TOLERANCE:
        raise InputError(f"end ({end_s:g} s) is past the end of the clip ({clip.duration_s:.3f} s)")
    return Segment.seconds(start_s, min(end_s, clip.duration_s))


def upsert_labels(con: duckdb.DuckDBPyConnection, writes: Sequence[LabelWrite]) -> int:
    """Write labels in one statement; a later write for the same segment and origin replaces it."""
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
    }
    names = ", ".join(columns)
    selects = ", ".join(f"unnest(${name}::{'DOUBLE' if name in _DOUBLE_COLUMNS else 'VARCHAR'}[])" for name in columns)
    updates = ", ".join(f"{name} = excluded.{name}" for name in ("label", "confidence", "start_s", "end_s",
                                                                    "start_beat", "end_beat", "split"))
    con.execute(
        f"INSERT INTO labels ({names}) SELECT {selects} "
        f"ON CONFLICT (clip_id, taxonomy, segment_key, origin) DO UPDATE SET {updates}, updated_at = now()",
        columns,
    )
    return len(unique)


_DOUBLE_COLUMNS = {"confidence", "start_s", "end_s", "start_beat", "end_beat"}

LABEL_COLUMNS = ("label_id, clip_id, taxonomy, label, origin, confidence, start_s, end_s, start_beat, end_beat, "
                 "split")


def label_from_row(row: Sequence) -> Label:
    label_id, clip_id, taxonomy, label, origin, confidence, start_s, end_s, start_beat, end_beat, split = row
    segment = Segment(start_s=start_s, end_s=end_s, start_beat=start_beat, end_beat=end_beat)
    return Label(label_id, clip_id, taxonomy, label, Origin(origin), confidence, segment,
                 Split(split) if split else None)


def query_labels(con: duckdb.DuckDBPyConnection, *, clip_id: str | None = None, taxonomy: str | None = None,
                 label: str | None = None, origin: Origin | None = None, effective: bool = True) -> list[Label]:
    table = "effective_labels" if effective else "labels"
    conditions, params = [], []
    for column, value in (("clip_id", clip_id), ("taxonomy", taxonomy), ("label", label),
                          ("origin", str(origin) if origin else None)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = con.execute(
        f"SELECT {LABEL_COLUMNS} FROM {table} {where} ORDER BY clip_id, coalesce(start_s, -1), label_id", params
    ).fetchall()
    return [label_from_row(row) for row in rows]


def delete_label(con: duckdb.DuckDBPyConnection, label_id: int) -> Label:
    row = con.execute(f"SELECT {LABEL_COLUMNS} FROM labels WHERE label_id = ?", [label_id]).fetchone()
    if row is None:
        raise NotFound(f"no label with id {label_id}")
    con.execute("DELETE FROM labels WHERE label_id = ?", [label_id])
    return label_from_row(row)


def resolve_label_name(taxonomy: Taxonomy, raw: str) -> str:
    name = taxonomy.resolve(raw)
    if name is None:
        raise InputError(
            f"label {raw!r} is not in taxonomy {taxonomy.name} (labels: {', '.join(taxonomy.names)}; "
            "aliases are accepted too)"
        )
    return name


def remember_taxonomy(con: duckdb.DuckDBPyConnection, taxonomy: Taxonomy) -> None:
    """Keep a snapshot of the taxonomy a workspace labels with, so its labels stay readable."""
    import json

    con.execute(
        "INSERT INTO taxonomies (name, definition) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
        "definition = excluded.definition, updated_at = now()",
        [taxonomy.name, json.dumps(taxonomy.to_dict())],
    )
