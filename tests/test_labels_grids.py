"""Labels on segments and beat grids: user labels win, beat ranges follow grid edits, label files."""

from __future__ import annotations

import pytest

from conftest import write_hits, write_tone
from engine.audio.beatgrid import BeatGrid
from engine.concepts import Origin, Reason
from engine.errors import InputError, NotFound
from engine.library.editing import add_label, put_label, remove_label, undo_change
from engine.library.grids import set_grid
from engine.library.importer import import_folder, import_label_file
from engine.store.grids import get_grid
from engine.store.labels import query_labels


@pytest.fixture
def track(workspace, tmp_path):
    path = write_tone(tmp_path / "tracks" / "set.wav", seconds=60.0)
    import_folder(workspace, path, workers=1)
    return path


def test_a_user_label_wins_over_an_import_label_and_survives_reimport(workspace, tmp_path):
    hit = write_hits(tmp_path / "curated" / "kick", "kick", 1)[0]
    import_folder(workspace, tmp_path / "curated", curated=True, workers=1)
    add_label(workspace, hit.name, "snare")
    import_folder(workspace, tmp_path / "curated", curated=True, workers=1)
    with workspace.db.transaction() as con:
        effective = query_labels(con)
        every = query_labels(con, effective=False)
    assert [(l.label, l.origin) for l in effective] == [("snare", Origin.USER)]
    assert sorted((l.label, str(l.origin)) for l in every) == [("kick", "import"), ("snare", "user")]


def test_a_model_label_never_hides_an_import_label(workspace, tmp_path):
    hit = write_hits(tmp_path / "curated" / "tom", "tom", 1)[0]
    import_folder(workspace, tmp_path / "curated", curated=True, workers=1)
    add_label(workspace, hit.name, "crash", origin=Origin.MODEL, confidence=0.4)
    with workspace.db.transaction() as con:
        assert [l.label for l in query_labels(con)] == ["tom"]


def test_removing_a_user_label_lets_the_imported_one_count_and_undo_brings_it_back(workspace, tmp_path):
    write_hits(tmp_path / "curated" / "kick", "kick", 1)
    import_folder(workspace, tmp_path / "curated", curated=True, workers=1)
    with workspace.db.transaction() as con:
        (imported,) = query_labels(con)

    def effective() -> list[tuple[str, Origin]]:
        with workspace.db.transaction(read_only=True) as con:
            return [(label.label, label.origin) for label in query_labels(con)]

    added = put_label(workspace, imported.clip_id, "snare")
    assert added.clip_id == imported.clip_id and added.removed == ()
    assert [(label.label, label.origin) for label in added.added] == [("snare", Origin.USER)] == effective()
    removed = remove_label(workspace, added.added[0].label_id)
    assert removed.removed == added.added and effective() == [("kick", Origin.IMPORT)]
    undo_change(workspace, removed)
    assert effective() == [("snare", Origin.USER)]


def test_beat_range_labels_keep_beats_and_move_with_the_grid(workspace, track):
    set_grid(workspace, "set.wav", BeatGrid.constant(120.0, 0.5))
    label = add_label(workspace, "set.wav", "drop", taxonomy="sections", start_beat=16, end_beat=32)
    assert (label.segment.start_s, label.segment.end_s) == pytest.approx((8.5, 16.5))
    assert label.segment.key == "b:16-32"
    _, moved = set_grid(workspace, "set.wav", BeatGrid.constant(100.0, 1.0))
    assert moved == 1
    with workspace.db.transaction() as con:
        (after,) = query_labels(con, taxonomy="sections")
    assert (after.segment.start_beat, after.segment.end_beat) == (16, 32)
    assert (after.segment.start_s, after.segment.end_s) == pytest.approx((1.0 + 16 * 0.6, 1.0 + 32 * 0.6))


