"""Dataset gates: each one passes on a clean small library and fails on one built to fail it."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import copy_workspace, write_tone
from engine.audio.beatgrid import BeatGrid
from engine.concepts import Segment
from engine.datasets.similarity import near_duplicate_pairs
from engine.gates import dataset_context
from engine.gates.dataset import DatasetContext
from engine.library.grids import set_grid
from engine.library.importer import import_folder
from engine.library.labels import make_segment
from engine.store.clips import get_clip
from engine.workspace import Workspace
from gates_library import (PACKS, build, clip_of, copy_at_gain, import_files, library_files, more_hits, relabel,
                           run, settings)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("gates_dataset"))


@pytest.fixture(scope="module")
def clean(template) -> dict:
    return run(Workspace.open(template))


@pytest.fixture
def workspace(template, tmp_path) -> Workspace:
    return Workspace.open(copy_workspace(template, tmp_path))


def test_a_clean_library_passes_every_gate_that_applies(clean):
    failed = {gate_id: r.detail for gate_id, r in clean.items() if r.passed is False}
    assert not failed
    assert {g for g, r in clean.items() if r.passed is None} == {
        "dataset.required_labels", "dataset.required_techniques", "dataset.segment_length", "dataset.beat_grid"}


def test_counts_below_the_taxonomy_minimum_fail_with_the_short_classes(template, clean):
    result = run(Workspace.open(template), settings(dataset__min_class_count={"floor": 0}))["dataset.min_class_count"]
    assert result.passed is False and result.value == 3  # 18 each, the drums taxonomy asks 30
    assert {item["label"]: item["minimum"] for item in result.items} == {"kick": 30, "snare": 30, "hihat_closed": 30}
    assert clean["dataset.min_class_count"].passed is True


def test_per_label_minimums_from_a_table_and_from_a_file(template, tmp_path):
    workspace = Workspace.open(template)
    table = run(workspace, settings(dataset__min_class_count={"floor": 10, "per_label": {"snare": 19}}))
    assert [i["label"] for i in table["dataset.min_class_count"].items] == ["snare"]
    minimums = tmp_path / "minimums.json"
    minimums.write_text(json.dumps({"kick": 25}))
    from_file = run(workspace, settings(dataset__min_class_count={"floor": 10, "per_label_file": str(minimums)}))
    assert [i["label"] for i in from_file["dataset.min_class_count"].items] == ["kick"]
    minimums.write_text("kick: lots")
    broken = run(workspace, settings(dataset__min_class_count={"per_label_file": str(minimums)}))
    assert broken["dataset.min_class_count"].passed is False
    assert str(minimums) in broken["dataset.min_class_count"].detail


def test_required_labels_and_two_classes(template):
    workspace = Workspace.open(template)
    results = run(workspace, settings(dataset__required_labels={"required": ["kick", "crash"]},
                                      dataset__class_count={"min_classes": 4}))
    assert results["dataset.required_labels"].passed is False
    assert results["dataset.required_labels"].items == [{"label": "crash"}]
    assert results["dataset.class_count"].passed is False and results["dataset.class_count"].value == 3
    assert run(workspace, settings(dataset__required_labels={"required": ["kick"]}))["dataset.required_labels"].passed


def test_labels_outside_the_taxonomy_are_counted(workspace, template):
    clip = clip_of(workspace, library_files(template.parent, "kick", PACKS[0])[0])
    relabel(workspace, clip, "mystery", segment=Segment.seconds(0.0, 0.1))
    result = run(workspace)["dataset.unknown_labels"]
    assert result.passed is False and result.value == 1 and result.items == [{"label": "mystery", "count": 1}]
    assert run(workspace, settings(dataset__unknown_labels={"max_segments": 1}))["dataset.unknown_labels"].passed


def test_one_pack_dominating_a_class_and_imbalance(workspace, tmp_path):
    hits = more_hits(tmp_path / "claps", "clap", 5)
    import_files(workspace, tmp_path, {f"clap/onlypack/{p.name}": soundfile.read(p)[0] for p in hits})
    results = run(workspace, settings(dataset__class_imbalance={"max_ratio": 3.0}))
    dominance = results["dataset.source_dominance"]
    assert dominance.passed is False and dominance.value == 1.0
    assert dominance.items == [{"label": "clap", "source": "onlypack", "count": 5, "total": 5, "share": 1.0}]
    imbalance = results["dataset.class_imbalance"]
    assert imbalance.passed is False and imbalance.value == pytest.approx(18 / 5, abs=0.01)


def test_a_byte_identical_copy_in_another_class_folder_is_a_conflicting_exact_duplicate(workspace, template, tmp_path):
    original = library_files(template.parent, "kick", PACKS[0])[0]
    copy = tmp_path / "planted" / "snare" / PACKS[0].name / "copy.wav"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(original.read_bytes())
    import_files(workspace, tmp_path, {})
    result = run(workspace)["dataset.exact_duplicates"]
    assert result.passed is False
    assert result.items[0]["clip_id"] == clip_of(workspace, original) and result.items[0]["conflict"] is True
    assert result.items[0]["labels"] == ["kick", "snare"]


def test_copies_in_a_class_folder_of_their_label_are_labels_not_duplicates(workspace, template, tmp_path):
    """Curating by copying: the copy in a class folder labels its clip; only two copies outside class
    folders make a duplicate, and only copies in folders of different labels conflict."""
    originals = library_files(template.parent, "kick", PACKS[0])[:2]
    curated_copy = tmp_path / "planted" / "kick" / "copy.wav"
    curated_copy.parent.mkdir(parents=True)
    curated_copy.write_bytes(originals[0].read_bytes())
    import_files(workspace, tmp_path, {})
    result = run(workspace)["dataset.exact_duplicates"]
    assert result.passed is True and result.items == [] and "1 copied into class folders" in result.detail

    for pack in ("packA", "packB"):  # the same file in two plain packs: a duplicate, and no conflict
        (tmp_path / "plain" / pack).mkdir(parents=True)
        (tmp_path / "plain" / pack / "hit.wav").write_bytes(originals[1].read_bytes())
    import_folder(workspace, tmp_path / "plain", workers=1)
    result = run(workspace)["dataset.exact_duplicates"]
    assert [(item["clip_id"], item["conflict"]) for item in result.items] == [(clip_of(workspace, originals[1]), False)]
    assert result.passed is False and "0 conflicting" in result.detail


def test_near_duplicates_within_a_split_fail_the_rate_but_not_leakage(workspace, template, tmp_path):
    originals = library_files(template.parent, "snare", PACKS[1])[:2]
    for n, original in enumerate(originals):
        copy_at_gain(original, tmp_path / "planted" / "snare" / PACKS[1].name / f"quiet{n}.wav")
    import_files(workspace, tmp_path, {})
    results = run(workspace, settings(dataset__near_duplicates={"max_rate": 0.05}))
    near = results["dataset.near_duplicates"]
    assert near.passed is False and near.value == pytest.approx(4 / 56, abs=1e-3)
    pairs = {frozenset((item["a"]["clip_id"], item["b"]["clip_id"])) for item in near.items}
    assert frozenset((clip_of(workspace, originals[0]), clip_of(workspace, tmp_path / "planted" / "snare" / PACKS[1].name / "quiet0.wav"))) in pairs
    assert results["dataset.split_leakage"].passed is True


def test_past_the_pair_limit_the_most_similar_pairs_are_listed_and_every_pair_counts(workspace, template, tmp_path,
                                                                                       monkeypatch):
    originals = library_files(template.parent, "snare", PACKS[1])[:2]
    for n, original in enumerate(originals):
        copy_at_gain(original, tmp_path / "planted" / "snare" / PACKS[1].name / f"quiet{n}.wav")
    import_files(workspace, tmp_path, {})
    chosen = settings(dataset__near_duplicates={"max_rate": 0.05})
    whole = run(workspace, chosen)["dataset.near_duplicates"]
    monkeypatch.setattr(dataset_context, "near_duplicate_pairs", functools.partial(near_duplicate_pairs, limit=1))
    capped = run(workspace, chosen)["dataset.near_duplicates"]
    assert capped.value == whole.value == pytest.approx(4 / 56, abs=1e-3)
    assert len(whole.items) == 2 and capped.items == whole.items[:1]
    assert capped.detail.startswith("2 pairs (the 1 most similar kept)")


def test_a_near_duplicate_planted_in_another_pack_leaks_across_splits(workspace, template, tmp_path):
    original = library_files(template.parent, "kick", PACKS[0])[0]
    copy = copy_at_gain(original, tmp_path / "planted" / "kick" / PACKS[1].name / "louder.wav", gain=1.5)
    import_files(workspace, tmp_path, {})
    context = DatasetContext(workspace, workers=1)
    splits = {context.items[n].clip_id: context.splits[n] for n in range(len(context.items))}
    assert splits[clip_of(workspace, original)] != splits[clip_of(workspace, copy)]  # packs 0 and 1: two splits
    results = run(workspace)
    leakage = results["dataset.split_leakage"]
    assert leakage.passed is False and leakage.value == 1
    leaked = leakage.items[0]
    assert leaked["kind"] == "near duplicate" and leaked["similarity"] >= 0.999
    assert {leaked["a"]["clip_id"], leaked["b"]["clip_id"]} == {clip_of(workspace, original), clip_of(workspace, copy)}


def test_silent_clipped_and_short_clips_are_named(workspace, tmp_path):
    rate = 22050
    t = np.arange(rate // 2) / rate
    files = {"kick/bad/silent.wav": np.zeros(rate // 2, dtype=np.float32),
             "kick/bad/clipped.wav": np.clip(3 * np.sin(2 * np.pi * 100 * t), -1, 1).astype(np.float32),
             "kick/bad/short.wav": (0.5 * np.sin(2 * np.pi * 440 * t[:200])).astype(np.float32)}
    import_files(workspace, tmp_path, files)
    results = run(workspace)
    for gate_id, name in (("dataset.silent_clips", "silent.wav"), ("dataset.clipped_clips", "clipped.wav"),
                          ("dataset.short_clips", "short.wav")):
        assert results[gate_id].passed is False, gate_id
        assert [Path(item["path"]).name for item in results[gate_id].items] == [name], gate_id


def _track(workspace: Workspace, tmp_path: Path) -> str:
    path = write_tone(tmp_path / "tracks" / "track.wav", seconds=8.0, freq=110.0)
    from engine.library.importer import import_folder

    import_folder(workspace, path.parent, source="tracks", workers=1)
    clip, _ = set_grid(workspace, str(path), BeatGrid.constant(120.0))
    return clip.clip_id


def _beat_label(workspace: Workspace, clip_id: str, label: str, start: float, end: float) -> None:
    with workspace.db.transaction(read_only=True) as con:
        clip = get_clip(con, clip_id)
        from engine.store.grids import get_grid

        segment = make_segment(clip, get_grid(con, clip_id), start_beat=start, end_beat=end)
    relabel(workspace, clip_id, label, taxonomy="sections", segment=segment)


def test_beat_ranges_on_and_off_the_grid(workspace, tmp_path):
    clip_id = _track(workspace, tmp_path)
    for start, label in ((0, "intro"), (4, "build"), (8, "drop")):
        _beat_label(workspace, clip_id, label, start, start + 4)
    sections = settings(dataset__min_class_count={"floor": 1})
    assert run(workspace, sections, "sections")["dataset.beat_grid"].passed is True
    _beat_label(workspace, clip_id, "break", 12.5, 14.5)
    off = run(workspace, sections, "sections")["dataset.beat_grid"]
    assert off.passed is False and [(i["start_beat"], i["label"]) for i in off.items] == [(12.5, "break")]
    assert run(workspace, settings(dataset__min_class_count={"floor": 1}, dataset__beat_grid={"step_beats": 0.5}),
               "sections")["dataset.beat_grid"].passed is True
    with workspace.db.transaction() as con:  # a grid changed behind the labels' back
        con.execute("UPDATE beat_grids SET bpm = 100 WHERE clip_id = ?", [clip_id])
    stale = run(workspace, settings(dataset__min_class_count={"floor": 1}, dataset__beat_grid={"step_beats": 0.5}),
                "sections")["dataset.beat_grid"]
    assert stale.passed is False and all("no longer match" in i["why"] for i in stale.items)


def test_segments_too_short_or_past_the_end(workspace, tmp_path):
    clip_id = _track(workspace, tmp_path)
    relabel(workspace, clip_id, "drop", taxonomy="sections", segment=Segment.seconds(1.0, 3.0))
    small = settings(dataset__min_class_count={"floor": 1})
    assert run(workspace, small, "sections")["dataset.segment_length"].passed is True
    relabel(workspace, clip_id, "break", taxonomy="sections", segment=Segment.seconds(4.0, 4.01))
    relabel(workspace, clip_id, "outro", taxonomy="sections", segment=Segment.seconds(7.0, 9.5))
    wrong = run(workspace, small, "sections")["dataset.segment_length"]
    assert wrong.passed is False
    assert sorted((i["label"], i["past_end"]) for i in wrong.items) == [("break", False), ("outro", True)]


def test_planted_mislabels_fail_the_rate(workspace, template, clean):
    assert clean["dataset.likely_mislabels"].passed is True
    planted = {clip_of(workspace, library_files(template.parent, kind, pack)[1]): wrong
               for kind, pack, wrong in (("kick", PACKS[0], "snare"), ("snare", PACKS[1], "hihat_closed"),
                                         ("hihat_closed", PACKS[2], "kick"), ("kick", PACKS[2], "hihat_closed"))}
    for clip_id, wrong in planted.items():
        relabel(workspace, clip_id, wrong)
    result = run(workspace)["dataset.likely_mislabels"]
    assert result.passed is False and result.value > 0.05
    assert set(planted) <= {item["clip_id"] for item in result.items}


def test_the_subject_names_what_was_checked(template):
    context = DatasetContext(Workspace.open(template), workers=1)
    subject = context.subject()
    assert subject["class_counts"] == {"hihat_closed": 18, "kick": 18, "snare": 18}
    assert subject["split_by"] == "group" and subject["segments"] == 54 and subject["unknown_labels"] == {}
    assert len(subject["dataset_fingerprint"]) == 16


def test_a_workspace_without_labels_gets_a_report_not_a_crash(tmp_path):
    from engine.gates.runner import run_and_store

    run = run_and_store(Workspace.open(tmp_path / "empty"))
    results = {result.gate: result for result in run.report.results}
    assert results["dataset.class_count"].passed is False
    assert results["dataset.near_duplicates"].passed is True and results["dataset.min_class_count"].passed is None
    assert run.json_path.exists() and run.html_path.exists()
