"""Classifier evaluation: metrics against sklearn, ECE, the vectorised bootstrap, reports, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

import engine.evaluation.metrics as evaluation_module
from engine.errors import InputError
from engine.evaluation.metrics import (
    ClassMetrics,
    Evaluation,
    bootstrap_ci,
    evaluate,
    expected_calibration_error,
    format_evaluation,
    macro_f1,
)

CLASSES = ["kick", "snare", "hat", "tom", "clap", "rim", "crash"]


def noisy_probabilities(y: np.ndarray, k: int, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Probabilities that lean towards the true class by `strength`, rows summing to 1."""
    probs = rng.dirichlet(np.ones(k), size=y.shape[0])
    probs[np.arange(y.shape[0]), y] += strength * rng.random(y.shape[0])
    return probs / probs.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def awkward_case():
    """7 classes: 'clap' (4) is present but never predicted, 'rim' (5) predicted but never present,
    'crash' (6) neither present nor predicted."""
    rng = np.random.default_rng(42)
    n, k = 600, len(CLASSES)
    y = rng.choice([0, 1, 2, 3, 4], size=n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    probs = noisy_probabilities(y, k, rng, strength=0.6)
    probs[:, 4] = 0.0  # never predicted
    probs[:, 6] = 0.0  # never predicted, never present
    probs[rng.random(n) < 0.05, 5] = 5.0  # sometimes predicted, never present
    probs /= probs.sum(axis=1, keepdims=True)
    return y, probs


# ------------------------------------------------------------------------------------ metrics

def test_metrics_match_sklearn(awkward_case):
    y, probs = awkward_case
    pred = probs.argmax(axis=1)
    assert 4 in y and 4 not in pred and 5 not in y and 5 in pred and 6 not in y and 6 not in pred
    result = evaluate(y, probs, CLASSES, resamples=200)
    k = len(CLASSES)

    assert result.n == len(y)
    assert result.classes == CLASSES
    assert result.accuracy == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert result.confusion == confusion_matrix(y, pred, labels=list(range(k))).tolist()

    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=list(range(k)), zero_division=0)
    assert [m.label for m in result.per_class] == CLASSES
    np.testing.assert_allclose([m.precision for m in result.per_class], precision, atol=1e-12)
    np.testing.assert_allclose([m.recall for m in result.per_class], recall, atol=1e-12)
    np.testing.assert_allclose([m.f1 for m in result.per_class], f1, atol=1e-12)
    assert [m.support for m in result.per_class] == support.tolist()
    assert result.per_class[4].precision == 0.0 and result.per_class[4].f1 == 0.0 and result.per_class[4].support > 0

    present_or_predicted = sorted(set(y.tolist()) | set(pred.tolist()))
    assert present_or_predicted == [0, 1, 2, 3, 4, 5]
    expected = f1_score(y, pred, labels=present_or_predicted, average="macro", zero_division=0)
    assert result.macro_f1 == pytest.approx(expected, abs=1e-12)
    # Excluding 'crash' matters: averaging over all seven classes would give a lower number.
    assert result.macro_f1 > f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0)


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_matches_sklearn_on_random_confusions(seed):
    rng = np.random.default_rng(seed)
    k = 6
    y = rng.integers(0, 4, size=50)  # classes 4, 5 never present
    pred = rng.integers(0, 5, size=50)  # class 5 never predicted either
    labels = sorted(set(y.tolist()) | set(pred.tolist()))
    conf = confusion_matrix(y, pred, labels=list(range(k)))
    assert macro_f1(conf) == pytest.approx(f1_score(y, pred, labels=labels, average="macro", zero_division=0),
                                           abs=1e-12)


def test_macro_f1_edge_cases():
    assert macro_f1(np.diag([3, 4, 0])) == 1.0  # absent, unpredicted class left out
    assert macro_f1(np.array([[0, 5], [0, 0]])) == 0.0  # class 0 never predicted, class 1 never present
    assert macro_f1(np.zeros((2, 2), dtype=int)) == 0.0
    with pytest.raises(InputError):
        macro_f1(np.zeros((2, 3)))


# ---------------------------------------------------------------------------------------- ECE

def test_ece_near_zero_when_perfectly_calibrated():
    rng = np.random.default_rng(7)
    n, k = 200_000, 3
    probs = rng.dirichlet(np.ones(k) * 0.7, size=n)
    # Draw each label from its own predicted distribution: P(correct | confidence) = confidence.
    cumulative = probs.cumsum(axis=1)
    y = np.minimum((rng.random(n)[:, None] > cumulative).sum(axis=1), k - 1)
    assert expected_calibration_error(y, probs) < 0.01


