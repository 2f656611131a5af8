"""The generalisation benchmark's own logic: the Hydrogen kits' class mapping and the pooled macro-F1."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_generalisation.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_generalisation", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_generalisation", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("instrument, label", [
    ("Kick Lite 1", "kick"), ("BassDrum", "kick"), ("c3 - bass drum 1", "kick"),
    ("Snare Jazz", "snare"), ("Stick", "snare"), ("Rim Click (Pearl Free Floating Maple 14x3.5)", "snare"),
    ("Closed HH", "hihat_closed"), ("Pedal HH", "hihat_closed"), ("Hi Hat Closed", "hihat_closed"),
    ("Sabian Hat Pedal", "hihat_closed"), ("VariBreaks Hat 1 Cl", "hihat_closed"), ("VariBreaks Hat 1 Pd", "hihat_closed"),
    ("Open HH", "hihat_open"), ("Hi Hat Opened", "hihat_open"), ("Hat Op Dirty", "hihat_open"),
    ("VariBreaks Hat 1 Op", "hihat_open"), ("a#3 - hi-hat open", "hihat_open"),
    ("Tom Low (Tama Superstar 16\")", "tom"), ("tomhi2", "tom"), ("Floor Tom", "tom"),
    ("Ride (Custom, Zagrebin 22\")", "ride"), ("ride-cup", "ride"), ("Ride Bell", "ride"),
    ("Crash Left", "crash"), ("Zildjian Splash", "crash"), ("China (Paiste Alpha 18\")", "crash"),
    ("Hand Clap", "clap"), ("Finger Snaps", "clap"),
    ("Cowbell", "perc"), ("Tambourine Pedal (Pearl PTM-10GH)", "perc"), ("Woodblock Hi", "perc"),
    ("Hi-Hat Semiopen (Paiste Alpha Metal edge 14\")", None), ("Sabian Hat Swish", None), ("Hi Hat Free", None),
    ("Side HH", None), ("Snare Roll", None), ("Crash/Ride Bell (Paiste Rude Crash/Ride 18\")", None),
    ("ride-crash20inch", None), ("Paiste Ride Flink", None), ("Djembe1 Slap", None), ("Conga 1", None),
    ("Hat Low", None), ("Zap 1", None), ("17", None),
])
def test_hydrogen_instruments_map_to_drum_classes_by_name(bench, instrument, label):
    assert bench.hydrogen_label(instrument) == label


def test_pooled_macro_f1_is_scikit_learns_over_every_fold_and_averages_model_seeds(bench):
    rng = np.random.default_rng(3)
    classes = ["kick", "snare", "tom", "clap"]
    truths = [list(rng.choice(classes, size)) for size in (7, 12, 3)]
    predictions = [[list(rng.choice(classes, len(t))) for _ in range(2)] for t in truths]
    expected = np.mean([f1_score(sum(truths, []), sum((p[seed] for p in predictions), []), average="macro")
                        for seed in range(2)])
    assert bench.pooled_macro_f1(truths, predictions) == pytest.approx(expected)