def test_fractional_beats_and_bar_snapping(workspace, track):
    set_grid(workspace, "set.wav", BeatGrid.constant(120.0, 0.0, beats_per_bar=4))
    half = add_label(workspace, "set.wav", "build", taxonomy="sections", start_beat=2.5, end_beat=6.25)
    assert (half.segment.start_s, half.segment.end_s) == pytest.approx((1.25, 3.125))
    snapped = add_label(workspace, "set.wav", "intro", taxonomy="sections", start_beat=1.2, end_beat=7.1, snap="bar")
    assert (snapped.segment.start_beat, snapped.segment.end_beat) == (0, 8)


def test_bad_ranges_are_refused_with_a_reason(workspace, track):
    with pytest.raises(InputError, match="no beat grid"):
        add_label(workspace, "set.wav", "drop", taxonomy="sections", start_beat=0, end_beat=8)
    set_grid(workspace, "set.wav", BeatGrid.constant(120.0))
    with pytest.raises(InputError):
        add_label(workspace, "set.wav", "drop", taxonomy="sections", start_beat=8, end_beat=8)
    with pytest.raises(InputError, match="past the end"):
        add_label(workspace, "set.wav", "drop", taxonomy="sections", start_beat=100, end_beat=200)
    with pytest.raises(InputError, match="past the end"):
        add_label(workspace, "set.wav", "drop", taxonomy="sections", start_s=50, end_s=70)
    with pytest.raises(InputError, match="not in taxonomy"):
        add_label(workspace, "set.wav", "wobble", taxonomy="sections")
    with pytest.raises(NotFound):
        add_label(workspace, "nope.wav", "drop", taxonomy="sections")


def test_label_files_of_every_kind_label_segments(workspace, tmp_path, track):
    set_grid(workspace, "set.wav", BeatGrid.constant(120.0, 0.0))
    hits = write_hits(tmp_path / "new_pack", "kick", 2)
    manifest = tmp_path / "labels.csv"
    manifest.write_text(
        "path,label,start_s,end_s,start_beat,end_beat,source,split,confidence\n"
        f"{track},drop,,,16,32,,,\n"
        f"{track},break,40,48,,,,,0.8\n"
        f"new_pack/{hits[0].name},bd,,,,,mypack,test,\n"
        f"new_pack/{hits[1].name},cowbell_xl,,,,,,,\n"
        f"missing.wav,kick,,,,,,,\n"
        f"{track},outro,,,200,210,,,\n"
    )
    report = import_label_file(workspace, manifest, taxonomy="sections")
    assert report.labelled == 2
    assert report.clips_added == 2  # audio a manifest names is imported, whatever its labels
    drums = import_label_file(workspace, manifest, taxonomy="drums")
    assert drums.labelled == 1 and drums.clips_added == 0
    reasons = sorted(str(r.reason) for r in drums.rejections)
    assert str(Reason.MISSING_FILE) in reasons and str(Reason.UNKNOWN_LABEL) in reasons
    audacity = tmp_path / "tracks" / "set.txt"
    audacity.write_text("1.0\t2.0\tintro\n3.5\t3.5\tbuild\n")
    track_report = import_label_file(workspace, audacity, taxonomy="sections", hit_length_s=0.25)
    assert track_report.labelled == 2
    events = tmp_path / "tracks" / "set.jsonl"
    events.write_text('{"time": 1.0, "label": "kick"}\n{"time": 59.98, "label": "hh"}\n')
    hit_report = import_label_file(workspace, events, taxonomy="drums")
    assert hit_report.labelled == 2
    with workspace.db.transaction() as con:
        segments = {(l.label, l.segment.start_s, l.segment.end_s) for l in query_labels(con, taxonomy="drums")}
        pinned = con.execute("SELECT split FROM labels WHERE split IS NOT NULL").fetchall()
    assert ("kick", 1.0, 1.1) in segments
    assert ("hihat_closed", 59.98, 60.0) in segments  # the last hit is cut at the clip's end
    assert pinned == [("test",)]


def test_grid_round_trips_through_the_store(workspace, track):
    grid = BeatGrid.from_beat_times([0.5, 1.0, 1.52, 2.01, 2.5])
    set_grid(workspace, "set.wav", grid)
    with workspace.db.transaction() as con:
        clip_id = con.execute("SELECT clip_id FROM clips").fetchone()[0]
        assert get_grid(con, clip_id) == grid


