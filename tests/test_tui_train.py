"""The Train screen, driven as a person would: fill in the form and start a job, watch its curve,
see the new version in Models; open the app while a detached headless job runs and find it, with
its curve, selected (over a newer finished one); cancel it with a key; with nothing running, open
on the newest training job's result.

A small curated library (3 classes x 3 packs x 4 clips) is imported once per module with its dsp
features cached; every test works in its own copy. Jobs run in real worker processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import ContentSwitcher, DataTable, Input, Label, Select
from textual.widgets._select import SelectCurrent

from conftest import copy_workspace, curated_workspace_with_dsp
from engine.jobs.log import FINAL_STATES, JobLog, get_job, list_jobs
from engine.progress import CancelToken
from engine.models.registry import list_versions
from engine.services.activation import run_activation_job
from engine.training.run import TrainRequest, run_training
from engine.workspace import Workspace
from tui.app import make_app
from tui.screens.models import ModelsScreen
from tui.screens.train import TrainScreen
from tui.widgets.confirm import ConfirmDialog
from tui.widgets.jobs import JobsTable
from tui.widgets.losscurve import LossCurve
from tui.widgets.metrics import MetricsView
from tui.widgets.trainform import TrainForm
from tui_pilot import shown_text, wait_for

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return curated_workspace_with_dsp(tmp_path_factory.mktemp("tui_train"))


@pytest.fixture
def ws(template, tmp_path) -> Workspace:
    return Workspace.open(copy_workspace(template, tmp_path))


async def open_train_screen(app, pilot) -> TrainScreen:
    await pilot.press("3")
    # Ready once every Select has drawn its current value (on a busy box the form can be in the DOM
    # before a Select's own children are, and setting its value then fails inside textual).
    await wait_for(pilot, lambda: app.screen.query(TrainForm) and all(
        select.query(SelectCurrent) and select.query_one(SelectCurrent).query("#label")
        for select in app.screen.query(Select)), "the training form")
    assert isinstance(app.screen, TrainScreen)
    return app.screen


async def type_into(pilot, screen, selector: str, text: str) -> None:
    field = screen.query_one(selector, Input)
    field.focus()
    field.value = ""
    for key in text:
        await pilot.press(key)


async def test_a_job_started_from_the_form_draws_its_curve_and_its_version_appears_in_models(ws):
    app = make_app(ws.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_train_screen(app, pilot)
        assert shown_text(screen.query_one("#train-status")).startswith("No job selected")
        screen.query_one("#train-model", Select).value = "logreg"
        await pilot.pause()
        assert not screen.query_one("#row-epochs").display and screen.query_one("#row-C").display
        screen.query_one("#train-split", Select).value = "clip"  # three packs: a split by pack has no test part
        await type_into(pilot, screen, "#train-min-class", "2")
        await type_into(pilot, screen, "#train-name", "kit")
        await pilot.press("enter")

        await wait_for(pilot, lambda: screen.selected, "the new job to be selected")
        job_id = screen.selected
        await wait_for(pilot, lambda: job_id in screen.query_one(JobsTable).rows, "the new job in the list")
        curve = screen.query_one(LossCurve)
        await wait_for(pilot, lambda: curve.epochs_drawn >= 1, "a point on the loss curve")
        await wait_for(pilot, lambda: screen.job and screen.job.state in FINAL_STATES, "the job to end")
        assert screen.job.state == "completed", screen.job.error
        await wait_for(pilot, lambda: screen.query_one(ContentSwitcher).current == "train-result-box",
                       "the finished job's metrics")
        result = shown_text(screen.query_one(MetricsView))
        assert "kit@1 · logreg on dsp" in result and "macro-F1" in result
        assert all(name in result for name in ("hihat_closed", "kick", "snare", "confusion"))

        (version,) = list_versions(ws)
        assert (version.ref, version.kind, str(version.spec), version.job_id) == ("kit@1", "logreg", "dsp", job_id)
        params = get_job(ws, job_id).params
        assert (params["split_by"], params["min_class_samples"], params["taxonomy"]) == ("clip", 2, "drums")

        await pilot.press("v")
        assert screen.query_one(ContentSwitcher).current == "train-curve-box"
        await pilot.press("5")
        models = app.screen
        assert isinstance(models, ModelsScreen)
        table = models.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the new version in Models")
        assert table.get_row_at(0)[1] == "kit@1"


async def test_a_bad_number_or_name_is_explained_and_starts_nothing(ws):
    app = make_app(ws.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train_screen(app, pilot)
        screen.query_one("#train-model", Select).value = "mlp"
        await pilot.pause()
        await type_into(pilot, screen, "#train-epochs", "ten")
        await pilot.press("enter")
        message = screen.query_one("#train-form-message", Label)
        assert "epochs: a whole number ≥ 1, not 'ten'" in shown_text(message)

        await type_into(pilot, screen, "#train-epochs", "3")
        await type_into(pilot, screen, "#train-name", "no good")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "model name" in shown_text(message), "the engine's message about the name")
        assert list_jobs(ws) == []


def start_detached(ws: Workspace) -> str:
    """`workbench --headless train --detach`: a long mlp job that only ends when cancelled."""
    command = [sys.executable, "-m", "cli.main", "--headless", "--workspace", str(ws.root), "train", "--name", "drums",
               "--model", "mlp", "--epochs", "500", "--patience", "500", "--device", "cpu",
               "--min-class-samples", "2", "--split", "clip", "--detach", "--json"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["job_id"]


def train_here(ws: Workspace, name: str, **hyperparams) -> str:
    """A logreg version trained in this process (a finished job of kind train); its job id."""
    params = TrainRequest(name=name, model="logreg", min_class_samples=2, split_by="clip",
                          hyperparams=hyperparams).__dict__
    job = JobLog(ws, "train", params, state="pending")
    run_training(ws, job, params, CancelToken())
    assert get_job(ws, job.job_id).state == "completed"
    return job.job_id


async def test_with_nothing_running_the_screen_opens_on_the_newest_training_jobs_result(ws):
    train_here(ws, "kit")
    newest = train_here(ws, "kit", C=0.1)
    params = {"ref": "kit@2", "reason": None, "forced": False, "rollback": False}
    activation = JobLog(ws, "activate", params, state="pending")  # newer, but not a training job
    run_activation_job(ws, activation, params, CancelToken())
    app = make_app(ws.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_train_screen(app, pilot)
        await wait_for(pilot, lambda: screen.selected == newest, "the newest training job to be selected")
        await wait_for(pilot, lambda: screen.query_one(ContentSwitcher).current == "train-result-box",
                       "its metrics")
        result = shown_text(screen.query_one(MetricsView))
        assert "kit@2 · logreg on dsp" in result and "macro-F1" in result
        assert all(name in result for name in ("hihat_closed", "kick", "snare", "confusion"))
        status = shown_text(screen.query_one("#train-status"))
        assert "completed" in status and "kit@2" in status and not status.startswith("No job selected")

        jobs = screen.query_one(JobsTable)
        assert list(jobs.rows)[0].value == activation.job_id  # listed, newest first
        jobs.focus()
        jobs.move_cursor(row=0)
        await wait_for(pilot, lambda: "activate job completed" in shown_text(screen.query_one(MetricsView)),
                       "what an activation job left")
    assert get_job(ws, activation.job_id).result["active"] == "kit@2"


async def test_the_app_reattaches_to_a_detached_job_and_x_cancels_it(ws):
    job_id = start_detached(ws)
    train_here(ws, "finished")  # newer than the running job, which still wins
    try:
        app = make_app(ws.root)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_train_screen(app, pilot)
            await wait_for(pilot, lambda: screen.selected == job_id, "the running job to be selected")
            assert screen.query_one(JobsTable).rows.keys() >= {job_id}
            curve = screen.query_one(LossCurve)
            await wait_for(pilot, lambda: curve.epochs_drawn >= 1, "the detached job's curve", timeout=120)
            first = curve.epochs_drawn
            await wait_for(pilot, lambda: curve.epochs_drawn > first, "more epochs on the curve")
            assert "epoch" in shown_text(screen.query_one("#train-status"))

            screen.query_one(JobsTable).focus()
            await pilot.press("x")
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("y")
            await wait_for(pilot, lambda: get_job(ws, job_id).state in FINAL_STATES, "the job to stop", timeout=60)
            await wait_for(pilot, lambda: screen.job.state == "cancelled", "the screen to show it cancelled")
    finally:
        if get_job(ws, job_id).state not in FINAL_STATES:
            from engine.jobs.log import request_cancel

            request_cancel(ws, job_id)
    assert get_job(ws, job_id).state == "cancelled"
    assert [v.ref for v in list_versions(ws)] == ["finished@1"]  # the cancelled job registered nothing
