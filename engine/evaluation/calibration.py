"""Temperature scaling (Guo et al., 2017): one scalar T > 0 that divides a model's logits before the
softmax, chosen to minimise the negative log-likelihood on held-out (validation) data.

T > 1 softens an over-confident model, T < 1 sharpens an under-confident one; the argmax, and so
accuracy and F1, never change. Expected calibration error (`metrics.expected_calibration_error`,
15 equal-width bins over the top-label confidence) is reported before and after.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from engine.errors import InputError
from engine.evaluation.metrics import expected_calibration_error

# T is searched on log T in [-LOG_T_BOUND, LOG_T_BOUND]: from about 0.007 to 150.
LOG_T_BOUND = 5.0


def scaled_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T), row by row."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes under softmax(logits / T)."""
    log_p = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-log_p[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T minimising the NLL of `y` under softmax(logits / T) (bounded scalar search on log T).
    When every row is already predicted right the NLL has no minimum (it falls forever as T → 0, a
    sharpening that a few validation rows cannot justify), so T stays 1."""
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(y) or len(y) == 0:
        raise InputError(f"temperature scaling needs (N, K) logits and N labels, got {logits.shape} and {y.shape}")
    if not np.isfinite(logits).all():
        raise InputError("temperature scaling: the logits hold values that are not finite")
    if (logits.argmax(axis=1) == y).all():
        return 1.0
    result = minimize_scalar(lambda log_t: nll(logits, y, float(np.exp(log_t))),
                             bounds=(-LOG_T_BOUND, LOG_T_BOUND), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))


def calibration_summary(temperature: float, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """What the training report keeps: T, and per split (name → (logits, y)) the ECE and NLL before
    (T = 1) and after scaling."""
    summary: dict = {"method": "temperature", "temperature": temperature, "fitted_on": "val"}
    for name, (logits, y) in splits.items():
        if len(y) == 0:
            continue
        summary[name] = {"n": int(len(y)),
                         "ece_before": expected_calibration_error(y, scaled_probabilities(logits, 1.0)),
                         "ece_after": expected_calibration_error(y, scaled_probabilities(logits, temperature)),
                         "nll_before": nll(logits, y), "nll_after": nll(logits, y, temperature)}
    return summary


def format_calibration(calibration: dict | None) -> str | None:
    """One line for reports: T and the test (else val) ECE before → after."""
    if not calibration:
        return None
    split = "test" if "test" in calibration else "val"
    figures = calibration.get(split)
    line = f"temperature {calibration['temperature']:.3f} (fitted on val)"
    if figures:
        line += f"; ECE on {split} {figures['ece_before']:.4f} → {figures['ece_after']:.4f}"
    return line
