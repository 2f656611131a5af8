"""The Models screen, driven as a person would: activate and roll back (each an activation job in
a process of its own, which `c` cancels), delete (asked first; never the active version), compare
two versions, export to ONNX (and lgbm's refusal). Every test checks the registry afterwards.

Three versions are trained in-process once per module (drums@1 and drums@2: logreg with different
C; gbm@1: lgbm) into a template workspace that each test copies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from textual.widgets import DataTable, Label

from conftest import copy_workspace, curated_library
from engine.jobs.log import JobLog, list_jobs
from engine.library.importer import import_folder
from engine.progress import CancelToken
from engine.models.registry import activate, activation_history, list_versions, resolve
from engine.training.run import TrainRequest, run_training
from engine.workspace import Workspace
from tui.app import make_app
from tui.screens.models import ModelsScreen
from tui.widgets.confirm import ConfirmDialog
from tui.widgets.metrics import MetricsView
from tui.widgets.prompt import PromptDialog
from tui_pilot import shown_text, wait_for

REFS = ["drums@1", "drums@2", "gbm@1"]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tui_models")
    curated_library(root / "curated", per_pack=4)
    ws = Workspace.open(root / "ws")
    import_folder(ws, root / "curated", curated=True, workers=1)
    for name, model, hyperparams in (("drums", "logreg", {}), ("drums", "logreg", {"C": 0.05}),
                                     ("gbm", "lgbm", {"n_estimators": 10, "patience": 10})):
        params = TrainRequest(name=name, model=model, min_class_samples=2, split_by="clip",
                              hyperparams=hyperparams).__dict__
        run_training(ws, JobLog(ws, "train", params, state="pending"), params, CancelToken())
    return ws.root


@pytest.fixture
def ws(template, tmp_path) -> Workspace:
    return Workspace.open(copy_workspace(template, tmp_path))


async def open_models(app, pilot) -> ModelsScreen:
    await pilot.press("5")
    screen = app.screen
    assert isinstance(screen, ModelsScreen)
    table = screen.query_one(DataTable)
    await wait_for(pilot, lambda: table.row_count == len(REFS), "the versions")
    assert [table.get_row_at(n)[1] for n in range(table.row_count)] == REFS
    return screen


async def go_to(pilot, screen, ref: str) -> None:
    table = screen.query_one(DataTable)
    table.focus()
    while table.get_row_at(table.cursor_row)[1] != ref:
        await pilot.press("down" if REFS.index(ref) > table.cursor_row else "up")


def status(screen) -> str:
    return shown_text(screen.query_one("#models-message", Label))


def active_versions(ws: Workspace) -> set[str]:
    return {v.ref for v in list_versions(ws) if v.is_active}


async def wait_idle(pilot, screen, what: str) -> str:
    await wait_for(pilot, lambda: screen.busy is None, what)
    return status(screen)


def activation_jobs(ws: Workspace) -> list:
    """The activation jobs, oldest first."""
    return [job for job in reversed(list_jobs(ws)) if job.kind == "activate"]


def stored_predictions(ws: Workspace, ref: str) -> int:
    with ws.db.transaction() as con:
        return con.execute("SELECT count(*) FROM predictions WHERE model_id = ?",
                           [resolve(ws, ref).model_id]).fetchone()[0]


def clip_count(ws: Workspace) -> int:
    with ws.db.transaction() as con:
        return con.execute("SELECT count(*) FROM clips").fetchone()[0]


async def test_activate_and_roll_back(ws):
    app = make_app(ws.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_models(app, pilot)
        await go_to(pilot, screen, "drums@1")
        await pilot.press("a")
        assert "drums@1 is active (its first activation)" in await wait_idle(pilot, screen, "activating drums@1")
        assert "predictions stored" in status(screen)
        await go_to(pilot, screen, "drums@2")
        await pilot.press("a")
        assert "drums@2 is active (was v1)" in await wait_idle(pilot, screen, "activating drums@2")
        assert active_versions(ws) == {"drums@2"}
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: "●" in str(table.get_row_at(1)[0]), "the active marker on drums@2")

        await pilot.press("r")
        assert "drums@1 is active (was v2)" in await wait_idle(pilot, screen, "rolling back")
    assert active_versions(ws) == {"drums@1"}
    assert [entry["version"] for entry in activation_history(ws, "drums")] == [1, 2, 1]
    jobs = activation_jobs(ws)
    assert [(job.state, job.params["ref"], job.params["rollback"]) for job in jobs] == [
        ("completed", "drums@1", False), ("completed", "drums@2", False), ("completed", "drums", True)]
    assert [(job.result["active"], job.result["previous_version"]) for job in jobs] == [
        ("drums@1", None), ("drums@2", 1), ("drums@1", 2)]
    assert stored_predictions(ws, "drums@1") == stored_predictions(ws, "drums@2") == clip_count(ws)
    assert all(job.result["predictions"] == clip_count(ws) for job in jobs)


async def test_rolling_back_without_an_earlier_version_says_why(ws):
    app = make_app(ws.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_models(app, pilot)
        await go_to(pilot, screen, "gbm@1")
        await pilot.press("r")
        assert "gbm has no active version to roll back from" in await wait_idle(pilot, screen, "the refusal")
    assert active_versions(ws) == set()


async def test_delete_asks_first_and_never_deletes_the_active_version(ws):
    activate(ws, "drums@1")
    folder = Path(resolve(ws, "drums@2").artifact_dir)
    app = make_app(ws.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_models(app, pilot)
        await go_to(pilot, screen, "drums@1")
        await pilot.press("d")
        assert isinstance(app.screen, ModelsScreen)  # no dialog for what cannot be done
        assert "drums@1 is active; activate another version (or roll back) before deleting it" in status(screen)

        await go_to(pilot, screen, "drums@2")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        assert app.screen is screen and {v.ref for v in list_versions(ws)} == set(REFS)

        await pilot.press("d")
        await pilot.press("y")
        assert "deleted drums@2" in await wait_idle(pilot, screen, "deleting drums@2")
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, "the table without drums@2")
    assert {v.ref for v in list_versions(ws)} == {"drums@1", "gbm@1"}
    assert not folder.exists()


async def test_compare_two_versions_side_by_side(ws):
    app = make_app(ws.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_models(app, pilot)
        view = screen.query_one(MetricsView)
        await go_to(pilot, screen, "drums@1")
        await wait_for(pilot, lambda: "drums@1 · logreg on dsp" in shown_text(view), "drums@1's metrics")
        await pilot.press("m")
        await go_to(pilot, screen, "drums@2")
        await wait_for(pilot, lambda: "drums@1 → drums@2" in shown_text(view), "the comparison")
        text = shown_text(view)
        a, b = resolve(ws, "drums@1"), resolve(ws, "drums@2")
        c_row = next(line.split() for line in text.splitlines() if line.split()[:1] == ["C"])
        assert c_row == ["C", "1.0", "0.05"]
        for label in a.label_set:
            f1_a = a.metrics["test"]["per_class"][label]["f1"] * 100
            f1_b = b.metrics["test"]["per_class"][label]["f1"] * 100
            row = next(line.split() for line in text.splitlines() if line.split()[:1] == [label])
            assert row[1:3] == [f"{f1_a:.1f}", f"{f1_b:.1f}"]
            if abs(f1_b - f1_a) > 1e-9:
                assert row[3] == f"{f1_b - f1_a:+.1f}"
        await pilot.press("escape")
        await wait_for(pilot, lambda: "drums@2 · logreg on dsp" in shown_text(view), "drums@2's own metrics")


async def test_export_writes_onnx_for_logreg_and_lgbm(ws, tmp_path):
    out = tmp_path / "exported" / "drums.onnx"
    app = make_app(ws.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_models(app, pilot)
        await go_to(pilot, screen, "drums@1")
        await pilot.press("e")
        assert isinstance(app.screen, PromptDialog)
        app.screen.query_one("Input").value = str(out)
        await pilot.press("enter")
        assert f"wrote {out}" in await wait_idle(pilot, screen, "the export")
        assert out.is_file() and out.with_suffix(".json").is_file()

        await go_to(pilot, screen, "gbm@1")
        await pilot.press("e")
        app.screen.query_one("Input").value = str(tmp_path / "gbm.onnx")
        await pilot.press("enter")
        assert f"wrote {tmp_path / 'gbm.onnx'}" in await wait_idle(pilot, screen, "the lgbm export")
    assert (tmp_path / "gbm.onnx").is_file() and (tmp_path / "gbm.json").is_file()


async def test_a_version_that_failed_its_gates_is_activated_only_when_forced_with_a_reason(ws):
    from engine.gates.core import GateReport, GateResult
    from engine.gates.store import save_report

    failing = GateReport(subject={"model": "drums@2"}, settings={}, results=[
        GateResult(gate="model.accuracy_ci_low", title="accuracy CI lower bound", passed=False, value=0.4,
                   threshold=">= 0.8")])
    save_report(ws, failing, model_id=resolve(ws, "drums@2").model_id)
    app = make_app(ws.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_models(app, pilot)
        await go_to(pilot, screen, "drums@2")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the offer to force")
        assert "failed its last gate report" in shown_text(app.screen.query_one(Label))
        await pilot.press("n")
        assert active_versions(ws) == set() and activation_jobs(ws) == []  # refused before any job started

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the offer to force, again")
        await pilot.press("y")
        assert isinstance(app.screen, PromptDialog)
        for key in "known noisy pack":
            await pilot.press(key if key != " " else "space")
        await pilot.press("enter")
        assert "drums@2 is active" in await wait_idle(pilot, screen, "the forced activation")
    assert active_versions(ws) == {"drums@2"}
    (entry,) = activation_history(ws, "drums")
    assert entry["forced"] is True and entry["reason"].startswith("known noisy pack")
    (job,) = activation_jobs(ws)
    assert job.state == "completed" and job.params["forced"] is True
    assert stored_predictions(ws, "drums@2") == clip_count(ws)


def add_unfeaturised_clips(ws: Workspace, folder: Path, count: int) -> None:
    """Noise bursts of 1.5 s (dsp's region) whose features are not cached yet: inference over them takes seconds."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    decay = np.exp(-np.arange(33075) / 9000)
    for index in range(count):
        soundfile.write(folder / f"noise_{index:04d}.wav", (0.3 * rng.standard_normal(33075) * decay).astype(np.float32),
                        22050)
    import_folder(ws, folder, workers=1)


async def test_c_cancels_an_activation_job_the_new_version_stays_active_with_what_was_stored(ws, tmp_path, monkeypatch):
    add_unfeaturised_clips(ws, tmp_path / "noise", 1200)
    monkeypatch.setenv("WORKBENCH_THREADS", "1")  # the job extracts in one process: seconds, time to cancel it
    total = clip_count(ws)
    app = make_app(ws.root)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_models(app, pilot)
        await go_to(pilot, screen, "drums@1")
        await pilot.press("a")
        await wait_for(pilot, lambda: "Extracting" in status(screen), "the job's progress in the status line")
        assert "activating drums@1" in status(screen) and "c cancels" in status(screen)
        assert active_versions(ws) == {"drums@1"}  # the registry changed before inference began
        await pilot.press("c")
        text = await wait_idle(pilot, screen, "the cancelled activation")
    (job,) = activation_jobs(ws)
    assert job.state == "cancelled", job.error
    stored = stored_predictions(ws, "drums@1")
    assert job.result == {"active": "drums@1", "previous_version": None, "predictions": stored, "rejected": 0}
    assert stored < total  # it stopped before the whole library was predicted
    assert f"cancelled: drums@1 stays active with {stored} predictions stored" in text and "infer --library" in text
    assert active_versions(ws) == {"drums@1"}

