"""The terminal app, driven with Textual's pilot as a person would: keys in, screen state out."""

from __future__ import annotations

import io
import os

import pytest
from rich.console import Console
from textual.widgets import DataTable, Input, Label

from conftest import curated_library
from engine.library.importer import import_folder
from engine.workspace import Workspace
from tui.app import make_app
from tui.screens.help import HelpScreen
import tui.screens.library as screen_module
from tui.screens.library import FILTER_DELAY_S, LibraryScreen
from tui.widgets.cliptable import ClipTable
from tui.widgets.readiness import ReadinessPanel


@pytest.fixture
def library_workspace(tmp_path) -> Workspace:
    workspace = Workspace.open(tmp_path / "ws")
    curated_library(tmp_path / "curated", classes=("kick", "snare"), per_pack=3)
    import_folder(workspace, tmp_path / "curated", curated=True, workers=1)
    return workspace


def shown_text(widget) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=60, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


async def settle(app, pilot) -> None:
    """Let a typed filter's pause pass, then wait for the queries it started."""
    await pilot.pause(FILTER_DELAY_S + 0.05)
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_the_library_lists_every_clip_and_the_readiness_panel(library_workspace):
    app = make_app(library_workspace.root)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, LibraryScreen)
        assert app.screen.query_one(ClipTable).row_count == 18
        assert "18 clips" in shown_text(app.screen.query_one("#library-status", Label))
        panel = shown_text(app.screen.query_one(ReadinessPanel))
        assert "kick 9/30" in " ".join(panel.split()) and "not ready" in panel


async def test_typing_a_filter_narrows_the_table(library_workspace):
    app = make_app(library_workspace.root)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash")
        assert app.focused is app.screen.query_one(Input)
        for key in "label:kick":
            await pilot.press(key)
        await settle(app, pilot)
        table = app.screen.query_one(ClipTable)
        assert table.row_count == 9
        assert {row.labels for row in table.rows} == {"kick"}
        await pilot.press("escape")
        await settle(app, pilot)
        assert table.row_count == 18 and app.focused is table


