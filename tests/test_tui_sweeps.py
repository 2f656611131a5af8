"""The Sweeps view (mode 6), driven as a person would: start a small grid sweep from its dialog and
watch its trials appear with states and scores, the best-so-far curve and the selected trial's loss
curve; cancel it with x (the trial in hand ends cancelled), resume it with r (the cancelled point
runs again). Workers are real processes; every wait is on a condition, none is a fixed sleep.

With two sweeps, n goes to the other; a trial no worker has claimed says so.

A small curated library (3 classes x 3 packs x 4 clips) is imported once per module with its dsp
features cached; the test works on its own copy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select

from conftest import copy_workspace, curated_workspace_with_dsp
from engine.jobs.log import FINAL_STATES, get_job
from engine.sweeps import study as sweeps
from engine.sweeps.launch import cancel_sweep, prepare_study, sweep_jobs
from engine.sweeps.study import SweepConfig
from engine.sweeps.summary import best_so_far, summarise
from engine.training.run import TrainRequest
from engine.workspace import Workspace
from tui.app import make_app
from tui.screens.sweeps import BestSoFar, SweepsScreen
from tui.widgets.confirm import ConfirmDialog
from tui.widgets.losscurve import LossCurve
from tui.widgets.sweepform import SweepDialog
from tui_pilot import shown_text, wait_for

LONG = 3000  # epochs of the trial that is cancelled: it cannot end before the cancel lands


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return curated_workspace_with_dsp(tmp_path_factory.mktemp("tui_sweeps"))


@pytest.fixture
def ws(template, tmp_path) -> Workspace:
    return Workspace.open(copy_workspace(template, tmp_path))


def states(screen: SweepsScreen) -> dict[int, str]:
    return {t.number: t.state for t in screen.summary.trials} if screen.summary else {}


async def fill(pilot, dialog: SweepDialog, values: dict[str, str]) -> None:
    for key, text in values.items():
        dialog.query_one(f"#sweep-{key}", Input).value = text
    dialog.query_one("#sweep-name", Input).focus()
    await pilot.press("enter")


async def test_a_sweep_started_from_the_view_shows_its_trials_and_is_cancelled_and_resumed_by_keys(ws):
    app = make_app(ws.root)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("6")
            screen = await wait_for(pilot, lambda: isinstance(app.screen, SweepsScreen) and app.screen, "the Sweeps view")
            assert "press s" in shown_text(screen.query_one("#sweeps-line"))
            await pilot.press("s")
            dialog = await wait_for(pilot, lambda: isinstance(app.screen, SweepDialog) and app.screen, "the dialog")
            await fill(pilot, dialog, {"name": "tiny", "search": "lr=1e-3", "features": "dsp", "min-class": "0"})
            assert "min/class" in shown_text(dialog.query_one("#sweep-form-message"))  # a bad field is named
            await fill(pilot, dialog, {"search": "lr=1e-3 C=uniform(0,1)", "min-class": "2"})
            assert "not both" in shown_text(dialog.query_one("#sweep-form-message"))
            await fill(pilot, dialog, {"search": "lr=loguniform(1e-4,1e-2)", "trials": "0"})
            assert "trials" in shown_text(dialog.query_one("#sweep-form-message"))
            dialog.query_one("#sweep-trials", Input).value = ""
            await fill(pilot, dialog, {"search": "epochs=3", "model": "nosuch", "min-class": "2"})  # the engine's check
            await wait_for(pilot, lambda: any("nosuch" in n.message for n in app._notifications), "why it did not start")
            assert sweeps.sweep_names(ws) == [] and not sweep_jobs(ws, "tiny")  # nothing made, nothing spawned
            await pilot.press("s")
            dialog = await wait_for(pilot, lambda: isinstance(app.screen, SweepDialog) and app.screen, "the dialog again")
            dialog.query_one("#sweep-prune", Select).value = "median"  # (no trial is pruned: it needs 2 complete)
            await fill(pilot, dialog, {"name": "tiny", "search": f"epochs=3,{LONG} patience={LONG}", "features": "dsp",
                                       "min-class": "2"})

            await wait_for(pilot, lambda: states(screen).get(0) == "complete", "trial 0 to complete", timeout=120)
            await wait_for(pilot, lambda: states(screen).get(1) == "running", "trial 1 to run")
            table = screen.query_one(DataTable)
            row = table.get_row("0")
            assert str(row[1]) == "complete" and float(row[3]) == pytest.approx(screen.summary.trials[0].val_macro_f1, abs=5e-4)
            assert "epochs=3" in row[2] and str(table.get_row("1")[1]) == "running"
            assert screen.query_one(BestSoFar).points == 1
            assert "tiny" in shown_text(screen.query_one("#sweeps-line")) and "running" in shown_text(screen.query_one("#sweeps-line"))

            curve = screen.query_one(LossCurve)  # the cursor is on trial 0: its three epochs
            await wait_for(pilot, lambda: curve.epochs_drawn == 3, "trial 0's curve")
            table.focus()
            await pilot.press("down")
            await wait_for(pilot, lambda: screen.trial_job == screen.summary.trials[1].job_id, "trial 1 followed")
            await wait_for(pilot, lambda: curve.epochs_drawn > 3, "trial 1's curve growing past trial 0's")
            assert "trial 1" in shown_text(screen.query_one("#sweeps-trial-status"))

            await pilot.press("x")
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("y")
            await wait_for(pilot, lambda: states(screen).get(1) == "cancelled", "trial 1 cancelled", timeout=60)
            await wait_for(pilot, lambda: not any(j.state.is_live for j in screen.sweep_workers), "the worker to stop")
            assert "stopped" in shown_text(screen.query_one("#sweeps-line"))

            await pilot.press("r")
            await wait_for(pilot, lambda: states(screen).get(2) == "running", "the cancelled point running again",
                           timeout=60)
            assert screen.summary.trials[2].params == screen.summary.trials[1].params
            assert states(screen)[0] == "complete"  # the finished point is not run again
            await pilot.press("x", "y")
            await wait_for(pilot, lambda: all(get_job(ws, j.job_id).state in FINAL_STATES for j in sweep_jobs(ws, "tiny")),
                           "the resumed worker to stop", timeout=60)

            # another sweep, made (not run) outside the view: n shows it, its trials waiting, with no curve
            prepare_study(ws, SweepConfig(name="other", grid={"C": [0.1, 1]},
                                          request=TrainRequest(name="other", model="logreg", features="dsp",
                                                               split_by="clip", min_class_samples=2).__dict__), None)
            await wait_for(pilot, lambda: "other" in screen.names, "the other sweep listed")
            await pilot.press("n")
            await wait_for(pilot, lambda: screen.sweep == "other" and states(screen) == {0: "waiting", 1: "waiting"},
                           "the other sweep's trials")
            assert "of 2 grid points" in shown_text(screen.query_one("#sweeps-line"))
            await wait_for(pilot, lambda: "no training job yet" in shown_text(screen.query_one("#sweeps-trial-status")),
                           "the waiting trial said so")
            assert curve.epochs_drawn == 0 and screen.query_one(BestSoFar).points == 0
    finally:
        cancel_sweep(ws, "tiny")  # (a no-op unless the test failed midway)
    study, config = sweeps.open_sweep(ws, "tiny", None)
    summary = summarise(ws, study, config)
    assert [t.number for t in summary.trials][:3] == [0, 1, 2] and summary.best == 0
    assert (config.sampler, config.grid, config.prune) == ("grid", {"epochs": [3, LONG], "patience": [LONG]}, "median")
    assert (config.request["features"], config.request["min_class_samples"], config.request["model"]) == ("dsp", 2, "mlp")
    assert best_so_far(summary.trials) == [(0, summary.trials[0].val_macro_f1)]
