"""How good a trained classifier is on held-out data: accuracy, per-class precision / recall / F1,
macro-F1, the confusion matrix, expected calibration error, and 95% bootstrap intervals for
accuracy and macro-F1.

numpy only. The bootstrap is vectorised over resamples (no Python loop per resample), so 1,000
resamples of 10,000 predictions take a fraction of a second.

Conventions, shared by every function here:

* ``y_true`` holds integer indices into ``classes``; predictions are ``argmax`` of the
  probabilities (ties go to the lowest index, as ``np.argmax`` does).
* The confusion matrix has rows = true class, columns = predicted class.
* Precision of a class that is never predicted is 0; recall of a class with no support is 0;
  F1 is ``2·TP / (2·TP + FP + FN)``, and 0 when that is 0/0.
* Macro-F1 averages F1 over the classes that are present in ``y_true`` OR predicted; a class
  with zero support and zero predictions is left out (a class with support but no predictions
  counts, with F1 = 0). This matches
  ``sklearn.metrics.f1_score(y_true, y_pred, labels=<present-or-predicted>, average="macro")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError

ECE_BINS = 15
CI_LEVEL = 0.95

# Working memory the bootstrap may use at once. Per resample it holds an int64 index row and an
# int64 code row of length N, and an int64 K×K confusion plus a few float K-vectors; resamples
# are processed in chunks so the sum stays under this. Chunking does not change the result: the
# chunks draw consecutive rows of the same Generator stream (see `bootstrap_ci`).
_BOOTSTRAP_MEMORY_BYTES = 400 * 1024 * 1024


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    classes: list[str]
    n: int
    accuracy: float
    macro_f1: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]  # rows = true class, columns = predicted
    ece: float  # expected calibration error, 15 equal-width confidence bins
    accuracy_ci: tuple[float, float]  # 95% bootstrap percentile interval
    macro_f1_ci: tuple[float, float]
    bootstrap_resamples: int

    def to_dict(self) -> dict:
        """Plain JSON-able values (str, int, float, list, dict) only."""
        return {
            "classes": list(self.classes),
            "n": int(self.n),
            "accuracy": float(self.accuracy),
            "macro_f1": float(self.macro_f1),
            "per_class": {
                m.label: {"precision": float(m.precision), "recall": float(m.recall),
                          "f1": float(m.f1), "support": int(m.support)}
                for m in self.per_class
            },
            "confusion": [[int(v) for v in row] for row in self.confusion],
            "ece": float(self.ece),
            "ci": {"accuracy": [float(v) for v in self.accuracy_ci],
                   "macro_f1": [float(v) for v in self.macro_f1_ci]},
            "bootstrap_resamples": int(self.bootstrap_resamples),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Evaluation:
        """The inverse of to_dict (for reports stored with model versions)."""
        return cls(
            classes=list(data["classes"]), n=data["n"], accuracy=data["accuracy"], macro_f1=data["macro_f1"],
            per_class=[ClassMetrics(label, m["precision"], m["recall"], m["f1"], m["support"])
                       for label, m in data["per_class"].items()],
            confusion=data["confusion"], ece=data["ece"], accuracy_ci=tuple(data["ci"]["accuracy"]),
            macro_f1_ci=tuple(data["ci"]["macro_f1"]), bootstrap_resamples=data["bootstrap_resamples"],
        )


# ----------------------------------------------------------------------------------- validation

def _labels(y: np.ndarray, name: str, n_classes: int) -> np.ndarray:
    """`y` as a 1-D int64 array of indices in [0, n_classes), or InputError."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise InputError(f"{name} must be a 1-D array of class indices, got shape {arr.shape}.")
    if arr.size == 0:
        raise InputError(f"Nothing to evaluate: {name} is empty.")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{name} must hold integer class indices, got dtype {arr.dtype}.")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise InputError(f"{name} must hold whole-number class indices.")
    out = arr.astype(np.int64)
    low, high = int(out.min()), int(out.max())
    if low < 0 or high >= n_classes:
        bad = low if low < 0 else high
        raise InputError(f"{name} holds class index {bad}, outside 0..{n_classes - 1} ({n_classes} classes).")
    return out