async def test_help_lists_the_keys_and_escape_closes_it(library_workspace):
    app = make_app(library_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = app.screen.query_one(DataTable)
        described = {keys.get_row_at(n)[1] for n in range(keys.row_count)}
        assert {"Filter", "Sort", "Help", "Quit"} <= described
        await pilot.press("escape")
        assert isinstance(app.screen, LibraryScreen)


async def test_sort_cycles_and_an_empty_workspace_opens(tmp_path):
    app = make_app(tmp_path / "new_ws")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.screen.query_one(ClipTable).row_count == 0
        assert "No labels yet" in shown_text(app.screen.query_one(ReadinessPanel))
        await pilot.press("s")
        await settle(app, pilot)
        assert "sorted by source" in shown_text(app.screen.query_one("#library-status", Label))


async def test_at_80_columns_the_table_gets_the_room_and_p_shows_the_counts(library_workspace):
    app = make_app(library_workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        panel = app.screen.query_one(ReadinessPanel)
        assert not panel.display
        assert app.screen.query_one(ClipTable).size.width == 80
        await pilot.press("p")
        assert panel.display


async def test_a_busy_workspace_in_a_worker_is_a_notification_not_a_crash(library_workspace, monkeypatch):
    from engine.errors import WorkspaceBusy

    def busy(*args, **kwargs):
        raise WorkspaceBusy("workspace busy: another process holds it")

    app = make_app(library_workspace.root)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        monkeypatch.setattr("tui.screens.library.browse", busy)
        await pilot.press("r")
        await settle(app, pilot)
        assert app.is_running and isinstance(app.screen, LibraryScreen)
        assert any("workspace busy" in n.message for n in app._notifications)
        assert app.screen.query_one(ClipTable).row_count == 18  # what was shown stays


async def test_the_library_reloads_on_return_only_when_the_workspace_changed(library_workspace, monkeypatch):
    from engine.library.editing import add_label

    app = make_app(library_workspace.root)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        queries = []
        real_browse = screen_module.browse
        monkeypatch.setattr(screen_module, "browse", lambda *a, **k: queries.append(a[1]) or real_browse(*a, **k))
        await pilot.press("question_mark")
        await pilot.press("escape")
        await settle(app, pilot)
        assert queries == []  # closing the help changes nothing: no query
        clip = screen.query_one(ClipTable).rows[0]
        relabelled = "snare" if clip.labels == "kick" else "kick"
        add_label(library_workspace, clip.clip_id, relabelled, taxonomy="drums")
        await pilot.press("question_mark")
        await pilot.press("escape")
        await settle(app, pilot)
        assert queries and screen.query_one(ClipTable).rows[0].labels == relabelled  # the user's label shows


async def test_at_80_columns_every_screen_shows_the_mode_keys_with_its_own_lit(tmp_path):
    """The header keeps 1–6 and ? in view on every screen (the footer is cut before them at 80
    columns), and lights the mode the screen is."""
    from textual.geometry import Region
    from textual.widgets._header import HeaderTitle

    app = make_app(tmp_path / "ws")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for key, mode in zip("123456", ("Library", "Label", "Train", "Gates", "Models", "Sweeps")):
            await pilot.press(key)
            await pilot.pause()
            title = app.screen.query_one(HeaderTitle)
            line = title.render_lines(Region(0, 0, title.size.width, 1))[0]
            text = "".join(segment.text for segment in line)
            for shown in ("1 Library", "2 Label", "3 Train", "4 Gates", "5 Models", "6 Sweeps", "? Help"):
                assert shown in text, f"{shown!r} is cut from the header of {mode}: {text!r}"
            lit = [segment.text.strip() for segment in line if segment.style and segment.style.reverse]
            assert lit == [key, mode]


def first_table_line(table: ClipTable) -> str:
    return "".join(segment.text for segment in table.render_line(1)).strip()


async def test_an_empty_workspace_says_how_to_import_and_i_runs_the_import_as_a_job(tmp_path):
    """No clips: the table says how to import, `i` asks for a folder and options, the import runs as
    a job with progress, and what it left out is listed."""
    from textual.widgets import Checkbox

    from engine.jobs.log import list_jobs
    from tui.widgets.importdialog import ImportDialog, RejectionsDialog
    from tui_pilot import wait_for

    library = curated_library(tmp_path / "curated", classes=("kick", "snare"), per_pack=2)
    (library / "kick" / "broken.wav").write_bytes(b"not audio at all")
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(ClipTable)
        assert first_table_line(table).startswith("no clips yet: i imports a folder")
        await pilot.press("i")
        dialog = await wait_for(pilot, lambda: isinstance(app.screen, ImportDialog) and app.screen, "the import dialog")
        dialog.query_one("#import-folder", Input).value = str(tmp_path / "nowhere")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog  # a folder that is not there is named, and the dialog stays
        dialog.query_one("#import-folder", Input).value = str(library)
        dialog.query_one(Checkbox).focus()
        await pilot.press("space")  # curated: the class folders are labels
        dialog.query_one("#import-folder", Input).focus()
        await pilot.press("enter")
        rejected = await wait_for(pilot, lambda: isinstance(app.screen, RejectionsDialog) and app.screen,
                                  "the import job's rejections", timeout=120)
        rows = rejected.query_one(DataTable)
        await wait_for(pilot, lambda: rows.row_count, "the rejections dialog's rows")  # filled once it is mounted
        assert rows.row_count == 1 and rows.get_row_at(0)[0] == "broken.wav"
        await pilot.press("escape")
        library_screen = app.screen
        assert isinstance(library_screen, LibraryScreen)
        await wait_for(pilot, lambda: table.row_count == 12, "the imported clips in the table")
        assert "12 new" in shown_text(library_screen.query_one("#library-job-message", Label))
        assert {row.labels for row in table.rows} == {"kick", "snare"}
        await pilot.press("slash", *"zzz")
        await settle(app, pilot)
        assert first_table_line(table).startswith("no clips match; escape clears the filter")
    for job in list_jobs(app.workspace):
        try:
            os.waitpid(job.pid, 0)  # collect the worker this process started
        except ChildProcessError:
            pass
