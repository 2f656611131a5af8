"""The labeling-loop benchmark's own logic: the loop's bookkeeping and its pooled macro-F1."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_labeling_loop", BENCH / "bench_labeling_loop.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_labeling_loop", module)
    spec.loader.exec_module(module)
    return module


def kits(shift: float, seed: int = 0):
    """Three classes in two training kits and one held-out kit whose sounds are moved by `shift`."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3) * 4.0
    rows, labels, groups = [], [], []
    for kit, moved in (("a", 0.0), ("b", 0.0), ("new", shift)):
        for k, name in enumerate(("kick", "snare", "tom")):
            rows.append(centres[k] + moved + rng.normal(0, 0.5, (8, 3)))
            labels += [name] * 8
            groups += [kit] * 8
    return np.concatenate(rows), np.array(labels), np.array(groups)


@pytest.mark.parametrize("strategy", ["suggest", "random"])
def test_labelling_a_whole_kit_leaves_its_true_labels_and_nothing_to_predict(bench, strategy):
    x, y, g = kits(shift=0.0)
    rounds = bench.play_kit(x, y, np.flatnonzero(g != "new"), np.flatnonzero(g == "new"), strategy, [0, 5, 100],
                            5, "logreg", {}, seed=0)
    start, five, whole = rounds
    assert start.labelled == 0 and start.after == start.rest_predicted and len(start.rest_truth) == 24
    assert start.after == list(y[g == "new"])  # the unshifted kit is easy
    assert five.labelled == 5 and len(five.rest_truth) == 19
    assert whole.labelled == 24 and whole.after == whole.truth == list(y[g == "new"]) and not whole.rest_truth
    assert whole.accepted == 24  # every suggestion was right


def test_suggestions_that_are_wrong_count_as_corrected_and_the_labels_teach_the_model(bench):
    x, y, g = kits(shift=0.0)
    kit = np.flatnonzero(g == "new")
    y = y.copy()
    y[kit] = np.roll(y[kit], 8)  # the new kit calls every sound by another class's name
    rounds = bench.play_kit(x, y, np.flatnonzero(g != "new"), kit, "suggest", [0, 6, 24], 3, "logreg", {}, seed=0)
    assert rounds[0].after != list(y[kit]) and rounds[1].accepted < rounds[1].labelled
    assert rounds[2].after == list(y[kit])


def test_pooled_macro_f1_is_scikit_learns_over_the_kits_taken_together(bench):
    rng = np.random.default_rng(2)
    names = ["kick", "snare", "tom", "clap"]
    rounds = [bench.KitRound(0, list(rng.choice(names, n)), list(rng.choice(names, n)), [], [], 0, 0) for n in (9, 14)]
    score, resampled = bench.pooled(rounds, lambda k: k.truth, lambda k: k.after, resamples=50)
    truth, after = sum((k.truth for k in rounds), []), sum((k.after for k in rounds), [])
    assert score == pytest.approx(f1_score(truth, after, average="macro"))
    assert resampled.shape == (50,) and np.all((resampled >= 0) & (resampled <= 1))
