"""File names are untrusted text: neither face lets one act on the terminal.

A library is built from files whose names hold Rich markup (`[b]`, `[link=…]`, a stray `[/b]`)
and control characters (ESC, BEL, newline, tab); it is imported, then listed by the CLI (in a real
colour terminal's mode, as a subprocess) and shown by the TUI. The names come out literally, their
control characters visible, one row per clip, and no escape sequence but the program's own styling.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given, settings, strategies as st
from textual.widgets import DataTable, Label

from conftest import clip_id_of, write_tone
from engine.errors import InputError
from engine.gates.core import GateResult
from engine.library.importer import import_folder
from engine.text import printable
from engine.workspace import Workspace
from test_tui import settle
from tui.app import make_app
from tui.screens.label import LabelScreen
from tui.widgets.cliptable import ClipTable
from tui.workers import failure_text

WORKBENCH = [sys.executable, "-m", "cli.main", "--headless"]
SOURCE = "lib[red]\x07"  # the top folder: the clips' source

# path under SOURCE → how it must be shown (a "/" makes a folder: "close[" holding "b].wav")
NAMES = {
    "[b]bold.wav": "[b]bold.wav",
    "[link=https:example.com]click[/link].wav": "[link=https:example.com]click[/link].wav",
    "close[/b].wav": "close[/b].wav",
    "esc\x1b[31mred.wav": "esc␛[31mred.wav",
    "bell\x07ring.wav": "bell␇ring.wav",
    "new\nline.wav": "new␊line.wav",
    "tab\tbed.wav": "tab␉bed.wav",
    "plain.wav": "plain.wav",
}
SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour and weight
OWN = re.compile(r"\x1b\[([0-9;]*m|\?25[lh]|2K|1A)")  # and the progress bar's cursor moves: all the CLI writes


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Workspace:
    folder = tmp_path_factory.mktemp("hostile") / SOURCE
    for number, name in enumerate(NAMES):
        write_tone(folder / name, seconds=0.3, freq=200.0 + 50 * number)  # each its own content
    (folder / "broken\x1b]8;;id=x\x07.wav").write_bytes(b"RIFF, but not audio")  # rejected on import
    workspace = Workspace.open(tmp_path_factory.mktemp("ws") / "ws")
    report = import_folder(workspace, folder, workers=1)
    assert report.added == len(NAMES) and len(report.rejections) == 1
    return workspace


def terminal_run(*args: str) -> subprocess.CompletedProcess:
    """workbench as a colour terminal would run it (styling on, wide enough for whole names)."""
    env = {**os.environ, "FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "250"}
    env.pop("NO_COLOR", None)
    return subprocess.run([*WORKBENCH, *args], capture_output=True, text=True, env=env, timeout=120)


def controls(text: str) -> list[str]:
    """The control characters in `text` once the program's own styling and line breaks are taken out."""
    return [c for c in OWN.sub("", text) if c != "\n" and unicodedata.category(c) == "Cc"]


def test_clips_list_prints_names_literally_one_row_each(hostile):
    done = terminal_run("--workspace", str(hostile.root), "clips", "list")
    assert done.returncode == 0, done.stderr
    assert SGR.search(done.stdout), "the terminal mode is on: the table is styled"
    assert controls(done.stdout) == [] and "\x1b]8;" not in done.stdout  # no raw ESC/BEL/TAB, no hyperlink
    lines = SGR.sub("", done.stdout).splitlines()
    for name, shown in NAMES.items():
        rows = [line for line in lines if shown in line]
        assert len(rows) == 1, (shown, lines)
        assert "/" in name or printable(SOURCE) in rows[0]


def test_json_keeps_the_names_exact(hostile):
    done = terminal_run("--workspace", str(hostile.root), "clips", "list", "--json")
    assert done.returncode == 0 and controls(done.stdout) == []
    paths = {clip["path"].split(SOURCE + "/")[1] for clip in json.loads(done.stdout)["clips"]}
    assert paths == set(NAMES)


