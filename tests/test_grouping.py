"""Splits when the packs are unknown: a curated folder without pack subfolders is grouped by
near-identical audio and by file-name runs, so copies of one sample never straddle splits and the
training report names the grouping it used."""

from __future__ import annotations

import numpy as np
import soundfile

from engine.audio.synth import DEMO_PACKS, synthesize_hit
from engine.datasets.grouping import infer_groups, name_prefix
from engine.features.spec import FeatureSpec
from engine.jobs.log import JobLog
from engine.models.registry import resolve
from engine.progress import CancelToken
from engine.training.data import training_data
from engine.training.run import TrainRequest, run_training


def _packless_folder(root, originals: int = 6, copies: int = 3):
    """ROOT/<class>/*.wav, no pack folders: per class `originals` hits, each with gain-scaled copies
    under names that share nothing (so only the audio can tell they belong together)."""
    copy_of = {}
    for kind in ("kick", "snare"):
        (root / kind).mkdir(parents=True)
        for n in range(originals):
            pack = DEMO_PACKS[n % len(DEMO_PACKS)]
            hit = synthesize_hit(kind, pack, np.random.default_rng(100 * n + len(kind)))
            for c in range(copies):
                name = f"{kind[0]}{'abcdefghij'[n]}{'xyz'[c]}q.wav"
                soundfile.write(root / kind / name, hit * (0.9 ** c), pack.sample_rate)
                copy_of[name] = f"{kind}{n}"
    return copy_of


def test_gain_scaled_copies_never_straddle_splits(workspace, tmp_path):
    copy_of = _packless_folder(tmp_path / "curated")
    data = training_data(workspace, FeatureSpec.parse("dsp"), dataset=tmp_path / "curated", min_class_samples=2,
                         split_by="group", val=0.2, test=0.2, seed=3)
    assert data.grouping == "inferred"
    names = [t.path.rsplit("/", 1)[-1] for t in data.targets]
    split_of, group_of = {}, {}
    for name, split, group in zip(names, data.splits, data.split_groups):
        assert split_of.setdefault(copy_of[name], split) == split, f"{name} straddles splits"
        assert group_of.setdefault(copy_of[name], group) == group
    assert len(set(group_of.values())) == len(set(copy_of.values()))  # distinct hits stay apart
    assert {"train", "val", "test"} <= set(data.splits)


def test_runs_of_a_name_prefix_form_one_group_unless_the_run_is_the_whole_class():
    assert name_prefix("Kick_Acoustic_01.wav") == name_prefix("kick_acoustic-5_v2.wav") == "kick_acoustic"
    paths = [f"/r/kick/Kick_{kit}_{n:02d}.wav" for kit in ("Acoustic", "Electro", "Vinyl") for n in range(1, 6)]
    paths += [f"/r/snare/snare_{n:02d}.wav" for n in range(15)]  # one run naming its whole class
    labels = ["kick"] * 15 + ["snare"] * 15
    features = np.random.default_rng(0).normal(size=(30, 40))  # nothing near-identical
    groups = infer_groups(paths, labels, ["r"] * 30, features)
    assert len(set(groups[:5])) == len(set(groups[5:10])) == len(set(groups[10:15])) == 1
    assert len(set(groups[:15])) == 3
    assert len(set(groups[15:])) == 15  # the class's own name groups nothing


def test_the_training_report_names_the_grouping_and_warns_about_the_test_score(workspace, tmp_path):
    _packless_folder(tmp_path / "curated")
    params = TrainRequest(name="packless", model="logreg", dataset=str(tmp_path / "curated"),
                          min_class_samples=2, val=0.2, test=0.2).__dict__
    job = JobLog(workspace, "train", params, state="pending")
    run_training(workspace, job, params, CancelToken())
    version = resolve(workspace, "packless@1")
    assert version.meta["grouping"] == "inferred"
    assert any("near-identical audio" in note and "optimistic" in note for note in version.meta["notes"])


def test_the_leakage_gate_checks_the_split_train_makes_with_inferred_groups(workspace, tmp_path):
    from engine.gates.dataset import DatasetContext, split_leakage
    from engine.gates.dataset_context import SplitPlan
    from engine.library.importer import import_folder

    _packless_folder(tmp_path / "curated")
    import_folder(workspace, tmp_path / "curated", curated=True, workers=1)
    context = DatasetContext(workspace, plan=SplitPlan(min_class_samples=2), workers=1)
    assert context.grouping == "inferred"
    result = split_leakage(context, {"similarity": 0.999, "max_pairs": 0})
    assert result.passed and "split by groups of near-identical audio" in result.detail
    by_clip = DatasetContext(workspace, plan=SplitPlan(split_by="clip", min_class_samples=2), workers=1)
    assert not split_leakage(by_clip, {"similarity": 0.999, "max_pairs": 0}).passed  # the copies straddle