def _probabilities(y_true, probabilities, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probabilities)
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] == 0:
        if probs.size == 0:
            raise InputError(f"Nothing to evaluate: probabilities are empty (shape {probs.shape}).")
        raise InputError(f"probabilities must be a 2-D array (N, classes), got shape {probs.shape}.")
    if n_classes is not None and probs.shape[1] != n_classes:
        raise InputError(f"probabilities must have shape (N, {n_classes}) for {n_classes} classes, "
                         f"got {probs.shape}.")
    if not np.issubdtype(probs.dtype, np.number) or probs.dtype == bool:
        raise InputError(f"probabilities must be numbers, got dtype {probs.dtype}.")
    probs = probs.astype(np.float64, copy=False)
    if not np.all(np.isfinite(probs)):
        raise InputError("probabilities contain NaN or infinite values.")
    if probs.min() < -1e-6 or probs.max() > 1 + 1e-6:
        raise InputError(f"probabilities must lie in [0, 1], got values from {probs.min():g} to {probs.max():g}.")
    labels = _labels(y_true, "y_true", probs.shape[1])
    if labels.shape[0] != probs.shape[0]:
        raise InputError(f"y_true has {labels.shape[0]} entries but probabilities have {probs.shape[0]} rows.")
    return labels, probs


# -------------------------------------------------------------------------------------- metrics

def _confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def _macro_f1_batch(confusions: np.ndarray) -> np.ndarray:
    """Macro-F1 of each (K, K) confusion in a (R, K, K) stack, with the present-or-predicted rule."""
    r, k, _ = confusions.shape
    tp = confusions.reshape(r, k * k)[:, :: k + 1].astype(np.float64)
    support = confusions.sum(axis=2)
    predicted = confusions.sum(axis=1)
    denom = (support + predicted).astype(np.float64)  # = 2·TP + FP + FN
    included = denom > 0
    f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=included)
    counted = included.sum(axis=1)
    return np.divide(f1.sum(axis=1), counted, out=np.zeros(r), where=counted > 0)


def macro_f1(confusion: np.ndarray) -> float:
    """Macro-F1 of a (K, K) confusion matrix (rows = true, columns = predicted).

    F1 is averaged over the classes present in y_true (row sum > 0) OR predicted (column sum > 0);
    classes with neither are excluded, a class with support but no predictions counts as F1 = 0.
    Equal to ``sklearn.metrics.f1_score(y_true, y_pred, labels=<present-or-predicted>,
    average="macro")``. An all-zero matrix gives 0.0.
    """
    conf = np.asarray(confusion)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1] or conf.shape[0] == 0:
        raise InputError(f"confusion must be a non-empty square (K, K) matrix, got shape {conf.shape}.")
    if np.any(conf < 0):
        raise InputError("confusion counts cannot be negative.")
    return float(_macro_f1_batch(conf[None, :, :])[0])


def expected_calibration_error(y_true, probabilities, bins: int = ECE_BINS) -> float:
    """Expected calibration error over `bins` equal-width confidence bins on [0, 1].

    Confidence is the top probability of each row, the prediction its argmax. Bins are
    right-closed, (i/bins, (i+1)/bins], with 0 falling into the first one. ECE is
    ``sum_b (n_b / N) * |accuracy_b - mean confidence_b|`` over the non-empty bins.
    """
    if int(bins) != bins or bins < 1:
        raise InputError(f"bins must be a positive whole number, got {bins!r}.")
    bins = int(bins)
    labels, probs = _probabilities(y_true, probabilities)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    inner_edges = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    which = np.searchsorted(inner_edges, confidence, side="left")  # edge value -> lower bin
    gap = np.abs(np.bincount(which, weights=correct, minlength=bins)
                 - np.bincount(which, weights=confidence, minlength=bins))
    # |sum(correct) - sum(conf)| / N == (n_b / N) * |acc_b - conf_b| for each bin.
    return float(gap.sum() / labels.shape[0])


# ------------------------------------------------------------------------------------ bootstrap