def _sections(workspace) -> list[tuple[str, str, str]]:
    with workspace.db.transaction() as con:
        return sorted((l.label, l.segment.key, str(l.origin)) for l in query_labels(con, taxonomy="sections",
                                                                                     effective=False))


def test_a_new_range_replaces_what_it_covers_in_its_taxonomy_and_undo_restores_it(workspace, track):
    set_grid(workspace, "set.wav", BeatGrid.constant(120.0))
    for name, start, end in (("break", 88, 96), ("build", 96, 104), ("drop", 104, 120)):
        add_label(workspace, "set.wav", name, taxonomy="sections", start_beat=start, end_beat=end)
    add_label(workspace, "set.wav", "kick", taxonomy="drums", start_beat=90, end_beat=91)  # another taxonomy
    before = _sections(workspace)
    with workspace.db.transaction() as con:
        clip_id = query_labels(con)[0].clip_id
    change = put_label(workspace, clip_id, "outro", taxonomy="sections", start_beat=92, end_beat=116)
    assert change.description == ("outro on beats 92–116 (24.1–30.1); "
                                  "trimmed break to beats 88–92 (23.1–24.1); "
                                  "replaced build on beats 96–104 (25.1–27.1); "
                                  "trimmed drop to beats 116–120 (30.1–31.1)")
    assert _sections(workspace) == [("break", "b:88-92", "user"), ("drop", "b:116-120", "user"),
                                    ("outro", "b:92-116", "user")]
    split = put_label(workspace, clip_id, "drop", taxonomy="sections", start_s=50.0, end_s=51.0)  # seconds, inside
    assert "split outro into beats 92–100 (24.1–26.1) and beats 102–116 (26.3–30.1)" in split.description
    with workspace.db.transaction() as con:
        assert [(l.label, l.segment.key) for l in query_labels(con, taxonomy="drums")] == [("kick", "b:90-91")]
    undo_change(workspace, split)
    undo_change(workspace, change)
    assert _sections(workspace) == before


def test_a_range_trims_labels_that_count_less_never_more(workspace, track):
    set_grid(workspace, "set.wav", BeatGrid.constant(120.0))
    with workspace.db.transaction() as con:
        clip_id = con.execute("SELECT clip_id FROM clips").fetchone()[0]
    put_label(workspace, clip_id, "intro", taxonomy="sections", start_beat=0, end_beat=16, origin=Origin.IMPORT)
    put_label(workspace, clip_id, "verse", taxonomy="sections", start_beat=16, end_beat=32, origin=Origin.IMPORT)
    put_label(workspace, clip_id, "build", taxonomy="sections", start_beat=8, end_beat=16)  # the user's
    assert _sections(workspace) == [("build", "b:8-16", "user"), ("intro", "b:0-8", "import"),
                                    ("verse", "b:16-32", "import")]
    put_label(workspace, clip_id, "drop", taxonomy="sections", start_beat=16, end_beat=32)  # the same segment
    put_label(workspace, clip_id, "chorus", taxonomy="sections", start_beat=0, end_beat=24, origin=Origin.MODEL)
    assert _sections(workspace) == [("build", "b:8-16", "user"), ("chorus", "b:0-24", "model"),
                                    ("drop", "b:16-32", "user"), ("intro", "b:0-8", "import"),
                                    ("verse", "b:16-32", "import")]  # what counts more is never cut


def test_beat_positions_read_as_bar_beat():
    grid = BeatGrid.constant(120.0, beats_per_bar=4)
    assert [grid.position(b) for b in (0, 3, 4, 9, 9.5, 9.25, 31.96, -0.045)] == [
        "1.1", "1.4", "2.1", "3.2", "3.2.3", "3.2.2", "8.4.4", "1.1"]
    assert grid.describe_range(0, 32) == "beats 0–32 (1.1–9.1)"
    assert BeatGrid.constant(120.0, 0.02).end_beat(16.0) == 31.96
