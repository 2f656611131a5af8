"""Snapshots of every screen at 80×24 and 120×40 (pytest-textual-snapshot).

The workspace is built once per test run at a fixed path (paths and names show on screen), from
synthesised audio with fixed seeds; a trained model, its job and a gate report have their times
and ids fixed afterwards, so a screen draws the same on every machine. After a deliberate change
of a screen: `pytest tests/test_snapshots.py --snapshot-update`, and look at the new SVGs.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest
import soundfile

from conftest import curated_library
from engine.audio.beatgrid import BeatGrid
from engine.audio.synth import synthesize_section_track
from engine.gates.runner import run_and_store
from engine.jobs.log import JobLog
from engine.library.editing import add_label
from engine.library.grids import set_grid
from engine.library.importer import import_folder
from engine.progress import CancelToken
from engine.training.run import TrainRequest, run_training
from engine.workspace import Workspace
from tui.app import make_app
from tui.widgets.cliptable import ClipTable
from tui_pilot import wait_for

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}
FIXED_TIME = "2026-01-02 03:04:05"
TRACK_BPM = 120.0


def _build(root: Path) -> None:
    library = curated_library(root / "library", classes=("kick", "snare", "hihat_closed"), per_pack=4)
    track, _ = synthesize_section_track([("intro", 4), ("drop", 4)], bpm=TRACK_BPM, seed=3)
    mix = root / "tracks" / "mix.wav"
    mix.parent.mkdir()
    soundfile.write(mix, track, 22050)
    workspace = Workspace.open(root / "ws")
    import_folder(workspace, library, curated=True, workers=1)
    import_folder(workspace, mix.parent, workers=1)
    set_grid(workspace, str(mix), BeatGrid(bpm=TRACK_BPM, offset_s=0.0))
    add_label(workspace, str(mix), "intro", taxonomy="sections", start_beat=0, end_beat=16)
    params = TrainRequest(name="drums", model="logreg", features="dsp", min_class_samples=2).__dict__
    job = JobLog(workspace, "train", params, state="pending")
    run_training(workspace, job, params, CancelToken())
    run_and_store(workspace, model="drums@1", workers=1)
    with workspace.db.transaction() as con:
        for table in ("jobs", "job_events", "model_versions"):
            con.execute(f"UPDATE {table} SET job_id = 'train-snapshot' WHERE job_id = ?", [job.job_id])
        con.execute("UPDATE jobs SET created_at = ?, started_at = ?, finished_at = ?", [FIXED_TIME] * 3)
        for table, column in (("model_versions", "created_at"), ("activations", "activated_at"),
                              ("gate_reports", "created_at"), ("job_events", "happened_at")):
            con.execute(f"UPDATE {table} SET {column} = ?", [FIXED_TIME])


@pytest.fixture(scope="session")
def snapshot_workspace(tmp_path_factory, worker_id) -> Path:
    """Built by the first test process of this run to get here; the run's other workers wait and reuse
    it. It lives in this run's pytest folder (shared by its xdist workers), so no other run sees it."""
    home = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        home = home.parent
    with open(home / "snapshots.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = home / "snapshots-built"
        if not built.exists():
            _build(home / "snapshots")
            built.touch()
    return home / "snapshots" / "ws"


async def _library_ready(pilot) -> None:
    pilot.app.sub_title = "snapshot workspace"
    await wait_for(pilot, lambda: pilot.app.screen.query_one(ClipTable).row_count == 37, "the library")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def _open_the_track(pilot) -> None:
    await _library_ready(pilot)
    await pilot.press("slash", *"mix", "enter", "enter")
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "LabelScreen", "the label screen")
    await pilot.pause(0.5)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _sized(table) -> bool:
    """A table with rows whose columns have taken the widths of their cells (they are measured on a
    later refresh than the one that adds the rows)."""
    return bool(table.row_count) and any(column.content_width > len(str(column.label)) + 1
                                         for column in table.columns.values())


def _mode(key: str, ready):
    async def run_before(pilot) -> None:
        await _library_ready(pilot)
        await pilot.press(key)
        await wait_for(pilot, lambda: ready(pilot.app.screen), f"mode {key}")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)
    return run_before


SCREENS = {
    "library": _library_ready,
    "label": _open_the_track,
    "train": _mode("3", lambda screen: screen.query("JobsTable") and screen.query_one("JobsTable").row_count),
    "gates": _mode("4", lambda screen: _sized(screen.query_one("#gates-table"))),
    "models": _mode("5", lambda screen: screen.query_one("VersionsTable").row_count),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, snapshot_workspace, monkeypatch, screen, size):
    monkeypatch.setenv("WORKBENCH_SOUND", "off")
    assert snap_compare(make_app(snapshot_workspace), terminal_size=SIZES[size], run_before=SCREENS[screen])
