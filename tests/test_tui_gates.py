"""The Gates screen: run the checks as a job from the keyboard, read the pass/fail table, open
what fails, and jump to those clips in the library; the command palette reaches every mode."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from textual.widgets import DataTable, Label

from conftest import curated_library
from engine.gates.store import latest_report
from engine.library.importer import import_folder
from engine.workspace import Workspace
from tui.app import make_app
from tui.screens.library import LibraryScreen
from tui.widgets.cliptable import ClipTable
from tui_pilot import shown_text, wait_for


@pytest.fixture
def workspace_with_a_silent_clip(tmp_path) -> Workspace:
    library = curated_library(tmp_path / "library", classes=("kick", "snare"), per_pack=3)
    soundfile.write(library / "kick" / "silent.wav", np.zeros(22050, dtype=np.float32), 22050)
    workspace = Workspace.open(tmp_path / "ws")
    import_folder(workspace, library, curated=True, workers=1)
    return workspace


def table_rows(table: DataTable) -> dict[str, list[str]]:
    return {str(table.get_row_at(n)[1]): [str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)}


async def test_running_the_gates_shows_failures_and_their_clips_open_in_the_library(workspace_with_a_silent_clip):
    workspace = workspace_with_a_silent_clip
    app = make_app(workspace.root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        verdict = app.screen.query_one("#gates-verdict", Label)
        await wait_for(pilot, lambda: "no gate report yet" in shown_text(verdict), "the empty gates screen")
        await pilot.press("r")
        table = app.screen.query_one("#gates-table", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0, "the gate run's report", timeout=180)

        rows = table_rows(table)
        assert "FAIL" in rows["min_class_count"][0] and "FAIL" in rows["silent_clips"][0]
        assert "PASS" in rows["class_count"][0]
        stored = latest_report(workspace)
        assert stored is not None and not stored.passed and "FAIL" in shown_text(verdict)
        assert stored.report.subject.get("taxonomy") == "drums"

        table.move_cursor(row=list(rows).index("silent_clips"))
        await pilot.pause()
        assert str(app.screen.query_one("#gates-items", DataTable).get_row_at(0)[0]).startswith("silent.wav")
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, LibraryScreen)
                       and app.screen.query_one(ClipTable).row_count == 1, "the library showing the silent clip")
        assert app.screen.query_one(ClipTable).rows[0].name == "silent.wav"
        assert "silent_clips" in shown_text(app.screen.query_one("#library-status", Label))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.query_one(ClipTable).row_count == 19, "every clip again")


async def test_the_command_palette_opens_a_mode_by_name(workspace_with_a_silent_clip):
    app = make_app(workspace_with_a_silent_clip.root)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"Gates")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "GatesScreen", "the Gates screen")
