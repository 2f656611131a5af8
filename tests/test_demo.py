"""The demo is the README's main job: the whole loop on a synthesised library, end to end (the small
demo: every step of the full one, on less data)."""

from __future__ import annotations

from engine.services.demo import SMALL_DEMO, run_demo
from engine.gates.store import latest_report
from engine.models.registry import list_versions
from engine.workspace import Workspace


def test_the_demo_runs_the_whole_loop(tmp_path):
    summary = run_demo(tmp_path / "demo", clips_per_class_per_pack=2, size=SMALL_DEMO, workers=1)
    names = [step.name for step in summary.steps]
    assert not summary.cancelled
    for expected in ("synthesise", "import", "extract dsp features", "evaluate on an unseen kit",
                     "predict 3 unseen hits", "predict sections of a new track"):
        assert expected in names
    assert any(name.startswith("gates on the dataset and drums@") for name in names)
    workspace = Workspace.open(tmp_path / "demo")
    active = {v.name: v.ref for v in list_versions(workspace) if v.is_active}
    assert set(active) == {"drums", "sections"}
    report = latest_report(workspace)
    assert report is not None and report.report.subject["model"] == active["drums"]
    assert (workspace.reports_dir / report.path.rsplit("/", 1)[-1]).exists()
