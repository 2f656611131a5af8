"""The range editor on its own: the screen hands it a clip and calls it; it answers with
`RangeChanged` messages (a selection, a half-typed range, or a refusal with the reason)."""

from __future__ import annotations

from textual import on
from textual.app import App, ComposeResult
from textual.widgets import Input, Label

from conftest import clip_id_of, track_and_hits
from engine.library.session import ClipState, Selection, load_clip_state
from engine.workspace import Workspace
from test_tui import shown_text
from tui.widgets.range_editor import RangeChanged, RangeEditor


class EditorApp(App):
    def __init__(self, state: ClipState) -> None:
        super().__init__()
        self.state = state
        self.changes: list[tuple[Selection | None, str | None, bool]] = []

    def compose(self) -> ComposeResult:
        yield RangeEditor()

    def on_mount(self) -> None:
        self.query_one(RangeEditor).show_clip(self.state)

    @on(RangeChanged)
    def record(self, event: RangeChanged) -> None:
        self.changes.append((event.selection, str(event.error) if event.error else None, event.submitted))


async def test_the_editor_posts_each_change_of_its_range(tmp_path):
    workspace = track_and_hits(Workspace.open(tmp_path / "ws"), tmp_path / "audio")
    app = EditorApp(load_clip_state(workspace, clip_id_of(workspace, "track.wav")))  # 120 bpm: a beat is 0.5 s
    async with app.run_test() as pilot:
        editor = app.query_one(RangeEditor)
        editor.nudge("end", 1, playhead_s=2.6)  # nothing selected: the beat at the playhead
        await pilot.pause()
        assert app.changes == [(Selection(5.0, 6.0, in_beats=True), None, False)]
        assert (editor.query_one("#label-start", Input).value, editor.query_one("#label-end", Input).value) == ("5", "6")

        editor.nudge("end", -1, playhead_s=0.0)  # the end onto the start: refused, the selection kept
        await pilot.pause()
        selection, error, _ = app.changes[-1]
        assert selection == Selection(5.0, 6.0, in_beats=True) and "before the end beat" in error
        assert editor.query_one("#label-range-message", Label).has_class("error")

        editor.select(None)
        editor.focus_start()
        await pilot.press("8")  # the start alone: from there to the clip's end
        assert app.changes[-1] == (Selection(8.0, 32.0, in_beats=True), None, False)
        assert "to the clip's end" in shown_text(editor.query_one("#label-range-message", Label))
        await pilot.press("tab", "1", "2", "enter")
        assert app.changes[-1] == (Selection(8.0, 12.0, in_beats=True), None, True)
        assert editor.toggle_snap() == "bar" and editor.selection == Selection(8.0, 12.0, in_beats=True)