@pytest.mark.parametrize("args", [["stats"], ["labels", "list"], ["clips", "list", "--source", SOURCE]], ids=" ".join)
def test_other_listings_show_the_source_literally(hostile, args):
    done = terminal_run("--workspace", str(hostile.root), *args)
    assert done.returncode == 0, done.stderr
    assert controls(done.stdout + done.stderr) == []
    if args[0] != "labels":
        assert printable(SOURCE) in SGR.sub("", done.stdout)


def test_import_report_and_rejections_show_names_visibly(hostile, tmp_path):
    folder = tmp_path / "again[/b]\x1b[2J"
    write_tone(folder / "x[/i]\x1b.wav", seconds=0.3)
    (folder / "bad\x1b]8;;id=x\x07.wav").write_bytes(b"not audio")
    done = terminal_run("--workspace", str(tmp_path / "ws"), "import", str(folder))
    assert done.returncode == 3, done.stderr  # partial: one file rejected
    assert controls(done.stdout + done.stderr) == [] and "\x1b]8;" not in done.stderr
    assert "again[/b]␛[2J" in SGR.sub("", done.stdout)
    assert "bad␛]8;;id=x␇.wav" in SGR.sub("", done.stderr)


def test_an_error_quoting_a_name_shows_it_visibly(hostile, tmp_path):
    done = terminal_run("--workspace", str(hostile.root), "import", str(tmp_path / "no[/b]such\x1b[2J\nclip"))
    assert done.returncode == 1
    assert controls(done.stderr) == [] and "no[/b]such␛[2J␊clip" in SGR.sub("", done.stderr)
    assert "Traceback" not in done.stderr


def test_printable_shows_each_control_character():
    assert printable("a\x1b[31m\x07\n\t\x00\x7f b") == "a␛[31m␇␊␉␀␡ b"
    assert printable("c1\x85 line\u2028 rtl\u202e \udc80") == "c1\\x85 line\\u2028 rtl\\u202e \\udc80"
    assert printable("kick_01 ünïcødé 鼓 🥁.wav") == "kick_01 ünïcødé 鼓 🥁.wav"


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_printable_leaves_no_control_character_and_no_line_break(text):
    shown = printable(text)
    assert not any(unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs") for c in shown)
    assert len(shown.splitlines()) <= 1
    assert shown == text or not text.isprintable()


def test_a_worker_failure_shows_the_name_visibly():
    assert failure_text(InputError("x[/b]\x1b[2J.wav: corrupt")) == "x[/b]␛[2J.wav: corrupt"


async def test_the_library_table_keeps_one_row_per_clip(hostile):
    app = make_app(hostile.root)
    async with app.run_test(size=(140, 20)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(ClipTable)
        assert table.row_count == len(NAMES)
        drawn = [table.render_line(y).text for y in range(1, len(NAMES) + 1)]
        assert all(controls(line) == [] and len(line) == len(drawn[0]) for line in drawn)
        for shown in NAMES.values():  # the table shows file names
            assert sum(shown.rsplit("/", 1)[-1] in line for line in drawn) == 1, (shown, drawn)


@pytest.mark.parametrize("name", ["[b]bold.wav", "esc\x1b[31mred.wav", "new\nline.wav"])
async def test_the_label_screen_shows_the_name_literally(hostile, monkeypatch, name):
    monkeypatch.setenv("WORKBENCH_SOUND", "off")
    app = make_app(hostile.root)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("2")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, LabelScreen)
        screen.open_clip(clip_id_of(hostile, name))
        await settle(app, pilot)
        info = screen.query_one("#label-info", Label).visual.plain  # what is drawn, markup applied
        assert NAMES[name] in info and controls(info) == []


async def test_the_gates_screen_lists_failing_files_literally(hostile):
    app = make_app(hostile.root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        check = GateResult("dataset.silent_clips", "Silent clips", False, 2, "== 0",
                           items=[{"path": "/lib/[b]x\x1b[2J.wav", "source": "pack[/b]"}, {"path": "/lib/new\nline.wav"}])
        app.screen.show_check(check)
        await pilot.pause()  # drawn: a stray [/b] must not end the app
        items = app.screen.query_one("#gates-items", DataTable)
        assert [str(items.get_row_at(n)[0]) for n in range(items.row_count)] == ["[b]x␛[2J.wav  source=pack[/b]",
                                                                                  "new␊line.wav"]
