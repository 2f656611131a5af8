"""Browsing the library: a page is the same rows, in the same order, as that slice of the whole
list, whichever filter and sort (the query takes a faster path when only the clips table matters)."""

from __future__ import annotations

import pytest

from engine.library.browse import SORTS, browse
from engine.workspace import Workspace

FILTERS = ["", "pack3", "source:pack1", "label:kick", "unlabelled", "predicted:snare", "low", "disagrees",
           "unlabelled pack2"]


@pytest.fixture(scope="module")
def listed(tmp_path_factory) -> Workspace:
    """300 clip rows (no audio is needed to list them), two thirds labelled, all predicted by an active model."""
    workspace = Workspace.open(tmp_path_factory.mktemp("browse") / "ws")
    with workspace.db.transaction() as con:
        con.execute("""
            INSERT INTO clips (clip_id, path, source, format, duration_s, sample_rate, channels, frames,
                               size_bytes, peak, rms_db, clipped_fraction)
            SELECT sha256(i::VARCHAR), '/lib/pack' || (i % 7) || '/hit_' || lpad(i::VARCHAR, 3, '0') || '.wav',
                   'pack' || (i % 7), 'wav', (i % 13) / 10.0, 22050, 1, 100, 1000, 0.5, -20, 0
            FROM range(300) t(i)""")
        con.execute("""
            INSERT INTO labels (clip_id, taxonomy, segment_key, label, origin, confidence)
            SELECT clip_id, 'drums', 'whole', (['kick', 'snare'])[1 + (hash(clip_id) % 2)::BIGINT], 'import', 1.0
            FROM clips WHERE hash(clip_id) % 3 != 0""")
        con.execute("INSERT INTO model_versions (name, version, task, kind, artifact_dir, feature_spec, label_set, "
                    "is_active) VALUES ('drums', 1, 'drums', 'logreg', 'x', '{}', '[]', true)")
        con.execute("""
            INSERT INTO predictions (model_id, clip_id, segment_key, label, confidence)
            SELECT 1, clip_id, 'whole', (['kick', 'snare'])[1 + (hash(path) % 2)::BIGINT], (hash(path) % 100) / 100.0
            FROM clips""")
    return workspace


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("query", FILTERS)
def test_a_page_is_the_slice_of_the_whole_list(listed, query, sort):
    everything = browse(listed, query, sort=sort, limit=None)
    assert everything.total == len(everything.rows)
    for offset, limit in ((0, 25), (40, 30), (everything.total - 5, 20)):
        page = browse(listed, query, sort=sort, offset=max(offset, 0), limit=limit)
        assert page.total == everything.total
        assert page.rows == everything.rows[max(offset, 0):max(offset, 0) + limit]


def test_filters_mean_what_they_say(listed):
    assert browse(listed, limit=None).total == 300
    assert {row.source for row in browse(listed, "source:pack1", limit=None).rows} == {"pack1"}
    assert all(row.labels == "" for row in browse(listed, "unlabelled", limit=None).rows)
    disagreeing = browse(listed, "disagrees", limit=None).rows
    assert disagreeing and all(row.predicted not in row.labels.split(",") for row in disagreeing)
    chosen = [row.clip_id for row in browse(listed, limit=None).rows[:3]]
    assert [row.clip_id for row in browse(listed, clip_ids=chosen, limit=10).rows] == chosen


def test_disagrees_is_the_active_model_of_the_labels_taxonomy_disagreeing(tmp_path):
    """One rule for the library filter and the label screen's suspect walk: a drums model calling a
    DJ track "clap" does not make the track disagree with its sections label."""
    from engine.library.walk import suspect_ids

    workspace = Workspace.open(tmp_path / "ws")
    clips = {"kick": ("drums", "kick"), "snare": ("drums", "snare"), "track": ("sections", "drop"),
             "other": ("sections", "intro")}
    with workspace.db.transaction() as con:
        for name, (taxonomy, label) in clips.items():
            con.execute("INSERT INTO clips (clip_id, path, source, format, duration_s, sample_rate, channels, frames, "
                        "size_bytes, peak, rms_db, clipped_fraction) VALUES (?, ?, 'p', 'wav', 1, 22050, 1, 1, 1, 1, -1, 0)",
                        [name, f"/lib/{name}.wav"])
            con.execute("INSERT INTO labels (clip_id, taxonomy, segment_key, label, origin, confidence) "
                        "VALUES (?, ?, 'whole', ?, 'user', 1)", [name, taxonomy, label])
        for model_id, task in ((1, "drums"), (2, "sections")):
            con.execute("INSERT INTO model_versions (model_id, name, version, task, kind, artifact_dir, feature_spec, "
                        "label_set, is_active) VALUES (?, ?, 1, ?, 'logreg', 'x', '{}', '[]', true)",
                        [model_id, task, task])
        predictions = [(1, "kick", "kick"), (1, "snare", "kick"), (1, "track", "clap"), (1, "other", "clap"),
                       (2, "track", "drop"), (2, "other", "outro"), (2, "kick", "intro")]
        con.executemany("INSERT INTO predictions (model_id, clip_id, segment_key, label, confidence) "
                        "VALUES (?, ?, 'whole', ?, 0.9)", predictions)
    disagreeing = {row.clip_id for row in browse(workspace, "disagrees", limit=None).rows}
    assert disagreeing == {"snare", "other"}
    assert {row.clip_id for row in browse(workspace, "disagrees", limit=2).rows} == disagreeing
    assert suspect_ids(workspace) == disagreeing
