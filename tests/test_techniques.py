"""Technique tags: the catalogue, tagging labels (CLI, edit service, label files), stats, the
required-techniques gate and technique deltas in `gates compare`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import clip_id_of, write_hits
from engine.errors import InputError
from engine.gates.core import default_settings
from engine.gates.dataset import DatasetContext, required_techniques
from engine.gates.report import compare_reports, load_report
from engine.library.editing import put_label, tag_label, undo_change
from engine.library.importer import import_folder, import_label_file
from engine.library.stats import workspace_stats
from engine.store.labels import query_labels
from engine.workspace import Workspace
from test_cli import document, expect, invoke


@pytest.fixture
def library(tmp_path) -> tuple[Workspace, Path]:
    workspace = Workspace.open(tmp_path / "ws")
    folder = tmp_path / "hits"
    write_hits(folder, "snare", 3)
    write_hits(folder, "kick", 2)
    import_folder(workspace, folder, workers=1)
    return workspace, folder


def gate(workspace: Workspace, **settings):
    chosen = {**default_settings()["dataset.required_techniques"], **settings}
    return required_techniques(DatasetContext(workspace), chosen)


def test_builtin_catalogue_and_a_workspace_of_its_own(library):
    workspace, _ = library
    catalogue = workspace.technique_catalogue("drums")
    assert {"flam", "ghost_note", "hihat_bark"} <= set(catalogue.names)
    assert catalogue.check(["Flam", "ghost_note", "flam"], "snare") == ("flam", "ghost_note")
    with pytest.raises(InputError, match="does not apply to kick"):
        catalogue.check(["flam"], "kick")
    with pytest.raises(InputError, match="'paradiddle' is not in the drums technique catalogue"):
        catalogue.check(["paradiddle"])

    workspace.techniques_dir.mkdir()
    own = workspace.techniques_dir / "drums.json"
    own.write_text(json.dumps({"taxonomy": "drums", "techniques": {"paradiddle": {"labels": ["sd"]}}}))
    assert workspace.technique_catalogue("drums").check(["paradiddle"], "snare") == ("paradiddle",)
    own.write_text(json.dumps({"taxonomy": "drums", "techniques": {"swirl": {"labels": ["banjo"]}}}))
    with pytest.raises(InputError, match=r"drums.json: technique 'swirl': label 'banjo' is not in taxonomy drums"):
        workspace.technique_catalogue("drums")
    own.write_text("{not json")
    with pytest.raises(InputError, match="drums.json: not valid JSON"):
        workspace.technique_catalogue("drums")
    assert workspace.technique_catalogue("sections").techniques == ()  # no catalogue: no techniques


def test_a_label_carries_techniques_through_edits_and_undo(library):
    workspace, folder = library
    snare = clip_id_of(workspace, "snare_0_00.wav")
    change = put_label(workspace, snare, "snare", start_s=0.0, end_s=0.3, techniques=["flam"])
    assert change.added[0].techniques == ("flam",)

    cover = put_label(workspace, snare, "snare", start_s=0.1, end_s=0.2)  # splits the flam range in two
    with workspace.db.transaction(read_only=True) as con:
        stored = query_labels(con, clip_id=snare)
    assert sorted((l.segment.start_s, l.techniques) for l in stored) == [
        (0.0, ("flam",)), (0.1, ()), (0.2, ("flam",))]
    undo_change(workspace, cover)

    with workspace.db.transaction(read_only=True) as con:
        (flam,) = query_labels(con, clip_id=snare)
    tagged = tag_label(workspace, flam.label_id, ["ghost_note", "flam"])
    assert tagged.added[0].techniques == ("flam", "ghost_note")
    assert "flam, ghost_note" in tagged.description
    undo_change(workspace, tagged)
    with workspace.db.transaction(read_only=True) as con:
        (flam,) = query_labels(con, clip_id=snare)
    assert flam.techniques == ("flam",)
    with pytest.raises(InputError, match="does not apply to snare"):
        tag_label(workspace, flam.label_id, ["hihat_bark"])


def test_label_file_techniques_column(library, tmp_path):
    workspace, folder = library
    manifest = tmp_path / "labels.csv"
    manifest.write_text(
        "path,label,techniques\n"
        f"{folder / 'snare_0_00.wav'},snare,flam;ghost_note\n"
        f"{folder / 'snare_0_01.wav'},snare,\n"
        f"{folder / 'snare_0_02.wav'},snare,paradiddle\n"
        f"{folder / 'kick_0_00.wav'},kick,flam\n"
    )
    report = import_label_file(workspace, manifest)
    assert report.labelled == 2
    assert sorted((r.detail.split(": ")[0], r.reason.value) for r in report.rejections) == [
        ("labels.csv:4", "technique outside the catalogue"), ("labels.csv:5", "technique outside the catalogue")]
    details = " ".join(r.detail for r in report.rejections)
    assert "'paradiddle' is not in the drums technique catalogue" in details
    assert "flam does not apply to kick" in details

    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text(json.dumps({"path": str(folder / "snare_0_01.wav"), "label": "snare",
                                 "techniques": ["rimshot"]}) + "\n")
    assert import_label_file(workspace, jsonl).labelled == 1

    stats = workspace_stats(workspace, "drums").taxonomies[0]
    assert stats.techniques == {"flam": {"snare": 1}, "ghost_note": {"snare": 1}, "rimshot": {"snare": 1}}
    assert stats.to_dict()["technique_counts"] == {"flam": 1, "ghost_note": 1, "rimshot": 1}


def test_required_techniques_gate_fails_then_passes(library, tmp_path):
    workspace, _ = library
    assert gate(workspace).passed is None  # nothing required: skipped
    failing = gate(workspace, required=["flam", "rimshot"])
    assert failing.passed is False and failing.value == 2
    assert [item["technique"] for item in failing.items] == ["flam", "rimshot"]

    required_file = tmp_path / "required.txt"
    required_file.write_text("# the kit must show these\nflam\n")
    put_label(workspace, clip_id_of(workspace, "snare_0_00.wav"), "snare", techniques=["flam"])
    assert gate(workspace, required_file=str(required_file)).passed is True
    still = gate(workspace, required=["rimshot"], required_file=str(required_file))
    assert still.passed is False and "missing: rimshot" in still.detail
    with pytest.raises(InputError, match="'roll_left' is not in the drums technique catalogue"):
        gate(workspace, required=["roll_left"])


def test_cli_tags_lists_counts_gates_and_compares(library, tmp_path):
    workspace, _ = library
    ws = workspace.root
    snare = clip_id_of(workspace, "snare_0_00.wav")
    result = invoke(["labels", "add", snare, "--label", "snare", "--technique", "flam"], ws)
    expect(result, 0)
    label_id = document(result)["label"]["label_id"]
    assert document(result)["label"]["techniques"] == ["flam"]
    bad = invoke(["labels", "add", snare, "--label", "snare", "--technique", "swirl"], ws)
    assert bad.exit_code != 0 and "'swirl' is not in the drums technique catalogue" in bad.stdout + bad.stderr

    assert document(invoke(["labels", "list", snare], ws))["labels"][0]["techniques"] == ["flam"]
    expect(invoke(["labels", "list", snare], ws, json_out=False), 0)
    catalogue = document(invoke(["taxonomy", "techniques", "drums"], ws))
    assert {"name": "flam", "labels": ["snare", "tom", "clap"]}.items() <= next(
        t for t in catalogue["techniques"] if t["name"] == "flam").items()

    base = invoke(["gates", "run", "--require-technique", "ghost_note"], ws)
    expect(base, 0)
    failing = {r["gate"]: r for r in document(base)["report"]["gating_results"]}["dataset.required_techniques"]
    assert failing["passed"] is False and failing["detail"] == "missing: ghost_note"
    base_report = document(base)["files"]["json"]
    expect(invoke(["labels", "tag", str(label_id), "-t", "flam", "-t", "ghost_note"], ws), 0)
    required = tmp_path / "required.json"
    required.write_text('["ghost_note"]')
    new = invoke(["gates", "run", "--require-techniques-file", required], ws)
    expect(new, 0)
    results = {r["gate"]: r for r in document(new)["report"]["gating_results"]}
    assert results["dataset.required_techniques"]["passed"] is True
    assert document(new)["report"]["settings"]["dataset.required_techniques"]["required_file"] == str(required)

    stats = document(invoke(["stats"], ws))
    assert stats["taxonomies"][0]["technique_counts"] == {"flam": 1, "ghost_note": 1}

    comparison = compare_reports(load_report(Path(base_report)), load_report(Path(document(new)["files"]["json"])), 25)
    assert {t["technique"]: t["change"] for t in comparison.techniques} == {"flam": 0, "ghost_note": 1}
    compared = document(invoke(["gates", "compare", base_report, document(new)["files"]["json"]], ws))
    assert {t["technique"]: (t["base"], t["new"]) for t in compared["techniques"]} == {"flam": (1, 1),
                                                                                       "ghost_note": (0, 1)}
    expect(invoke(["gates", "compare", base_report, document(new)["files"]["json"]], ws, json_out=False), 0)
