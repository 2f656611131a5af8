"""Screens that list model versions follow the workspace: a version registered, activated or gated
while the Gates or Models screen is open shows there without leaving it (issue 11, item 12), and
the Gates table writes a value as its detail does (item 14)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Label, OptionList, Select

from engine.features.spec import FeatureSpec
from engine.gates.core import GateReport, GateResult
from engine.gates.store import save_report
from engine.models.registry import activate, register
from engine.workspace import Workspace
from tui.app import make_app
from tui_pilot import shown_text, wait_for


def register_version(workspace: Workspace, tmp_path: Path, name: str = "drums"):
    artifacts = tmp_path / f"artifact-{len(list(tmp_path.glob('artifact-*')))}"
    artifacts.mkdir()
    return register(workspace, name=name, task="drums", kind="logreg", artifact_dir=artifacts,
                    feature_spec=FeatureSpec.parse("dsp"), classes=["kick", "snare"], label_counts={},
                    hyperparams={}, metrics={}, dataset_fingerprint="x", job_id=None)


def offered(screen) -> list[str]:
    """The versions the Gates screen's model choice offers."""
    options = screen.query_one("#gates-model", Select).query_one(OptionList)
    return [str(options.get_option_at_index(n).prompt) for n in range(options.option_count)]


async def test_gates_and_models_list_versions_made_while_they_are_open(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")
    first = register_version(workspace, tmp_path)
    accuracy = GateResult("model.accuracy", "Accuracy (95% CI lower bound)", True, round(0.91666, 4), ">= 0.8",
                          detail="accuracy 0.950 [0.917, 0.983] on 120 examples")
    save_report(workspace, GateReport({"model": first.ref}, [accuracy], {}), model_id=first.model_id)
    app = make_app(workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        screen = app.screen
        table = screen.query_one("#gates-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the stored report")
        assert [str(cell) for cell in table.get_row_at(0)][1:3] == ["accuracy", "0.917"]  # as in the detail
        assert "drums@1" in shown_text(screen.query_one("#gates-verdict", Label))

        register_version(workspace, tmp_path)  # trained elsewhere while the screen is open
        await wait_for(pilot, lambda: "drums@2" in offered(screen), "drums@2 among the Gates screen's models")
        assert screen.query_one("#gates-model", Select).value == "drums@1"  # the choice stays

        await pilot.press("5")
        versions = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: versions.row_count == 2, "the Models screen's versions")
        register_version(workspace, tmp_path)
        await wait_for(pilot, lambda: versions.row_count == 3, "drums@3 on the Models screen")
        activate(workspace, "drums@3")  # as `models activate` would, from another terminal
        await wait_for(pilot, lambda: "●" in str(versions.get_row_at(2)[0]), "drums@3 marked active")

        await pilot.press("4")
        await wait_for(pilot, lambda: "drums@3 (active)" in offered(app.screen), "the active marker on Gates")