def _resampled_confusions(pairs: list[np.ndarray], k: int, resamples: int, seed: int):
    """For each chunk of resamples: (index of its first resample, [one (rows, K, K) confusion stack per
    array of `pairs`]). Every array is a per-sample cell code (true * K + pred) over the same N samples,
    and all are resampled with the same rows ``idx = np.random.default_rng(seed).integers(0, N,
    size=(resamples, N))`` (drawn in row chunks when memory requires, which yields the identical matrix)."""
    n = pairs[0].shape[0]
    per_resample_bytes = 8 * n * (1 + len(pairs)) + len(pairs) * (8 * k * k + 64 * k)
    chunk = max(1, min(resamples, _BOOTSTRAP_MEMORY_BYTES // per_resample_bytes))
    rng = np.random.default_rng(seed)
    cells = k * k
    for start in range(0, resamples, chunk):  # one iteration unless memory demands more
        rows = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(rows, n))
        offsets = (np.arange(rows, dtype=np.int64) * cells)[:, None]
        stacks = [np.bincount((pair[idx] + offsets).ravel(), minlength=rows * cells).reshape(rows, k, k)
                  for pair in pairs]
        del idx
        yield start, stacks


def bootstrap_resamples(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, *, resamples: int = 1000,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy, macro-F1) of each bootstrap resample, two arrays of `resamples` values.

    Resample b uses the rows ``idx[b]`` of
    ``idx = np.random.default_rng(seed).integers(0, N, size=(resamples, N))`` (drawn in row chunks
    from the same Generator when memory requires, which yields the identical matrix). For each
    resample the accuracy is the mean of ``y_true[idx[b]] == y_pred[idx[b]]`` and the macro-F1
    follows the same present-or-predicted rule as `macro_f1`. Two prediction sets of the same
    rows scored with the same seed are resampled alike (a paired bootstrap).

    All resamples are computed at once: one ``np.bincount`` over
    ``resample * K*K + true * K + pred`` gives every resample's confusion matrix.
    """
    if int(n_classes) != n_classes or n_classes < 1:
        raise InputError(f"n_classes must be a positive whole number, got {n_classes!r}.")
    if int(resamples) != resamples or resamples < 1:
        raise InputError(f"resamples must be a positive whole number, got {resamples!r}.")
    k, resamples = int(n_classes), int(resamples)
    truth = _labels(y_true, "y_true", k)
    pred = _labels(y_pred, "y_pred", k)
    n = truth.shape[0]
    if pred.shape[0] != n:
        raise InputError(f"y_true has {n} entries but y_pred has {pred.shape[0]}.")

    accuracy = np.empty(resamples)
    macro = np.empty(resamples)
    for start, (confusions,) in _resampled_confusions([truth * k + pred], k, resamples, seed):
        rows = confusions.shape[0]
        correct = confusions.reshape(rows, k * k)[:, :: k + 1].sum(axis=1)
        accuracy[start:start + rows] = correct / n  # == mean of correct[idx] along axis 1
        macro[start:start + rows] = _macro_f1_batch(confusions)
        del confusions  # before the next chunk allocates its own
    return accuracy, macro


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles (numpy's default linear
    interpolation) of resample values: (2.5, 97.5) for level 0.95."""
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be between 0 and 1, got {level!r}.")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, *, resamples: int = 1000,
                 seed: int = 0, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals for accuracy and macro-F1: {"accuracy": (lo, hi), "macro_f1": (lo, hi)},
    from `bootstrap_resamples` and `percentile_interval`."""
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be between 0 and 1, got {level!r}.")
    accuracy, macro = bootstrap_resamples(y_true, y_pred, n_classes, resamples=resamples, seed=seed)
    return {"accuracy": percentile_interval(accuracy, level), "macro_f1": percentile_interval(macro, level)}


def paired_bootstrap_macro_f1(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_classes: int, *,
                              resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Macro-F1 of b minus macro-F1 of a on the same examples, with its paired percentile bootstrap
    interval: each resample draws the same rows for both (as `bootstrap_ci` draws them), so the
    interval reflects the difference, not the two spreads. {"difference", "ci": (lo, hi), "level",
    "resamples", "a", "b"} (a and b: the two macro-F1 on all examples)."""
    k = int(n_classes)
    truth = _labels(y_true, "y_true", k)
    a, b = _labels(pred_a, "pred_a", k), _labels(pred_b, "pred_b", k)
    if not truth.shape[0] == a.shape[0] == b.shape[0]:
        raise InputError(f"y_true, pred_a and pred_b differ in length ({truth.shape[0]}, {a.shape[0]}, {b.shape[0]}).")
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be between 0 and 1, got {level!r}.")
    differences = np.empty(int(resamples))
    for start, (conf_a, conf_b) in _resampled_confusions([truth * k + a, truth * k + b], k, int(resamples), seed):
        differences[start:start + conf_a.shape[0]] = _macro_f1_batch(conf_b) - _macro_f1_batch(conf_a)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(differences, [tail, 100.0 - tail])
    f1_a, f1_b = macro_f1(_confusion(truth, a, k)), macro_f1(_confusion(truth, b, k))
    return {"difference": f1_b - f1_a, "ci": (float(lo), float(hi)), "level": level, "resamples": int(resamples),
            "a": f1_a, "b": f1_b}


# ----------------------------------------------------------------------------------- evaluation

def evaluate(y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str], *,
             resamples: int = 1000, seed: int = 0) -> Evaluation:
    """Evaluate predicted class probabilities (N, len(classes)) against true class indices (N,).

    Predictions are the argmax of each row. Macro-F1 follows the present-or-predicted rule (see
    `macro_f1`; matches sklearn's ``f1_score(average="macro", labels=<present-or-predicted>)``),
    ECE uses 15 equal-width bins, and the intervals are 95% percentile bootstrap intervals from
    `bootstrap_ci` with the given `resamples` and `seed`. Empty input or mismatched shapes raise
    InputError.
    """
    if isinstance(classes, str):
        raise InputError("classes must be a sequence of class names, not a single string.")
    names = [str(c) for c in classes]
    if not names:
        raise InputError("classes is empty: there must be at least one class name.")
    if len(set(names)) != len(names):
        dupes = sorted({c for c in names if names.count(c) > 1})
        raise InputError(f"class names must be unique; repeated: {', '.join(dupes)}.")
    k = len(names)
    labels, probs = _probabilities(y_true, probabilities, k)
    pred = probs.argmax(axis=1)
    n = int(labels.shape[0])

    conf = _confusion(labels, pred, k)
    tp = np.diag(conf).astype(np.float64)
    support = conf.sum(axis=1)
    predicted = conf.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = (support + predicted).astype(np.float64)
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(k), where=denom > 0)
    per_class = [ClassMetrics(label=names[i], precision=float(precision[i]), recall=float(recall[i]),
                              f1=float(f1[i]), support=int(support[i])) for i in range(k)]

    ci = bootstrap_ci(labels, pred, k, resamples=resamples, seed=seed, level=CI_LEVEL)
    return Evaluation(
        classes=names, n=n, accuracy=float(tp.sum() / n), macro_f1=macro_f1(conf), per_class=per_class,
        confusion=conf.astype(int).tolist(), ece=expected_calibration_error(labels, probs, ECE_BINS),
        accuracy_ci=ci["accuracy"], macro_f1_ci=ci["macro_f1"], bootstrap_resamples=int(resamples),
    )


