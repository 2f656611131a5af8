"""Temperature scaling and expected calibration error, checked against reference computations on
the same inputs: scikit-learn's calibration_curve bins for ECE, scikit-learn's log_loss on a dense
grid of temperatures for the NLL minimum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from engine.evaluation.calibration import calibration_summary, fit_temperature, nll, scaled_probabilities
from engine.evaluation.metrics import ECE_BINS, expected_calibration_error


def overconfident(n: int = 3000, k: int = 4, sharpen: float = 3.0, seed: int = 0):
    """Labels drawn from softmax(z): z are calibrated logits; the model reports sharpen * z."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, size=(n, k))
    y = np.array([rng.choice(k, p=p) for p in softmax(z, axis=1)])
    return sharpen * z, y


def reference_ece(y: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE from sklearn's calibration_curve (accuracy and mean confidence per non-empty
    equal-width bin), weighted by the bin counts of the same edges."""
    from sklearn.calibration import calibration_curve

    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == y).astype(int)
    accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], confidence), minlength=bins)
    counts = counts[counts > 0]
    return float(np.sum(counts / len(y) * np.abs(accuracy - mean_confidence)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_sklearn_calibration_curve_bins(seed):
    logits, y = overconfident(n=800, k=3 + seed, seed=seed)
    probabilities = softmax(logits / (0.5 + seed), axis=1)
    assert expected_calibration_error(y, probabilities) == pytest.approx(reference_ece(y, probabilities), abs=1e-12)


def test_fitted_temperature_is_the_nll_minimum_and_lowers_ece_of_an_overconfident_model():
    from sklearn.metrics import log_loss

    logits, y = overconfident()
    temperature = fit_temperature(logits, y)
    grid = np.exp(np.linspace(np.log(0.2), np.log(20.0), 2001))
    losses = [log_loss(y, scaled_probabilities(logits, t), labels=np.arange(logits.shape[1])) for t in grid]
    assert temperature == pytest.approx(grid[int(np.argmin(losses))], rel=5e-3)
    assert nll(logits, y, temperature) == pytest.approx(min(losses), abs=1e-6)
    assert 2.5 < temperature < 3.5  # the model was made three times too sharp
    before = expected_calibration_error(y, scaled_probabilities(logits, 1.0))
    after = expected_calibration_error(y, scaled_probabilities(logits, temperature))
    assert before > 0.1 and after < before / 3
    summary = calibration_summary(temperature, {"val": (logits, y)})
    assert summary["val"]["ece_before"] == pytest.approx(before) and summary["val"]["ece_after"] == pytest.approx(after)
    # the argmax (so accuracy) never changes
    assert np.array_equal(scaled_probabilities(logits, temperature).argmax(1), logits.argmax(1))


def test_an_underconfident_model_gets_a_temperature_below_one():
    logits, y = overconfident(sharpen=0.4, seed=3)
    assert 0.3 < fit_temperature(logits, y) < 0.5


def test_a_validation_split_predicted_without_error_keeps_temperature_one():
    logits, y = overconfident(n=200, seed=4)
    right = logits.argmax(axis=1)  # every row right: the NLL would fall forever as T shrinks
    assert nll(logits, right, 0.5) < nll(logits, right, 1.0)
    assert fit_temperature(logits, right) == 1.0
    assert fit_temperature(logits, y) != 1.0  # with errors it is fitted
