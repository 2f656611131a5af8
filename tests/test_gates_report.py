"""Gate reports: `gates run|compare|list` through the CLI (exit codes, JSON, files), the HTML page
(parsed), the stored history, compare, and activation of a version whose gates failed."""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import copy_workspace
from engine.features.spec import FeatureSpec
from engine.gates.core import GateReport, GateResult, all_gates
from engine.gates.report import compare_reports, confusion_svg, load_report, render_html
from engine.gates.store import latest_report, save_report
from engine.models.registry import activation_history, register, resolve
from engine.services.activation import activate
from engine.workspace import Workspace
from gates_library import build

runner = CliRunner()
REPORT_KEYS = {"schema", "created_at", "subject", "passed", "halted", "summary", "gating_results", "settings"}
RESULT_KEYS = {"gate", "title", "passed", "value", "threshold", "detail", "items", "status"}
SUBJECT_KEYS = {"scope", "workspace", "taxonomy", "features", "segments", "clips", "sources", "split_by",
                "class_counts", "unknown_labels", "technique_counts", "dataset_fingerprint"}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("gates_report"))


@pytest.fixture
def ws(template, tmp_path) -> Path:
    return copy_workspace(template, tmp_path)


@pytest.fixture
def small_config(tmp_path) -> Path:
    path = tmp_path / "gates.toml"
    path.write_text("[dataset.min_class_count]\nfloor = 10\n")
    return path


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str


def invoke(ws: Path, *args) -> Outcome:
    """Run a command in-process and keep only its exit code and output: a kept result's traceback
    would keep the command's workspace (and its open feature cache) alive for the next command."""
    result = runner.invoke(app, ["--headless", "--workspace", str(ws), *[str(a) for a in args]])
    outcome = Outcome(result.exit_code, result.stdout)
    del result
    gc.collect()
    return outcome


def gates(ws: Path, *args) -> Outcome:
    return invoke(ws, "gates", *args)


def document(result: Outcome) -> dict:
    return json.loads(result.stdout)


