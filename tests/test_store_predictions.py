"""The predictions repository: a Prediction goes in and comes back the same (whole clip or a window,
with its probabilities); inference replaces a version's predictions, and deleting them leaves
other versions' alone."""

from __future__ import annotations

from engine.concepts import Segment
from engine.store.predictions import Prediction, delete_predictions, predictions_of, replace_predictions


def test_predictions_come_back_as_they_were_stored_and_are_replaced_per_version(workspace):
    first = [Prediction(1, "a", Segment.whole(), "kick", 0.9, {"kick": 0.9, "snare": 0.1}),
             Prediction(1, "b", Segment.seconds(0.0, 2.0), "snare", 0.6, {"kick": 0.4, "snare": 0.6}),
             Prediction(1, "b", Segment.seconds(2.0, 4.0), "kick", 0.7, None)]
    other = [Prediction(2, "a", Segment.whole(), "snare", 0.55, {"kick": 0.45, "snare": 0.55})]
    with workspace.db.transaction() as con:
        replace_predictions(con, 1, first)
        replace_predictions(con, 2, other)
    with workspace.db.transaction(read_only=True) as con:
        assert predictions_of(con, 1) == first
        assert predictions_of(con, 2) == other
        segment_keys = con.execute("SELECT segment_key FROM predictions WHERE model_id = 1 "
                                   "ORDER BY clip_id, segment_key").fetchall()
    assert [key for (key,) in segment_keys] == ["whole", "t:0.0000-2.0000", "t:2.0000-4.0000"]

    with workspace.db.transaction() as con:
        replace_predictions(con, 1, first[:1])
    with workspace.db.transaction() as con:
        assert predictions_of(con, 1) == first[:1]
        delete_predictions(con, 1)
        assert predictions_of(con, 1) == [] and predictions_of(con, 2) == other
