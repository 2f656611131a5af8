"""Predictions (`predictions`): what a model version said about a segment of a clip.

Inference over the library replaces a version's predictions; deleting a version deletes them.
A prediction is never a label: the library's browse and walk views show the active versions'
whole-clip predictions beside the labels.
"""

from __future__ import annotations

import json
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
    """Make `predictions` (each of `model_id`) the version's only ones."""
    delete_predictions(con, model_id)
    if not predictions:
        return
    con.execute(
        "INSERT INTO predictions (model_id, clip_id, segment_key, start_s, end_s, label, confidence, probabilities) "
        "SELECT unnest($model), unnest($clip), unnest($key), unnest($start::DOUBLE[]), unnest($end::DOUBLE[]), "
        "unnest($label), unnest($confidence), unnest($probabilities)",
        {"model": [p.model_id for p in predictions], "clip": [p.clip_id for p in predictions],
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