def test_ece_large_when_confidently_wrong():
    rng = np.random.default_rng(8)
    n, k = 1000, 4
    y = rng.integers(0, k, size=n)
    probs = np.full((n, k), 0.01 / (k - 1))
    probs[np.arange(n), (y + 1) % k] = 0.99
    assert expected_calibration_error(y, probs) == pytest.approx(0.99, abs=1e-9)
    assert expected_calibration_error(y, probs) > 0.9


def test_ece_hand_computed():
    probs = np.array([
        [0.90, 0.10],  # bin 13 (0.867, 0.933], correct
        [0.92, 0.08],  # bin 13, correct
        [0.15, 0.85],  # bin 12 (0.8, 0.867], predicts 1, true 0: wrong
        [0.30, 0.70],  # bin 10 (0.667, 0.733], correct
        [0.45, 0.55],  # bin 8 (0.533, 0.6], predicts 1, true 0: wrong
    ])
    y = np.array([0, 0, 0, 1, 0])
    expected = (2 * abs(1.0 - 0.91) + abs(0.0 - 0.85) + abs(1.0 - 0.70) + abs(0.0 - 0.55)) / 5
    assert expected_calibration_error(y, probs) == pytest.approx(expected, abs=1e-12)


def test_ece_bins_are_right_closed():
    # With 2 bins, a confidence of exactly 0.5 belongs to the lower bin (0, 0.5].
    probs = np.array([[0.5, 0.5], [0.25, 0.75]])
    y = np.array([0, 0])  # first correct at 0.5, second wrong at 0.75
    assert expected_calibration_error(y, probs, bins=2) == pytest.approx((0.5 + 0.75) / 2)


# ---------------------------------------------------------------------------------- bootstrap

def loop_reference_ci(y, pred, k, resamples, seed, level=0.95):
    """Straightforward per-resample loop over the documented index draws."""
    idx = np.random.default_rng(seed).integers(0, len(y), size=(resamples, len(y)))
    accs, f1s = [], []
    for row in idx:
        yt, yp = y[row], pred[row]
        accs.append(np.mean(yt == yp))
        scores = []
        for c in range(k):
            tp = int(np.sum((yt == c) & (yp == c)))
            fp = int(np.sum((yt != c) & (yp == c)))
            fn = int(np.sum((yt == c) & (yp != c)))
            if tp + fp + fn:
                scores.append(2 * tp / (2 * tp + fp + fn))
        f1s.append(np.mean(scores))
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    return tuple(np.percentile(accs, q)), tuple(np.percentile(f1s, q)), np.array(f1s), idx


@pytest.mark.parametrize("seed", [0, 3])
def test_bootstrap_matches_loop_reference(seed):
    rng = np.random.default_rng(100 + seed)
    k = 5
    y = rng.integers(0, 4, size=60)  # class 4 never present
    pred = np.where(rng.random(60) < 0.6, y, rng.integers(0, 5, size=60))
    acc_ref, f1_ref, f1s, idx = loop_reference_ci(y, pred, k, resamples=200, seed=seed)
    ci = bootstrap_ci(y, pred, k, resamples=200, seed=seed)
    assert ci["accuracy"] == acc_ref
    assert ci["macro_f1"] == f1_ref
    # The per-resample rule is sklearn's macro F1 over present-or-predicted labels.
    for row, value in list(zip(idx, f1s))[:20]:
        labels = sorted(set(y[row].tolist()) | set(pred[row].tolist()))
        assert value == pytest.approx(f1_score(y[row], pred[row], labels=labels, average="macro"), abs=1e-12)


def test_bootstrap_chunking_gives_the_same_interval(monkeypatch):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, size=500)
    pred = np.where(rng.random(500) < 0.7, y, rng.integers(0, 3, size=500))
    whole = bootstrap_ci(y, pred, 3, resamples=300, seed=11)
    monkeypatch.setattr(evaluation_module, "_BOOTSTRAP_MEMORY_BYTES", 16 * 500 * 7)  # ~7 resamples a chunk
    assert bootstrap_ci(y, pred, 3, resamples=300, seed=11) == whole


def test_bootstrap_contains_estimate_narrows_and_is_deterministic():
    rng = np.random.default_rng(9)
    widths = []
    for n in (200, 20_000):
        y = rng.integers(0, 4, size=n)
        probs = noisy_probabilities(y, 4, rng, strength=0.8)
        result = evaluate(y, probs, CLASSES[:4], resamples=500, seed=1)
        assert result.accuracy_ci[0] <= result.accuracy <= result.accuracy_ci[1]
        assert result.macro_f1_ci[0] <= result.macro_f1 <= result.macro_f1_ci[1]
        assert result.accuracy_ci[0] < result.accuracy_ci[1]
        widths.append((result.accuracy_ci[1] - result.accuracy_ci[0], result.macro_f1_ci[1] - result.macro_f1_ci[0]))
        again = evaluate(y, probs, CLASSES[:4], resamples=500, seed=1)
        assert again == result
        other = evaluate(y, probs, CLASSES[:4], resamples=500, seed=2)
        assert other.accuracy_ci != result.accuracy_ci or other.macro_f1_ci != result.macro_f1_ci
    (small_acc, small_f1), (large_acc, large_f1) = widths
    assert large_acc < small_acc / 3 and large_f1 < small_f1 / 3


