"""The demo is the README's main job: the whole loop on a synthesised library, end to end (the small
demo: every step of the full one, on less data)."""

from __future__ import annotations

from engine.services.demo import SMALL_DEMO, bars_right, run_demo, true_sections
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
    # both drum models are gated on their held-out split and on the unseen kit
    assert {"gates on the dataset and drums@1", "gates on the dataset and drums@2"} <= set(names)
    results = {step.name: step.result for step in summary.steps}
    assert all("held-out split: " in results[f"gates on the dataset and drums@{n}"] and "; unseen kit: "
               in results[f"gates on the dataset and drums@{n}"] for n in (1, 2))
    sections = results["predict sections of a new track"]  # beside the true arrangement, with the share right
    assert "; true intro 0–" in sections and " bars right (" in sections
    workspace = Workspace.open(tmp_path / "demo")
    active = {v.name: v.ref for v in list_versions(workspace) if v.is_active}
    assert set(active) == {"drums", "sections"}
    report = latest_report(workspace)
    assert report is not None and report.report.subject["model"] == active["drums"]
    assert (workspace.reports_dir / report.path.rsplit("/", 1)[-1]).exists()


def test_bars_right_compares_predicted_sections_with_the_arrangement():
    tracks = {"t": (120.0, 0.5, [("intro", 2), ("drop", 2)])}  # bars of 2 s from 0.5 s
    truth = true_sections(tracks, "t")
    assert [(s["label"], s["start_s"], s["end_s"]) for s in truth] == [("intro", 0.5, 4.5), ("drop", 4.5, 8.5)]
    assert bars_right(truth, truth) == (4, 4)
    late = [{"label": "outro", "start_s": 0.0, "end_s": 3.0}, {"label": "intro", "start_s": 3.0, "end_s": 5.0},
            {"label": "drop", "start_s": 5.0, "end_s": 8.5}]
    assert bars_right(late, truth) == (3, 4)  # bar 1 (its middle at 1.5 s) is taken for outro