def format_evaluation(evaluation: Evaluation) -> str:
    """A compact plain-text report for logs: headline numbers with 95% CIs, ECE, a per-class
    table and the confusion matrix labelled with class names."""
    e = evaluation
    lines = [
        f"n={e.n}  classes={len(e.classes)}  bootstrap={e.bootstrap_resamples} resamples (95% CI)",
        f"accuracy  {e.accuracy:.4f}  [{e.accuracy_ci[0]:.4f}, {e.accuracy_ci[1]:.4f}]",
        f"macro-F1  {e.macro_f1:.4f}  [{e.macro_f1_ci[0]:.4f}, {e.macro_f1_ci[1]:.4f}]",
        f"ECE       {e.ece:.4f}  ({ECE_BINS} bins)",
        "",
    ]
    corner = "true \\ pred"
    name_w = max([len("class"), len(corner)] + [len(c) for c in e.classes])
    lines.append(f"{'class':<{name_w}}  {'precision':>9}  {'recall':>6}  {'f1':>6}  {'support':>7}")
    for m in e.per_class:
        lines.append(f"{m.label:<{name_w}}  {m.precision:>9.4f}  {m.recall:>6.4f}  {m.f1:>6.4f}  {m.support:>7d}")
    lines.append("")
    lines.append("confusion (rows = true, columns = predicted)")
    widths = [max(len(c), *(len(str(row[j])) for row in e.confusion)) for j, c in enumerate(e.classes)]
    lines.append(f"{corner:<{name_w}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(e.classes, widths)))
    for name, row in zip(e.classes, e.confusion):
        lines.append(f"{name:<{name_w}}  " + "  ".join(f"{v:>{w}d}" for v, w in zip(row, widths)))
    return "\n".join(lines)


def mean_interval(values: Sequence[float], level: float = CI_LEVEL,
                  bounds: tuple[float, float] = (-np.inf, np.inf)) -> dict:
    """The mean of per-fold values and its Student-t interval (`level`, 95% by default):
    mean ± t((1+level)/2, n-1) · s/√n with s the sample standard deviation, clipped to the metric's
    `bounds` (few folds that disagree can reach past 0 or 1). With one value the interval is that
    value. {"mean", "low", "high", "values"}."""
    from scipy.stats import t

    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise InputError("no values to average")
    mean = float(values.mean())
    half = 0.0
    if values.size > 1:
        half = float(t.ppf((1 + level) / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size))
    return {"mean": mean, "low": max(mean - half, bounds[0]), "high": min(mean + half, bounds[1]),
            "values": [float(v) for v in values]}


def format_with_ci(metrics: dict | None, key: str, *, sign: bool = True) -> str:
    """One headline number of a stored evaluation (`to_dict`) as a percentage with its 95% CI:
    '91.7% (83–100)' ('91.7 (83–100)' without the sign); an em dash when missing."""
    if not metrics or metrics.get(key) is None:
        return "—"
    low, high = (metrics.get("ci") or {}).get(key, (None, None))
    return (f"{metrics[key] * 100:.1f}" + ("%" if sign else "")
            + (f" ({low * 100:.0f}–{high * 100:.0f})" if low is not None else ""))