def test_bootstrap_level_and_arguments():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1])
    pred = np.array([0, 1, 0, 0, 1, 1, 0, 1, 1, 0])
    wide = bootstrap_ci(y, pred, 2, resamples=400, level=0.99)
    narrow = bootstrap_ci(y, pred, 2, resamples=400, level=0.5)
    assert wide["accuracy"][0] <= narrow["accuracy"][0] <= narrow["accuracy"][1] <= wide["accuracy"][1]
    for bad in (dict(resamples=0), dict(level=1.0), dict(level=0.0)):
        with pytest.raises(InputError):
            bootstrap_ci(y, pred, 2, **bad)
    with pytest.raises(InputError):
        bootstrap_ci(np.array([], dtype=int), np.array([], dtype=int), 2)
    with pytest.raises(InputError):
        bootstrap_ci(y, pred[:-1], 2)
    with pytest.raises(InputError):
        bootstrap_ci(y, pred, 1)  # index 1 out of range for one class


# ------------------------------------------------------------------------- report and errors

def test_to_dict_is_json_and_format_mentions_everything(awkward_case):
    y, probs = awkward_case
    result = evaluate(y, probs, CLASSES, resamples=100)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(data) == {"classes", "n", "accuracy", "macro_f1", "per_class", "confusion", "ece", "ci",
                         "bootstrap_resamples"}
    assert list(data["per_class"]) == CLASSES
    assert data["per_class"]["kick"] == {"precision": result.per_class[0].precision,
                                         "recall": result.per_class[0].recall,
                                         "f1": result.per_class[0].f1, "support": result.per_class[0].support}
    assert data["ci"] == {"accuracy": list(result.accuracy_ci), "macro_f1": list(result.macro_f1_ci)}
    assert data["bootstrap_resamples"] == 100 and data["n"] == len(y)
    assert isinstance(result.per_class[0], ClassMetrics) and isinstance(result, Evaluation)

    text = format_evaluation(result)
    for name in CLASSES:
        assert name in text
    for number in (f"{result.accuracy:.4f}", f"{result.accuracy_ci[0]:.4f}", f"{result.accuracy_ci[1]:.4f}",
                   f"{result.macro_f1:.4f}", f"{result.macro_f1_ci[0]:.4f}", f"{result.ece:.4f}",
                   str(result.confusion[0][0])):
        assert number in text
    assert "ECE" in text and "macro-F1" in text and "accuracy" in text


@pytest.mark.parametrize("y, probs, classes", [
    (np.array([], dtype=int), np.empty((0, 3)), ["a", "b", "c"]),  # empty
    (np.array([0, 1]), np.full((2, 2), 0.5), ["a", "b", "c"]),  # too few columns
    (np.array([0, 1]), np.full((2, 4), 0.25), ["a", "b", "c"]),  # too many columns
    (np.array([0, 1]), np.array([0.5, 0.5]), ["a", "b"]),  # 1-D probabilities
    (np.array([0, 1, 1]), np.full((2, 2), 0.5), ["a", "b"]),  # row count mismatch
    (np.array([[0, 1]]), np.full((2, 2), 0.5), ["a", "b"]),  # 2-D labels
    (np.array([0, 2]), np.full((2, 2), 0.5), ["a", "b"]),  # label out of range
    (np.array([0, -1]), np.full((2, 2), 0.5), ["a", "b"]),  # negative label
    (np.array([0, 1]), np.array([[0.5, np.nan], [0.5, 0.5]]), ["a", "b"]),  # NaN
    (np.array([0, 1]), np.full((2, 2), 0.5), []),  # no classes
    (np.array([0, 1]), np.full((2, 2), 0.5), ["a", "a"]),  # duplicate names
])
def test_bad_input_raises_input_error(y, probs, classes):
    with pytest.raises(InputError):
        evaluate(y, probs, classes, resamples=10)


def test_ece_rejects_bad_input():
    with pytest.raises(InputError):
        expected_calibration_error(np.array([], dtype=int), np.empty((0, 2)))
    with pytest.raises(InputError):
        expected_calibration_error(np.array([0]), np.array([[0.5, 0.5]]), bins=0)


def test_engine_evaluation_imports_numpy_only():
    code = "import engine.evaluation.metrics, sys; print('\\n'.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parents[1]).stdout.split()
    assert not {"sklearn", "scipy", "torch"} & {name.split(".")[0] for name in loaded}
