"""Suggestions (`suggestions`): a model's label on an unlabelled segment for a person to decide on.

A suggestion is pending (outcome NULL) until a person accepts it, rejects it or corrects it to
another label; the outcome and when it was decided stay, so `stats` can say how often each class
was accepted. The suggested label itself is stored in `labels` with origin `model` beside this row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from engine.concepts import Segment

OUTCOMES = ("accepted", "rejected", "corrected")


@dataclass(frozen=True)
class NewSuggestion:
    clip_id: str
    taxonomy: str
    segment: Segment
    label: str
    confidence: float
    model_id: int
    model_ref: str
    rank: int
    score: float


@dataclass(frozen=True)
class Suggestion:
    suggestion_id: int
    clip_id: str
    path: str
    taxonomy: str
    segment: Segment
    label: str
    confidence: float
    model_id: int
    model_ref: str
    rank: int
    score: float
    outcome: str | None
    corrected_to: str | None
    created_at: datetime
    decided_at: datetime | None

    def to_dict(self) -> dict:
        return {"suggestion_id": self.suggestion_id, "clip_id": self.clip_id, "path": self.path,
                "taxonomy": self.taxonomy, "segment": self.segment.describe(), "label": self.label,
                "confidence": round(self.confidence, 6), "model": self.model_ref, "rank": self.rank,
                "score": round(self.score, 6), "outcome": self.outcome, "corrected_to": self.corrected_to,
                "decided_at": self.decided_at.isoformat() if self.decided_at else None}


@dataclass(frozen=True)
class OutcomeCount:
    taxonomy: str
    label: str  # the suggested label
    accepted: int
    rejected: int
    corrected: int
    pending: int


_COLUMNS = ("s.suggestion_id, s.clip_id, c.path, s.taxonomy, s.start_s, s.end_s, s.label, s.confidence, s.model_id, "
            "s.model_ref, s.rank, s.score, s.outcome, s.corrected_to, s.created_at, s.decided_at")


def _from_row(row: Sequence) -> Suggestion:
    (suggestion_id, clip_id, path, taxonomy, start_s, end_s, label, confidence, model_id, model_ref, rank, score,
     outcome, corrected_to, created_at, decided_at) = row
    segment = Segment.whole() if start_s is None else Segment.seconds(start_s, end_s)
    return Suggestion(suggestion_id, clip_id, path, taxonomy, segment, label, confidence, model_id, model_ref, rank,
                      score, outcome, corrected_to, created_at, decided_at)


def add_suggestions(con: duckdb.DuckDBPyConnection, suggestions: Sequence[NewSuggestion]) -> None:
    for s in suggestions:
        con.execute(
            "INSERT INTO suggestions (clip_id, taxonomy, segment_key, start_s, end_s, label, confidence, model_id, "
            "model_ref, rank, score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [s.clip_id, s.taxonomy, s.segment.key, s.segment.start_s, s.segment.end_s, s.label, float(s.confidence),
             s.model_id, s.model_ref, s.rank, float(s.score)])


def query_suggestions(con: duckdb.DuckDBPyConnection, *, pending: bool | None = True, taxonomy: str | None = None,
                      clip_id: str | None = None) -> list[Suggestion]:
    """Suggestions of clips in the library (pending only, decided only, or all when None), oldest
    batch first, then by rank."""
    conditions, params = ["s.clip_id NOT IN (SELECT clip_id FROM retired_clips)"], []
    if pending is not None:
        conditions.append("s.outcome IS NULL" if pending else "s.outcome IS NOT NULL")
    for column, value in (("s.taxonomy", taxonomy), ("s.clip_id", clip_id)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    rows = con.execute(f"SELECT {_COLUMNS} FROM suggestions s JOIN clips c USING (clip_id) "
                       f"WHERE {' AND '.join(conditions)} ORDER BY s.created_at, s.rank, s.suggestion_id",
                       params).fetchall()
    return [_from_row(row) for row in rows]


def get_suggestion(con: duckdb.DuckDBPyConnection, suggestion_id: int) -> Suggestion | None:
    row = con.execute(f"SELECT {_COLUMNS} FROM suggestions s JOIN clips c USING (clip_id) "
                      "WHERE s.suggestion_id = ?", [suggestion_id]).fetchone()
    return _from_row(row) if row else None


def decide_suggestion(con: duckdb.DuckDBPyConnection, suggestion_id: int, outcome: str | None,
                      corrected_to: str | None = None) -> None:
    """Record a person's outcome (one of OUTCOMES) now; None makes it pending again (an undo)."""
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    con.execute("UPDATE suggestions SET outcome = ?, corrected_to = ?, "
                "decided_at = CASE WHEN ? IS NULL THEN NULL ELSE now() END WHERE suggestion_id = ?",
                [outcome, corrected_to, outcome, suggestion_id])


def rejected_clip_ids(con: duckdb.DuckDBPyConnection, model_id: int, taxonomy: str) -> set[str]:
    """Clips on which a person rejected this version's suggestion: it is not suggested there again."""
    rows = con.execute("SELECT clip_id FROM suggestions WHERE model_id = ? AND taxonomy = ? AND outcome = 'rejected'",
                       [model_id, taxonomy]).fetchall()
    return {row[0] for row in rows}


def outcome_counts(con: duckdb.DuckDBPyConnection) -> list[OutcomeCount]:
    """Per taxonomy and suggested label: how many were accepted, rejected, corrected, and are pending."""
    rows = con.execute(
        "SELECT taxonomy, label, count(*) FILTER (WHERE outcome = 'accepted'), "
        "count(*) FILTER (WHERE outcome = 'rejected'), count(*) FILTER (WHERE outcome = 'corrected'), "
        "count(*) FILTER (WHERE outcome IS NULL) FROM suggestions GROUP BY taxonomy, label ORDER BY taxonomy, label"
    ).fetchall()
    return [OutcomeCount(*row) for row in rows]
