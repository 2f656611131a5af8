"""Open-set scoring: how "known" an input looks to a classifier, and how well that separates the
model's own classes from sounds outside its label set.

Every score is higher for inputs that look known:

* ``max_softmax``: the top class probability;
* ``energy``: logsumexp of the logits (the negative free energy); a model kind without logits
  would give log-probabilities, whose logsumexp is 0 for every row, so energy refuses such a model;
* ``distance``: minus the Euclidean distance to the nearest class centroid of the training
  features, standardised by the training mean and spread; a feature constant in training (spread
  at most SCALE_FLOOR) is left out, as it has no spread to measure a deviation by.

The reject threshold is the score at the chosen true-positive rate on known inputs (by default 95%
of known inputs score at or above it); `predict` answers "unknown" below it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError

METHODS = ("max_softmax", "energy", "distance")
UNKNOWN_LABEL = "unknown"
SCALE_FLOOR = 1e-6  # a training spread at or below this is no spread: the feature is constant


@dataclass(frozen=True)
class Centroids:
    """Class centroids of standardised training features (for the ``distance`` score)."""

    mean: np.ndarray
    scale: np.ndarray
    centroids: np.ndarray  # (K, D), rows of classes absent from training are NaN

    @classmethod
    def fit(cls, features: np.ndarray, y: np.ndarray, n_classes: int) -> Centroids:
        flat = _flat(features)
        mean, scale = flat.mean(axis=0), flat.std(axis=0)
        standard = _standardise(flat, mean, scale)
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        sums = np.zeros((n_classes, flat.shape[1]))
        np.add.at(sums, y, standard)
        with np.errstate(invalid="ignore", divide="ignore"):
            centroids = sums / counts[:, None]
        return cls(mean, scale, centroids)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "centroids": [[None if math.isnan(v) else v for v in row] for row in self.centroids.tolist()]}

    @classmethod
    def from_dict(cls, data: dict) -> Centroids:
        centroids = np.array([[np.nan if v is None else v for v in row] for row in data["centroids"]], dtype=np.float64)
        return cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["scale"], dtype=np.float64), centroids)

    def nearest_distance(self, features: np.ndarray) -> np.ndarray:
        standard = _standardise(_flat(features), self.mean, self.scale)
        present = self.centroids[~np.isnan(self.centroids).any(axis=1)]
        squared = ((standard[:, None, :] - present[None, :, :]) ** 2).sum(axis=2)
        return np.sqrt(squared.min(axis=1))


def _flat(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    return features.reshape(len(features), -1)


def _standardise(flat: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Features in units of their training spread; 0 for features constant in training, which
    leaves them out of every distance (records saved before kept them at a scale of SCALE_FLOOR)."""
    varies = scale > SCALE_FLOOR
    return np.where(varies, (flat - mean) / np.where(varies, scale, 1.0), 0.0)


def known_scores(method: str, classifier, features: np.ndarray, *, centroids: Centroids | None = None,
                 probabilities: np.ndarray | None = None) -> np.ndarray:
    """One score per row of `features` (higher = more like the model's own classes)."""
    if method == "max_softmax":
        probs = classifier.predict_proba(features) if probabilities is None else probabilities
        return np.asarray(probs, dtype=np.float64).max(axis=1)
    if method == "energy":
        if not getattr(classifier, "has_logits", False):
            raise InputError(f"{classifier.kind} models give no logits, so their energy is constant; "
                             "score open-set by max_softmax or distance")
        from scipy.special import logsumexp

        return logsumexp(np.asarray(classifier.logits(features), dtype=np.float64), axis=1)
    if method == "distance":
        if centroids is None:
            raise InputError("distance scoring needs the class centroids of the training features")
        return -centroids.nearest_distance(features)
    raise InputError(f"unknown open-set score {method!r}; choose one of {', '.join(METHODS)}")


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Area under the ROC curve for telling known (positive) from unknown inputs by score: the
    chance a random known input outscores a random unknown one, ties counting half (Mann-Whitney)."""
    known, unknown = np.asarray(known, dtype=np.float64), np.asarray(unknown, dtype=np.float64)
    if not len(known) or not len(unknown):
        raise InputError("AUROC needs both known and unknown inputs")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([known, unknown]))
    n_known, n_unknown = len(known), len(unknown)
    return float((ranks[:n_known].sum() - n_known * (n_known + 1) / 2) / (n_known * n_unknown))


def threshold_at_tpr(known: np.ndarray, tpr: float = 0.95) -> float:
    """The highest score that at least `tpr` of the known inputs reach (they are accepted at or above it)."""
    ordered = np.sort(np.asarray(known, dtype=np.float64))[::-1]
    if not len(ordered):
        raise InputError("a reject threshold needs known inputs")
    return float(ordered[max(math.ceil(tpr * len(ordered)), 1) - 1])


def fpr_at_threshold(unknown: np.ndarray, threshold: float) -> float:
    """The share of unknown inputs accepted (scoring at or above the threshold)."""
    return float(np.mean(np.asarray(unknown, dtype=np.float64) >= threshold))


@dataclass(frozen=True)
class OpenSetResult:
    method: str
    auroc: float
    fpr: float  # at `tpr` on known inputs
    tpr: float
    threshold: float
    n_known: int
    n_unknown: int

    def to_dict(self) -> dict:
        return {"method": self.method, "auroc": round(self.auroc, 6), "fpr": round(self.fpr, 6), "tpr": self.tpr,
                "threshold": self.threshold, "n_known": self.n_known, "n_unknown": self.n_unknown}


def separate(method: str, known: np.ndarray, unknown: np.ndarray, tpr: float = 0.95) -> OpenSetResult:
    threshold = threshold_at_tpr(known, tpr)
    return OpenSetResult(method, auroc(known, unknown), fpr_at_threshold(unknown, threshold), tpr, threshold,
                         len(known), len(unknown))


def is_unknown(open_set: dict, reject_threshold: float | None, classifier, features, probabilities: np.ndarray) -> np.ndarray:
    """Per row: whether a version with this stored open-set record (meta["open_set"]) and reject
    threshold answers "unknown". `features` may be None for max_softmax."""
    if reject_threshold is None or not open_set:
        return np.zeros(len(probabilities), dtype=bool)
    centroids = Centroids.from_dict(open_set["centroids"]) if open_set.get("centroids") else None
    scores = known_scores(open_set["method"], classifier, features, centroids=centroids, probabilities=probabilities)
    return scores < reject_threshold
