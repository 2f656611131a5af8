"""The audition & label screen, driven with the pilot as a person would; each test checks the
workspace afterwards. Sound is off in every test (WORKBENCH_SOUND=off, or a recording player)."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Input, Label

from conftest import clip_id_of, track_and_hits
from engine.audio.beatgrid import BeatGrid
from engine.audio.playback import Player
from engine.concepts import Origin
from engine.library.grids import set_grid
from engine.library.session import LabelHistory, load_clip_state
from engine.store.labels import query_labels
from engine.workspace import Workspace
from test_tui import settle, shown_text
from tui import loaders
from tui.app import make_app
from tui.screens.help import HelpScreen
from tui.screens.label import LabelScreen
from tui.widgets.cliptable import ClipTable
from tui.widgets.segments import SegmentTable
from tui.widgets.spectrogram import Spectrogram
from tui.widgets.waveform import Waveform
from tui_pilot import wait_for


@pytest.fixture(autouse=True)
def no_sound(monkeypatch):
    monkeypatch.setenv("WORKBENCH_SOUND", "off")


@pytest.fixture
def label_workspace(tmp_path) -> Workspace:
    """Two kick hits and a 16-second track on a 120 bpm grid (beats 0–32)."""
    return track_and_hits(Workspace.open(tmp_path / "ws"), tmp_path / "audio")


def user_labels(workspace, name: str) -> list[tuple[str, str]]:
    with workspace.db.transaction() as con:
        labels = query_labels(con, clip_id=clip_id_of(workspace, name), origin=Origin.USER)
    return sorted((label.label, label.segment.key) for label in labels)


async def open_in_label_screen(app, pilot, name: str) -> LabelScreen:
    await pilot.press("2")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, LabelScreen)
    screen.open_clip(clip_id_of(app.workspace, name))
    await settle(app, pilot)
    await settle(app, pilot)  # the preview's last redraw
    return screen


async def type_range(pilot, start: str, end: str) -> None:
    await pilot.press("slash")
    await pilot.press(*start, "enter", *end, "enter")


def text_of(screen, selector: str) -> str:
    return " ".join(shown_text(screen.query_one(selector, Label)).split())


async def test_a_class_key_labels_the_whole_clip_and_the_library_shows_it(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "kick_0_00.wav")
        assert screen.keys["k"] == "kick" and screen.keys["s"] == "snare"
        await pilot.press("k")
        await settle(app, pilot)
        assert user_labels(label_workspace, "kick_0_00.wav") == [("kick", "whole")]
        assert "saved: kick on whole clip" in text_of(screen, "#label-status")
        assert screen.query_one(SegmentTable).row_count == 1

        await pilot.press("1")
        await settle(app, pilot)
        table = app.screen.query_one(ClipTable)
        assert {row.name: row.labels for row in table.rows}["kick_0_00.wav"] == "kick"


async def test_a_beat_range_typed_into_the_inputs_is_labelled_snapped(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await pilot.press("t")  # drums → sections
        assert screen.taxonomy_name == "sections" and screen.keys["d"] == "drop"
        await type_range(pilot, "4.2", "8")
        assert screen.query_one("#label-start", Input).value == "4"  # snapped to the beat
        assert "selection: beats 4–8" in text_of(screen, "#label-range-message")
        await pilot.press("d")
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == [("drop", "b:4-8")]


async def test_a_bad_range_says_why_next_to_the_inputs_and_writes_nothing(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await type_range(pilot, "8", "4")
        message = screen.query_one("#label-range-message", Label)
        assert "start beat must be before the end beat" in text_of(screen, "#label-range-message")
        assert message.has_class("error")
        await pilot.press("k")  # enter left the field, the bad range still typed
        await settle(app, pilot)
        assert "nothing saved" in text_of(screen, "#label-status")
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"0", "tab", "ctrl+a", "ctrl+k", *"99", "enter")
        assert "past the end of the clip" in text_of(screen, "#label-range-message")
        await pilot.press("k")
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == []


async def test_nudging_moves_the_edges_by_beats_then_bars(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await type_range(pilot, "4", "8")
        await pilot.press("right_square_bracket", "right_curly_bracket")
        start, end = screen.query_one("#label-start", Input), screen.query_one("#label-end", Input)
        assert (start.value, end.value) == ("5", "9")
        await pilot.press("g", "right_curly_bracket", "left_square_bracket")  # bars now: to the next/previous bar line
        assert (start.value, end.value) == ("4", "12")
        await pilot.press("left_curly_bracket", "left_curly_bracket")  # 12 → 8 → 4: onto the start, refused
        assert (start.value, end.value) == ("4", "8")
        assert "before the end beat" in text_of(screen, "#label-range-message")
        await pilot.press("t", "b")
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == [("build", "b:4-8")]


async def test_delete_a_segment_then_undo_brings_it_back(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await pilot.press("k")
        await settle(app, pilot)
        await type_range(pilot, "0", "4")
        await pilot.press("s")
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == [("kick", "whole"), ("snare", "b:0-4")]
        table = screen.query_one(SegmentTable)
        table.focus()
        await pilot.press("down", "delete")  # rows: whole clip first, then beats 0–4
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == [("kick", "whole")]
        await pilot.press("u")
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == [("kick", "whole"), ("snare", "b:0-4")]
        await pilot.press("ctrl+z", "u")
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == []
        await pilot.press("u")
        assert "nothing to undo" in text_of(screen, "#label-status")


async def test_enter_on_a_segment_edits_it_in_place(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await type_range(pilot, "0", "4")
        await pilot.press("s")
        await settle(app, pilot)
        screen.query_one(SegmentTable).focus()
        await pilot.press("enter")  # pick it: its range is the selection, the next class key replaces it
        assert screen.editing is not None and screen.query_one("#label-end", Input).value == "4"
        await pilot.press("right_curly_bracket", "c")
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == [("crash", "b:0-5")]


async def test_next_previous_and_next_unlabelled(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "kick_0_00.wav")
        await pilot.press("k", "n")
        await settle(app, pilot)
        assert screen.state.clip.path.endswith("kick_0_01.wav")
        await pilot.press("k", "p")
        await settle(app, pilot)
        assert screen.state.clip.path.endswith("kick_0_00.wav")
        await pilot.press("N")
        await settle(app, pilot)
        assert screen.state.clip.path.endswith("track.wav")  # the only clip left without a label
        await pilot.press("n")
        assert "last clip" in text_of(screen, "#label-status")


async def test_a_save_that_finishes_after_next_stays_on_its_clip_and_the_screen_on_the_next(label_workspace,
                                                                                           monkeypatch):
    saving, release = threading.Event(), threading.Event()
    save = LabelHistory.label

    def slow_save(history, *args, **kwargs):
        saving.set()
        assert release.wait(timeout=60), "the test never let the save finish"
        return save(history, *args, **kwargs)

    monkeypatch.setattr(LabelHistory, "label", slow_save)
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "kick_0_00.wav")
        await pilot.press("k")
        await wait_for(pilot, saving.is_set, "the save to start")
        await pilot.press("n")
        await wait_for(pilot, lambda: screen.state.clip.path.endswith("kick_0_01.wav"), "the next clip")
        release.set()
        await settle(app, pilot)
        assert "saved: kick on whole clip" in text_of(screen, "#label-status")
        assert screen.clip_id == clip_id_of(label_workspace, "kick_0_01.wav")
        assert screen.state.clip.path.endswith("kick_0_01.wav") and screen.state.labels == []
        assert user_labels(label_workspace, "kick_0_00.wav") == [("kick", "whole")]
        assert user_labels(label_workspace, "kick_0_01.wav") == []
        await pilot.press("u")  # undo goes back to the clip it changes
        await settle(app, pilot)
        assert screen.state.clip.path.endswith("kick_0_00.wav")
        assert user_labels(label_workspace, "kick_0_00.wav") == []


async def test_opening_another_clip_cancels_the_decode_of_the_one_before(label_workspace, monkeypatch):
    decoding, cancelled = threading.Event(), []
    decode = loaders.decode_preview

    def slow_decode(path, *, cancel, on_ready):
        def ready(preview):
            on_ready(preview)
            if str(path).endswith("track.wav"):  # a long decode, until the next clip cancels it
                decoding.set()
                cancelled.append(cancel.wait(timeout=60))
        return decode(path, cancel=cancel, on_ready=ready)

    monkeypatch.setattr(loaders, "decode_preview", slow_decode)
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "kick_0_00.wav")
        screen.open_clip(clip_id_of(label_workspace, "track.wav"))
        await wait_for(pilot, decoding.is_set, "the track's decode to start")
        screen.open_clip(clip_id_of(label_workspace, "kick_0_01.wav"))
        await settle(app, pilot)
        assert cancelled == [True]
        assert screen.state.clip.path.endswith("kick_0_01.wav")
        assert screen.preview.complete and screen.preview.duration_s == pytest.approx(screen.state.clip.duration_s)


async def test_enter_in_the_library_opens_the_clip_and_next_walks_the_filtered_list(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"kick_0_01", "enter")  # filter down to one kick and back to the table
        await pilot.pause(0.3)
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, LabelScreen) and screen.state.clip.path.endswith("kick_0_01.wav")
        assert "1/1 of 'kick_0_01'" in text_of(screen, "#label-info")
        await pilot.press("n")
        assert "last clip" in text_of(screen, "#label-status")


async def test_without_a_device_it_says_sound_unavailable_and_the_playhead_still_moves(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        assert text_of(screen, "#label-sound") == "♪ silent"
        assert len(app._notifications) == 0  # turned off on purpose: nothing to tell
        await pilot.press("space")
        await pilot.pause(0.4)
        assert screen.playhead_s > 0.1
        assert "playing" in text_of(screen, "#label-status")
        await pilot.press("space")
        stopped_at = screen.playhead_s
        await pilot.pause(0.2)
        assert screen.playhead_s == stopped_at and "stopped" in text_of(screen, "#label-status")
        await pilot.press("home", "greater_than_sign", "full_stop")  # a bar and a beat: beat 5 = 2.5 s
        assert screen.playhead_s == pytest.approx(2.5)


async def test_l_loops_the_selection(label_workspace, monkeypatch):
    played = []

    class RecordingPlayer(Player):
        def play(self, path, start_s, end_s, *, loop=False):
            played.append((start_s, end_s, loop))
            return super().play(path, start_s, end_s, loop=loop)

    monkeypatch.setattr("tui.screens.label.open_player", lambda: RecordingPlayer(unavailable="recording in a test"))
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await type_range(pilot, "8", "16")
        await pilot.press("l")
        await settle(app, pilot)
        assert played == [(4.0, 8.0, True)]
        await pilot.pause(0.3)
        assert 4.0 <= screen.playhead_s < 8.0


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_every_part_is_on_screen(label_workspace, size):
    app = make_app(label_workspace.root)
    async with app.run_test(size=size) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        for selector in ("#label-info", "#label-ruler", "#label-lane", "#label-start", "#label-end",
                         "#label-range-message", "#label-segments", "#label-legend", "#label-status"):
            widget = screen.query_one(selector)
            assert widget.region.height >= 1 and widget.region.bottom <= size[1] - 1, selector
        waveform, spectro = screen.query_one(Waveform), screen.query_one(Spectrogram)
        assert waveform.region.height >= 3 and spectro.region.height >= 2
        assert waveform.envelope.highs.size == 2 * waveform.size.width  # drawn at the terminal's resolution
        await pilot.press("plus", "plus")
        await settle(app, pilot)
        assert screen.span[1] - screen.span[0] == pytest.approx(4.0)


async def test_help_lists_the_class_keys_and_the_label_keys(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_in_label_screen(app, pilot, "kick_0_00.wav")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-keys")
        rows = {table.get_row_at(n)[0]: table.get_row_at(n)[1] for n in range(table.row_count)}
        assert rows["k"].startswith("label kick") and rows["u"] == "Undo" and rows["["] == "Start edge earlier"


# -- issue 11: the label screen as a new user meets it ------------------------------------------------------
async def test_the_clip_line_names_the_clip_without_sound_and_next_changes_it(label_workspace, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SOUND", "on")  # sound wanted, but over SSH there is no device
    monkeypatch.setattr("tui.screens.label.open_player", lambda: Player(unavailable="no output device"))
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "kick_0_00.wav")
        info = screen.query_one("#label-info", Label)
        assert text_of(screen, "#label-info").startswith("kick_0_00.wav · 1/3 · 0:00.")
        assert info.region.width >= len(text_of(screen, "#label-info"))  # not cut at 80 columns
        await pilot.press("n")
        await settle(app, pilot)
        assert text_of(screen, "#label-info").startswith("kick_0_01.wav · 2/3")
        await pilot.press("n")
        await settle(app, pilot)
        line = text_of(screen, "#label-info")
        assert line == "track.wav · 3/3 · 0:16.0 · 120.0 bpm 4/4, beats 0–32 (1.1–9.1)"
        assert info.region.width >= len(line) and text_of(screen, "#label-sound") == "♪ silent"
        assert [note.message for note in app._notifications] == [  # once, not per clip
            "sound unavailable: no output device; the playhead moves all the same"]


async def test_delete_removes_only_a_picked_segment(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await pilot.press("k")
        await settle(app, pilot)
        assert isinstance(app.focused, Waveform)
        for key in ("x", "backspace", "delete"):  # nothing picked: nothing goes
            await pilot.press(key)
            await settle(app, pilot)
            assert user_labels(label_workspace, "track.wav") == [("kick", "whole")]
            assert "pick a segment first" in text_of(screen, "#label-status")
        await pilot.press("e", "x")  # e picks the segment under the list's cursor; x deletes it
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == []
        assert "deleted: removed kick on whole clip" in text_of(screen, "#label-status")


async def test_a_range_reaches_the_end_of_a_clip_whose_last_beat_ends_early(label_workspace):
    set_grid(label_workspace, "track.wav", BeatGrid.constant(120.0, 0.02))  # beat 32 is 0.02 s past the end
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await pilot.press("t")  # sections
        await type_range(pilot, "28", "32")  # within a beat past the end: the end of the clip
        end = screen.query_one("#label-end", Input)
        assert end.value == "31.96" and "to the clip's end" in text_of(screen, "#label-range-message")
        await pilot.press("o")
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == [("outro", "b:28-31.96")]
        await pilot.press("slash", *"20", "enter", "enter")  # an empty end field: to the end
        assert (screen.query_one("#label-start", Input).value, end.value) == ("20", "31.96")
        await pilot.press("b")
        await settle(app, pilot)
        await type_range(pilot, "8", "end")
        await pilot.press("i")
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == [("intro", "b:8-31.96")]  # it covers the others


async def test_a_new_range_replaces_what_it_covers_and_undo_restores_it(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await pilot.press("t")
        for start, end, key in (("0", "8", "r"), ("8", "16", "i"), ("16", "24", "d")):
            await type_range(pilot, start, end)
            await pilot.press(key)
            await settle(app, pilot)
        before = [("break", "b:0-8"), ("drop", "b:16-24"), ("intro", "b:8-16")]
        assert user_labels(label_workspace, "track.wav") == before
        await type_range(pilot, "4", "20")
        await pilot.press("o")
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == [("break", "b:0-4"), ("drop", "b:20-24"),
                                                             ("outro", "b:4-20")]
        status = text_of(screen, "#label-status")
        assert "saved: outro on beats 4–20 (2.1–6.1)" in status
        assert "trimmed break to beats 0–4" in status and "replaced intro" in status
        assert [note.message for note in app._notifications] == [
            "trimmed break to beats 0–4 (1.1–2.1)\nreplaced intro on beats 8–16 (3.1–5.1)\n"
            "trimmed drop to beats 20–24 (6.1–7.1)"]
        assert screen.query_one(SegmentTable).row_count == 3
        await pilot.press("u")
        await settle(app, pilot)
        assert user_labels(label_workspace, "track.wav") == before


async def test_bar_snap_nudges_to_bar_lines_and_the_fields_show_the_selection(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        start, end = screen.query_one("#label-start", Input), screen.query_one("#label-end", Input)
        await type_range(pilot, "13", "19")
        await pilot.press("g", "left_square_bracket")  # beat 13 → the previous bar line, 12 (not 13 − 4 → 8)
        assert (start.value, end.value) == ("12", "19")
        await pilot.press("right_curly_bracket")  # 19 → the next bar line, 20
        assert (start.value, end.value) == ("12", "20")
        await pilot.press("left_square_bracket", "left_square_bracket")  # 12 → 8 → 4
        assert (start.value, end.value) == ("4", "20")
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"1", "tab", "ctrl+a", "ctrl+k", *"6")
        assert screen.range_editor.selection.start == 0 and screen.range_editor.selection.end == 8
        await pilot.press("escape")  # leaving the field: it shows what is selected, snapped to bars
        assert (start.value, end.value) == ("0", "8")
        assert "selection: beats 0–8 (1.1–3.1)" in text_of(screen, "#label-range-message")


async def test_positions_read_as_bar_beat_beside_the_beats(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        assert "▼ 0:00.0 · 1.1 (beat 0.0)" in text_of(screen, "#label-status")
        await pilot.press("greater_than_sign", "full_stop", "full_stop")  # a bar and two beats: beat 6
        assert "▼ 0:03.0 · 2.3 (beat 6.0)" in text_of(screen, "#label-status")
        await type_range(pilot, "9.5", "16")
        await pilot.press("t", "d")
        await settle(app, pilot)
        table = screen.query_one(SegmentTable)
        assert str(table.get_row_at(0)[1]) == "beats 10–16 (3.3–5.1)"
        assert "saved: drop on beats 10–16 (3.3–5.1)" in text_of(screen, "#label-status")


async def test_after_a_refused_range_a_class_key_labels_nothing_and_types_nothing(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await pilot.press("t")
        await type_range(pilot, "8", "320")
        assert "past the end of the clip" in text_of(screen, "#label-range-message")
        assert isinstance(app.focused, Waveform)  # enter on a refused range leaves the field
        await pilot.press("o")
        await settle(app, pilot)
        assert screen.query_one("#label-end", Input).value == "320"
        assert "nothing saved" in text_of(screen, "#label-status")
        assert user_labels(label_workspace, "track.wav") == []


async def test_each_clip_opens_whole(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await pilot.press("plus", "plus", "plus")
        await settle(app, pilot)
        assert screen.span[1] - screen.span[0] == pytest.approx(2.0)
        await pilot.press("p")
        await settle(app, pilot)
        assert screen.state.clip.path.endswith("kick_0_01.wav")
        assert screen.span == (0.0, screen.state.clip.duration_s)
        await pilot.press("n", "plus", "plus")
        await settle(app, pilot)
        assert screen.state.clip.path.endswith("track.wav") and screen.span[1] - screen.span[0] == pytest.approx(4.0)
        kick = clip_id_of(label_workspace, "kick_0_00.wav")
        screen.open_clip(kick)  # as Enter in the library does; coming back, the screen reads its clip again,
        screen.state_reloaded(load_clip_state(label_workspace, kick))  # and that read may land first
        await settle(app, pilot)
        assert screen.state.clip.path.endswith("kick_0_00.wav")
        assert screen.span == (0.0, screen.state.clip.duration_s)


async def test_help_scrolls_to_every_row_at_80x24(label_workspace):
    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_in_label_screen(app, pilot, "track.wav")
        await pilot.press("question_mark")
        table = app.screen.query_one("#help-keys")
        assert table.region.bottom <= 24 and table.max_scroll_y > 0  # more rows than fit
        last = table.row_count - 1
        assert table.get_row_at(last)[1].startswith("label ")  # the class keys come last
        await pilot.press("down", "down")
        assert table.cursor_row == 2
        await pilot.press("pagedown")
        assert table.cursor_row > 2 and table.scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor_row == last and table.scroll_y == table.max_scroll_y
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0 and table.scroll_y == 0


async def test_T_tags_the_picked_segment_with_techniques_and_undo_takes_them_back(label_workspace):
    def techniques() -> list[tuple[str, ...]]:
        with label_workspace.db.transaction() as con:
            return [label.techniques for label in query_labels(con, clip_id=clip_id_of(label_workspace, "track.wav"))]

    app = make_app(label_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_in_label_screen(app, pilot, "track.wav")
        await type_range(pilot, "0", "4")
        await pilot.press("s")
        await settle(app, pilot)
        await pilot.press("T")
        await settle(app, pilot)
        await pilot.press(*"flam, ghost", "enter")  # not a technique: refused, nothing stored
        await settle(app, pilot)
        assert techniques() == [()]
        await pilot.press("T")
        await settle(app, pilot)
        await pilot.press(*"flam,rimshot", "enter")
        await settle(app, pilot)
        assert techniques() == [("flam", "rimshot")]
        assert "tagged: snare on" in text_of(screen, "#label-status")
        assert screen.query_one(SegmentTable).get_row_at(0)[0].plain == "■ snare flam,rimshot"
        await pilot.press("u")
        await settle(app, pilot)
        assert techniques() == [()]
