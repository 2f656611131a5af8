"""The engine side of the label screen: selections, saved edits with undo, walking clips,
audio previews and the player's fallback when there is no sound."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import clip_id_of, track_and_hits, write_tone
from engine.audio.playback import Player, Playing, open_player
from engine.audio.preview import Preview, decode_preview, envelope, spectrogram
from engine.concepts import Origin
from engine.errors import InputError, NotFound
from engine.library.session import LabelHistory, Selection, load_clip_state, nudge, parse_selection, selection_at
from engine.library.walk import ClipWalk, library_order, next_in_queue, suspect_ids, suspect_queue, unlabelled_ids
from engine.store.labels import query_labels
from engine.library.suspect_queue import save_queue


@pytest.fixture
def track_workspace(workspace, tmp_path):
    """A 16-second track on a 120 bpm grid (beats 0–32, 8 bars) and two unlabelled hits."""
    return track_and_hits(workspace, tmp_path / "audio")


def user_labels(workspace, clip_id: str):
    with workspace.db.transaction() as con:
        return [(label.label, label.segment.key) for label in query_labels(con, clip_id=clip_id, origin=Origin.USER)]


def test_typed_ranges_snap_to_beats_or_bars(track_workspace):
    state = load_clip_state(track_workspace, clip_id_of(track_workspace, "track.wav"))
    assert parse_selection(state, "", "") is None
    assert parse_selection(state, "4.3", "8.6", "beat") == Selection(4.0, 9.0, in_beats=True)
    assert parse_selection(state, "5", "11", "bar") == Selection(4.0, 12.0, in_beats=True)
    assert state.last_beat == 32


@pytest.mark.parametrize("start, end, snap, message", [
    ("8", "4", "beat", "start beat must be before the end beat"),
    ("abc", "4", "beat", "start beat must be a number, got 'abc'"),
    ("", "4", "beat", "give a start beat"),
    ("-1", "4", "bar", "must not be negative"),
    ("0", "40", "beat", "past the end of the clip"),
    ("5", "5.5", "bar", "snap to the same bar"),
])
def test_bad_typed_ranges_say_why(track_workspace, start, end, snap, message):
    state = load_clip_state(track_workspace, clip_id_of(track_workspace, "track.wav"))
    with pytest.raises(InputError, match=message):
        parse_selection(state, start, end, snap)


def test_a_clip_without_a_grid_takes_seconds(track_workspace):
    state = load_clip_state(track_workspace, clip_id_of(track_workspace, "kick_0_00.wav"))
    assert parse_selection(state, "0.01", "0.1") == Selection(0.01, 0.1, in_beats=False)
    with pytest.raises(InputError, match="past the end"):
        parse_selection(state, "0", "30")


def test_nudging_moves_an_edge_by_a_beat_or_a_bar_and_stays_inside(track_workspace):
    state = load_clip_state(track_workspace, clip_id_of(track_workspace, "track.wav"))
    selection = Selection(4.0, 8.0, in_beats=True)
    assert nudge(state, selection, "start", 1, "beat") == Selection(5.0, 8.0, True)
    assert nudge(state, selection, "end", 1, "bar") == Selection(4.0, 12.0, True)
    with pytest.raises(InputError, match="before the end"):
        nudge(state, selection, "start", 1, "bar")
    with pytest.raises(InputError, match="past the end"):
        nudge(state, Selection(28.0, 32.0, True), "end", 1, "beat")
    assert selection_at(state, 2.6, "bar") == Selection(4.0, 8.0, True)  # 2.6 s is beat 5.2, in bar 2


def test_edits_are_saved_at_once_and_undo_restores_what_was_there(track_workspace):
    clip_id = clip_id_of(track_workspace, "track.wav")
    history = LabelHistory(track_workspace)
    state = load_clip_state(track_workspace, clip_id)
    history.label(state, "kick", taxonomy="drums")
    history.label(state, "snare", taxonomy="drums")  # relabels the same whole-clip segment
    history.label(state, "drop", taxonomy="sections", selection=Selection(4.0, 8.0, True))
    assert sorted(user_labels(track_workspace, clip_id)) == [("drop", "b:4-8"), ("snare", "whole")]

    drop = next(label for label in load_clip_state(track_workspace, clip_id).labels if label.label == "drop")
    history.label(state, "build", taxonomy="sections", selection=Selection(4.0, 12.0, True), replacing=drop)
    assert sorted(user_labels(track_workspace, clip_id)) == [("build", "b:4-12"), ("snare", "whole")]
    history.delete(next(label for label in load_clip_state(track_workspace, clip_id).labels if label.label == "snare"))
    assert user_labels(track_workspace, clip_id) == [("build", "b:4-12")]

    assert history.undo().description.startswith("removed snare")
    assert history.undo().description.startswith("build")
    assert sorted(user_labels(track_workspace, clip_id)) == [("drop", "b:4-8"), ("snare", "whole")]
    history.undo()
    history.undo()
    assert user_labels(track_workspace, clip_id) == [("kick", "whole")]
    history.undo()
    assert user_labels(track_workspace, clip_id) == []
    with pytest.raises(NotFound, match="nothing to undo"):
        history.undo()


def test_a_label_outside_the_taxonomy_writes_nothing(track_workspace):
    clip_id = clip_id_of(track_workspace, "track.wav")
    history = LabelHistory(track_workspace)
    with pytest.raises(InputError, match="not in taxonomy"):
        history.label(load_clip_state(track_workspace, clip_id), "banjo", taxonomy="drums")
    assert user_labels(track_workspace, clip_id) == [] and not history.can_undo


def test_walking_finds_next_previous_unlabelled_and_suspect_clips(track_workspace):
    order = library_order(track_workspace)
    first, second, track = order
    walk = ClipWalk(order)
    assert walk.step(first, 1) == second and walk.step(first, -1) is None and walk.step(track, 1) is None
    history = LabelHistory(track_workspace)
    history.label(load_clip_state(track_workspace, second), "kick", taxonomy="drums")
    assert unlabelled_ids(track_workspace) == {first, track}
    assert walk.next_among(first, unlabelled_ids(track_workspace)) == track
    assert walk.next_among(track, unlabelled_ids(track_workspace)) == first  # goes round

    with track_workspace.db.transaction() as con:
        con.execute("INSERT INTO model_versions (name, version, task, kind, artifact_dir, feature_spec, label_set, "
                    "is_active) VALUES ('drums', 1, 'drums', 'logreg', 'x', '{}', '[]', true)")
        model_id = con.execute("SELECT model_id FROM model_versions").fetchone()[0]
        con.executemany("INSERT INTO predictions (model_id, clip_id, segment_key, label, confidence) "
                        "VALUES (?, ?, 'whole', ?, ?)",
                        [(model_id, first, "kick", 0.95), (model_id, second, "snare", 0.9),
                         (model_id, track, "kick", 0.4)])
    # second: the model disagrees with its label; track: the model is unsure; first: sure and unlabelled
    assert suspect_ids(track_workspace) == {second, track}
    assert suspect_queue(track_workspace) == [second, track]

    save_queue(track_workspace, [{"clip_id": track, "kind": "likely_mislabel"}, {"clip_id": first, "kind": "near_duplicate"}])
    queue = suspect_queue(track_workspace)
    assert queue == [track, first, second]  # the triage queue first, most suspicious first; then the model's doubts
    assert next_in_queue(queue, second) is None and next_in_queue(queue, track) == first
    assert next_in_queue(queue, "not-queued") == track


def test_a_preview_fills_part_by_part_and_draws_only_what_is_decoded(tmp_path):
    path = write_tone(tmp_path / "long.wav", seconds=70.0, rate=22050, channels=2, freq=1000.0)
    preview = decode_preview(path, workers=2)
    assert preview.complete and preview.rate == 22050
    lows, highs = envelope(preview, 0.0, 70.0, 140)
    assert np.allclose(highs, 0.3, atol=0.01) and np.allclose(lows, -0.3, atol=0.01)
    image = spectrogram(preview, 10.0, 12.0, 50, 24)
    loudest_band = int(np.nanargmax(image.mean(axis=1)))
    assert image.shape == (24, 50) and image.max() == pytest.approx(1.0)
    assert 12 <= loudest_band <= 17  # 1 kHz on a log axis from 40 Hz to 11 kHz sits near 0.57 of the bands

    half = Preview(10.0, 1000, parts=2)
    half._write(0, np.ones(5000, dtype=np.float32))  # the first part is in, the second is not
    lows, highs = envelope(half, 0.0, 10.0, 10)
    assert np.all(highs[:5] == 1.0) and np.all(np.isnan(highs[5:]))


def test_without_sound_the_player_says_why_and_the_playhead_still_moves(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_SOUND", "off")
    player = open_player()
    assert not player.available and player.status == "sound unavailable: turned off by WORKBENCH_SOUND"

    now = [100.0]
    silent = Player(unavailable="no output device", clock=lambda: now[0])
    silent.play(write_tone(tmp_path / "t.wav"), 0.5, 1.5, loop=True)
    now[0] += 1.25
    assert silent.position() == pytest.approx(0.75)  # looped round once
    silent.stop()
    assert silent.position() is None
    assert Playing(0.0, 1.0, False, 0.0).position(2.0) is None  # a one-shot play ends


def test_saving_while_another_thread_reads_waits_its_turn(track_workspace):
    """The TUI saves labels in one thread while a screen reads read-only in another: in one process
    DuckDB refuses the second way of opening the file, and the workspace waits instead of failing."""
    import threading

    clip_id = clip_id_of(track_workspace, "track.wav")
    history, failures = LabelHistory(track_workspace), []

    def read_many() -> None:
        for _ in range(30):
            try:
                with track_workspace.db.transaction(read_only=True) as con:
                    con.execute("SELECT count(*) FROM labels").fetchone()
            except Exception as error:  # noqa: BLE001 - the test reports whatever escapes
                failures.append(error)

    readers = [threading.Thread(target=read_many) for _ in range(2)]
    for reader in readers:
        reader.start()
    for label in ("kick", "snare", "tom", "crash", "ride") * 3:
        history.label(load_clip_state(track_workspace, clip_id), label, taxonomy="drums")
    for reader in readers:
        reader.join()
    assert failures == [] and user_labels(track_workspace, clip_id) == [("ride", "whole")]


def test_a_cancelled_decode_stops_and_says_it_is_not_complete(tmp_path):
    import threading

    stop = threading.Event()
    stop.set()
    preview = decode_preview(write_tone(tmp_path / "t.wav", seconds=3.0), cancel=stop)
    assert not preview.complete and preview.decoded_fraction == 0.0
