"""Predictions (`predictions`): what a model version said about a segment of a clip.

Inference over the library replaces a version's predictions; deleting a version deletes them.
A prediction is never a label: the library shows the active versions' predictions beside the labels.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from engine.concepts import Segment


@dataclass(frozen=True)
class Prediction:
    model_id: int  # the model version that predicted it
    clip_id: str
    segment: Segment  # the whole clip, or the window (in seconds) of a section model
    label: str
    confidence: float  # the probability of `label`
    probabilities: dict[str, float] | None = None  # every class of the version, as stored


def _segment(start_s: float | None, end_s: float | None) -> Segment:
    return Segment.whole() if start_s is None else Segment.seconds(start_s, end_s)


def replace_predictions(con, model_id: int, predictions: list[Prediction]) -> None:
    """Make `predictions` the version's only ones (every prediction must be of `model_id`)."""
    delete_predictions(con, model_id)
    if not predictions:
        return
    con.execute(
        "INSERT INTO predictions (model_id, clip_id, segment_key, start_s, end_s, label, confidence, probabilities) "
        "SELECT $model, unnest($clip), unnest($key), unnest($start::DOUBLE[]), unnest($end::DOUBLE[]), "
        "unnest($label), unnest($confidence), unnest($probabilities)",
        {"model": model_id, "clip": [p.clip_id for p in predictions],
         "key": [p.segment.region_key for p in predictions], "start": [p.segment.start_s for p in predictions],
         "end": [p.segment.end_s for p in predictions], "label": [p.label for p in predictions],
         "confidence": [p.confidence for p in predictions],
         "probabilities": [None if p.probabilities is None else json.dumps(p.probabilities) for p in predictions]},
    )


def delete_predictions(con, model_id: int) -> None:
    con.execute("DELETE FROM predictions WHERE model_id = ?", [model_id])


def predictions_of(con, model_id: int) -> list[Prediction]:
    """A version's predictions, by clip and segment."""
    rows = con.execute("SELECT clip_id, start_s, end_s, label, confidence, probabilities FROM predictions "
                       "WHERE model_id = ? ORDER BY clip_id, segment_key", [model_id]).fetchall()
    return [Prediction(model_id, clip_id, _segment(start_s, end_s), label, confidence,
                       json.loads(probabilities) if probabilities else None)
            for clip_id, start_s, end_s, label, confidence, probabilities in rows]


def active_predictions_for_clips(con, clip_ids: Iterable[str] | None = None) -> dict[str, Prediction]:
    """Per clip (of `clip_ids`, else of the library), the active versions' whole-clip prediction;
    where several active versions predicted a clip, the most confident one."""
    where, params = "", {}
    if clip_ids is not None:
        where, params = "AND clip_id IN (SELECT unnest($clip_ids::VARCHAR[]))", {"clip_ids": list(clip_ids)}
    rows = con.execute(
        "SELECT model_id, clip_id, label, confidence, probabilities FROM predictions "
        f"WHERE segment_key = 'whole' AND model_id IN (SELECT model_id FROM model_versions WHERE is_active) {where} "
        "QUALIFY row_number() OVER (PARTITION BY clip_id ORDER BY confidence DESC) = 1", params).fetchall()
    return {clip_id: Prediction(model_id, clip_id, Segment.whole(), label, confidence,
                                json.loads(probabilities) if probabilities else None)
            for model_id, clip_id, label, confidence, probabilities in rows}


def doubted_clip_ids(con, below: float) -> set[str]:
    """Clips an active version doubts: its whole-clip prediction is less than `below` sure, or
    names another label than the clip's own effective labels in the version's task."""
    rows = con.execute(
        "SELECT p.clip_id FROM predictions p JOIN model_versions m ON m.model_id = p.model_id AND m.is_active "
        "LEFT JOIN (SELECT clip_id, taxonomy, list(DISTINCT label) AS labels FROM effective_labels "
        "           WHERE segment_key = 'whole' GROUP BY clip_id, taxonomy) l "
        "       ON l.clip_id = p.clip_id AND l.taxonomy = m.task "
        "WHERE p.segment_key = 'whole' AND (p.confidence < $low "
        "      OR (l.labels IS NOT NULL AND NOT list_contains(l.labels, p.label)))",
        {"low": below},
    ).fetchall()
    return {row[0] for row in rows}


def predictions_stamp(con) -> tuple:
    """A cheap summary that changes with any activation or inference: the active versions, how many
    predictions there are and when the newest was stored."""
    return con.execute("SELECT (SELECT list(model_id ORDER BY model_id) FROM model_versions WHERE is_active), "
                       "(SELECT count(*) FROM predictions), (SELECT max(created_at) FROM predictions)").fetchone()
