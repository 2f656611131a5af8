"""Splits and dataset export: stratified, grouped by source, pinned splits, augmentation, atomic writes."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from conftest import curated_library
from engine.audio.synth import DEMO_PACKS
from engine.concepts import Split
from engine.datasets.export import export_dataset
from engine.datasets.splits import assign_splits
from engine.errors import InputError
from engine.features.spec import FeatureSpec
from engine.library.importer import import_folder


def test_group_split_never_puts_one_group_in_two_splits():
    rng = np.random.default_rng(3)
    labels = [str(x) for x in rng.choice(["kick", "snare", "hat", "tom"], size=600)]
    groups = [f"pack{x}" for x in rng.integers(0, 12, size=600)]
    for seed in range(5):
        splits = assign_splits(labels, groups, seed=seed)
        by_group: dict[str, set] = {}
        for group, split in zip(groups, splits):
            by_group.setdefault(group, set()).add(split)
        assert all(len(s) == 1 for s in by_group.values())
        assert set(splits) == {Split.TRAIN, Split.VAL, Split.TEST}


def test_small_groups_give_stratified_fractions_per_class():
    labels = ["a"] * 200 + ["b"] * 100
    groups = [str(i) for i in range(300)]
    splits = assign_splits(labels, groups, val=0.2, test=0.1, seed=1)
    counts = Counter(zip(labels, splits))
    assert counts[("a", Split.VAL)] == pytest.approx(40, abs=1) and counts[("b", Split.VAL)] == pytest.approx(20, abs=1)
    assert counts[("a", Split.TEST)] == pytest.approx(20, abs=1) and counts[("b", Split.TEST)] == pytest.approx(10, abs=1)


def test_pinned_splits_are_kept_for_the_whole_group():
    labels = ["a", "a", "b", "b"]
    splits = assign_splits(labels, ["g1", "g1", "g2", "g3"], [None, Split.TEST, None, None])
    assert splits[0] == splits[1] == Split.TEST


def test_bad_fractions_are_refused():
    with pytest.raises(InputError):
        assign_splits(["a"], ["g"], val=0.6, test=0.5)


@pytest.fixture
def library(workspace, tmp_path):
    curated_library(tmp_path / "curated", classes=("kick", "snare", "hihat_closed"), per_pack=4, packs=DEMO_PACKS)
    import_folder(workspace, tmp_path / "curated", curated=True, workers=1)
    return workspace


def read_items(folder, split):
    return [json.loads(line) for line in (folder / f"{split}_items.jsonl").read_text().splitlines()]


def test_export_by_group_writes_a_complete_dataset(library, tmp_path):
    out = tmp_path / "dataset"
    report = export_dataset(library, out, FeatureSpec.parse("dsp"), split_by="group", workers=1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == report.manifest
    assert manifest["classes"] == ["hihat_closed", "kick", "snare"]
    assert manifest["split_by"] == "source" and len(manifest["fingerprint"]) == 16
    total = 0
    sources_by_split = {}
    for split in ("train", "val", "test"):
        features = np.load(out / f"{split}_features.npy", allow_pickle=False)
        labels = np.load(out / f"{split}_labels.npy", allow_pickle=False)
        items = read_items(out, split)
        assert features.shape[0] == labels.shape[0] == len(items) == manifest["splits"][split]
        assert [manifest["classes"][i] for i in labels] == [item["label"] for item in items]
        sources_by_split[split] = {item["source"] for item in items}
        total += len(items)
    assert total == 5 * 3 * 4
    seen = [s for sources in sources_by_split.values() for s in sources]
    assert len(seen) == len(set(seen)), "a source landed in two splits"


def test_augmented_copies_go_to_train_only_and_reexport_is_stable(library, tmp_path):
    out = tmp_path / "augmented"
    plain = export_dataset(library, tmp_path / "plain", FeatureSpec.parse("dsp"), workers=1)
    report = export_dataset(library, out, FeatureSpec.parse("dsp"), augment=2, workers=1)
    train = read_items(out, "train")
    assert sum(item["augmented"] for item in train) == 2 * plain.manifest["splits"]["train"]
    assert not any(item["augmented"] for split in ("val", "test") for item in read_items(out, split))
    features = np.load(out / "train_features.npy")
    assert np.isfinite(features).all()
    again = export_dataset(library, out, FeatureSpec.parse("dsp"), augment=2, workers=1)
    assert again.manifest["fingerprint"] == report.manifest["fingerprint"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".augmented")], "staging folders left behind"


def test_a_failed_export_leaves_the_previous_dataset_intact(library, tmp_path, monkeypatch):
    out = tmp_path / "dataset"
    export_dataset(library, out, FeatureSpec.parse("dsp"), workers=1)
    before = (out / "manifest.json").read_bytes()
    from engine.datasets import export as export_module

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module.np, "save", disk_full)
    with pytest.raises(OSError):
        export_dataset(library, out, FeatureSpec.parse("dsp"), seed=5, workers=1)
    assert (out / "manifest.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dataset")] == []


def test_a_curated_folder_and_an_export_read_alike(library, tmp_path):
    from engine.datasets.source import open_dataset

    curated = open_dataset(tmp_path / "curated", library, taxonomy="drums", workers=1)
    assert curated.kind == "curated" and curated.classes == ["hihat_closed", "kick", "snare"]
    assert len(curated.labels) == 60 and curated.features.shape == (60, 99)
    assert set(curated.groups) == {pack.name for pack in DEMO_PACKS}
    export_dataset(library, tmp_path / "export", FeatureSpec.parse("dsp"), split_by="group", workers=1)
    exported = open_dataset(tmp_path / "export", library)
    assert exported.kind == "export" and sorted(exported.labels) == sorted(curated.labels)
    assert set(exported.splits) == {Split.TRAIN, Split.VAL, Split.TEST}
    # the same clips through the same cache give the same features, in whatever order
    assert np.allclose(np.sort(exported.features.sum(axis=1)), np.sort(curated.features.sum(axis=1)), rtol=1e-5)
    with pytest.raises(InputError, match="holds dsp features, not mel"):
        open_dataset(tmp_path / "export", library, spec=FeatureSpec.parse("mel"))
    with pytest.raises(InputError, match="neither a dataset export"):
        (tmp_path / "emptydir").mkdir()
        open_dataset(tmp_path / "emptydir", library)


def test_three_packs_give_one_pack_to_each_split():
    labels = ["a", "b"] * 30
    groups = [f"pack{i % 3}" for i in range(60)]
    splits = assign_splits(labels, groups, seed=0)
    packs_per_split = {split: {g for g, s in zip(groups, splits) if s == split} for split in Split}
    assert all(len(packs) == 1 for packs in packs_per_split.values())
    two = assign_splits(labels, [f"pack{i % 2}" for i in range(60)], seed=0)
    assert Split.TRAIN in two  # with two packs, training keeps at least one