class Page(HTMLParser):
    """The tables, status cells and svg elements of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.statuses: list[tuple[str, str]] = []
        self.rects = 0
        self._in_status = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "td" and attributes.get("class") == "status":
            self._in_status = attributes.get("style", "")
        if tag == "rect":
            self.rects += 1

    def handle_data(self, data):
        if self._in_status is not None and data.strip():
            self.statuses.append((data.strip(), self._in_status))
            self._in_status = None


def test_strict_exit_codes_follow_the_gates(ws, small_config):
    failing = gates(ws, "run", "--strict", "--json")  # the taxonomy's minimum of 30 per class fails
    assert failing.exit_code == 1, failing.output
    failed = document(failing)
    assert failed["ok"] is False and failed["report"]["passed"] is False
    assert "dataset.min_class_count" in [r["gate"] for r in failed["report"]["gating_results"] if r["status"] == "FAIL"]
    assert gates(ws, "run", "--json").exit_code == 0  # without --strict a failing report still exits 0
    passing = gates(ws, "run", "--strict", "--config", small_config, "--json")
    assert passing.exit_code == 0, passing.output
    assert document(passing)["report"]["passed"] is True


def test_halt_on_first_failure_stops_there(ws):
    result = gates(ws, "run", "--halt-on-first-failure", "--json")
    report = document(result)["report"]
    assert report["halted"] is True and report["gating_results"][-1]["gate"] == "dataset.min_class_count"
    assert report["gating_results"][-1]["status"] == "FAIL"


def test_reports_are_written_stored_and_keep_their_schema(ws, small_config, tmp_path):
    html_path, out_path = tmp_path / "out" / "health.html", tmp_path / "out" / "health.json"
    result = gates(ws, "run", "--config", small_config, "--html", html_path, "--out", out_path, "--json")
    assert result.exit_code == 0, result.output
    answer = document(result)
    on_disk = json.loads(out_path.read_text())
    assert set(on_disk) == REPORT_KEYS and set(on_disk["subject"]) == SUBJECT_KEYS
    assert all(set(r) == RESULT_KEYS for r in on_disk["gating_results"])
    assert [r["gate"] for r in on_disk["gating_results"]] == [g.id for g in all_gates("dataset")]
    assert on_disk["settings"]["dataset.min_class_count"]["floor"] == 10
    assert Path(answer["files"]["json"]).parent == Path(ws).resolve() / "reports"
    assert json.loads(Path(answer["files"]["json"]).read_text()) == on_disk
    page = Page()
    page.feed(html_path.read_text())
    assert "table" in page.tags and len(page.statuses) == len(on_disk["gating_results"])
    assert {status for status, _ in page.statuses} <= {"PASS", "SKIP"}
    stored = latest_report(Workspace.open(ws))
    assert stored.report_id == answer["report_id"] and stored.passed is True and stored.scope == "dataset"
    assert stored.report.to_dict()["gating_results"] == on_disk["gating_results"]
    assert not list(Path(ws, "reports").glob(".*.tmp"))  # atomic writes leave no temporary files


def test_bad_config_is_an_error_naming_the_file(ws, tmp_path):
    config = tmp_path / "typo.toml"
    config.write_text("[dataset.min_class_cuont]\nfloor = 5\n")
    result = gates(ws, "run", "--config", config, "--json")
    assert result.exit_code == 1 and str(config) in document(result)["error"]["message"]
    missing = gates(ws, "run", "--config", tmp_path / "nope.toml", "--json")
    assert missing.exit_code == 1 and "nope.toml" in document(missing)["error"]["message"]


def test_gates_list_documents_every_default(ws):
    listed = document(gates(ws, "list", "--json"))["gates"]
    dataset = {g["id"]: g for g in listed if g["scope"] == "dataset"}
    assert len(dataset) == 16
    assert dataset["dataset.near_duplicates"]["defaults"] == {"similarity": 0.999, "max_rate": 0.02}
    for entry in dataset.values():
        for name in entry["defaults"]:
            assert name in entry["doc"] or name.replace("_", " ") in entry["doc"], (entry["id"], name)


def _report(counts: dict, unknown: int = 0, failing: tuple = ()) -> GateReport:
    results = [GateResult(gate_id, gate_id, gate_id not in failing, 0, "x") for gate_id in
               ("dataset.near_duplicates", "dataset.split_leakage")]
    return GateReport({"class_counts": counts, "unknown_labels": {"odd": unknown} if unknown else {}}, results, {})


def test_compare_flags_drops_new_failures_and_more_unknown_labels():
    base = _report({"kick": 100, "snare": 80, "clap": 20})
    assert compare_reports(base, _report({"kick": 90, "snare": 70, "clap": 20, "tom": 5}), 25).passed
    dropped = compare_reports(base, _report({"kick": 70, "snare": 80}), 25)
    assert [c["label"] for c in dropped.dropped] == ["clap", "kick"]  # clap vanished: -100%
    assert not dropped.passed and len(dropped.reasons()) == 2
    newly = compare_reports(base, _report({"kick": 100, "snare": 80, "clap": 20}, failing=("dataset.split_leakage",)), 25)
    assert newly.newly_failing == ["dataset.split_leakage"] and not newly.passed
    unknown = compare_reports(base, _report({"kick": 100, "snare": 80, "clap": 20}, unknown=3), 25)
    assert unknown.unknown_rose and not unknown.passed


def test_gates_compare_command(ws, small_config, tmp_path):
    base = tmp_path / "base.json"
    gates(ws, "run", "--config", small_config, "--out", base)
    same = gates(ws, "compare", base, base, "--max-drop", 25)
    assert same.exit_code == 0 and "PASS" in same.stdout
    shrunk = json.loads(base.read_text())
    shrunk["subject"]["class_counts"]["kick"] = 9
    newer = tmp_path / "new.json"
    newer.write_text(json.dumps(shrunk))
    worse = gates(ws, "compare", base, newer, "--max-drop", 25, "--json")
    assert worse.exit_code == 1
    assert document(worse)["reasons"] == ["kick fell 50.0% (18 → 9), beyond 25%"]
    assert gates(ws, "compare", base, newer, "--max-drop", 60).exit_code == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    bad = gates(ws, "compare", base, broken, "--json")
    assert bad.exit_code == 1 and str(broken) in document(bad)["error"]["message"]
    with pytest.raises(Exception, match="not a workbench gate report"):
        broken.write_text("[]")
        load_report(broken)


def test_html_draws_a_confusion_matrix_and_colours_failures():
    matrix = [[5, 1], [2, 7]]
    results = [GateResult("model.accuracy", "Accuracy", False, 0.6, ">= 0.8", "low",
                          [{"confusion": matrix, "classes": ["kick", "snare"]}]),
               GateResult("dataset.short_clips", "Short", True, 0, "<= 0")]
    page = Page()
    page.feed(render_html(GateReport({"taxonomy": "drums"}, results, {})))
    assert page.tags.count("svg") == 1 and page.rects == 4
    assert page.statuses == [("FAIL", "background:#b91c1c"), ("PASS", "background:#15803d")]
    assert "<script" not in render_html(GateReport({"t": "<script>"}, results, {}))
    assert confusion_svg(matrix, ["a", "b"]).count("<text") == 4 + 2 + 2


def test_a_version_whose_gates_failed_needs_force(ws, tmp_path):
    import numpy as np

    from engine.features.dsp import DspExtractor
    from engine.models.kinds import make_model, save_model

    workspace = Workspace.open(ws)
    artifacts = tmp_path / "artifact"
    rng = np.random.default_rng(0)  # a real model of the dsp width: activation tries it before any change
    rows = rng.standard_normal((20, len(DspExtractor().feature_names())))
    save_model(make_model("logreg").fit(rows, np.arange(20) % 2, n_classes=2), artifacts)
    version = register(workspace, name="drums", task="drums", kind="logreg", artifact_dir=artifacts,
                       feature_spec=FeatureSpec.parse("dsp"), classes=["kick", "snare"], label_counts={},
                       hyperparams={}, metrics={}, dataset_fingerprint="x", job_id=None)
    failing = GateReport({}, [GateResult("dataset.short_clips", "Short", False, 3, "<= 0")], {})
    report_id = save_report(workspace, failing, model_id=version.model_id)
    assert resolve(workspace, "drums@1").last_gate_report_id == report_id
    assert latest_report(workspace, version.model_id).report_id == report_id
    with pytest.raises(Exception, match="failed its last gate report"):
        activate(workspace, "drums@1")
    active, _ = activate(workspace, "drums@1", forced=True, reason="hotfix for the gig")
    assert active.is_active
    history = activation_history(workspace, "drums")
    assert history[-1]["forced"] is True and history[-1]["reason"].startswith("hotfix for the gig")
    refused = invoke(ws, "models", "activate", "drums", "1", "--no-inference", "--json")
    assert refused.exit_code == 1 and "--force" in document(refused)["error"]["message"]


@pytest.mark.parametrize("low, high", [(0.91666, 0.98), (0.99996, 1.0)])
def test_the_value_column_has_the_details_precision(low, high):
    """The table's value is the CI bound the detail prints, digit for digit ("1.000", not "1")."""
    result = GateResult("model.accuracy", "Accuracy (95% CI lower bound)", True, round(low, 4), ">= 0.8",
                        detail=f"accuracy 0.950 [{low:.3f}, {high:.3f}] on 120 examples")
    assert f"[{result.value_text}," in result.detail
    assert f'<td class="num">{result.value_text}</td>' in render_html(GateReport({}, [result], {}))
    assert GateResult("dataset.silent_clips", "Silent", True, 2, "<= 0").value_text == "2"


def test_two_reports_of_the_same_second_keep_files_of_their_own(tmp_path):
    from engine.gates.report import write_to_workspace
    from engine.workspace import Workspace

    workspace = Workspace.open(tmp_path / "ws")
    first = GateReport({"class_counts": {"kick": 1}}, [], {}, created_at="2026-11-27T15:00:00+00:00")
    second = GateReport({"class_counts": {"kick": 2}}, [], {}, created_at="2026-11-27T15:00:00+00:00")
    (json_a, _), (json_b, html_b) = write_to_workspace(workspace, first), write_to_workspace(workspace, second)
    assert json_a.name == "gates-20261127T150000.json" and json_b.name == "gates-20261127T150000-2.json"
    assert html_b.name == "gates-20261127T150000-2.html"
    assert json.loads(json_a.read_text())["subject"]["class_counts"] == {"kick": 1}
