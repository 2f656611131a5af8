"""Cross-validation of one model kind on training data: grouped folds over the training and
validation rows (the test split is never seen), each metric's mean and 95% interval over folds.

Each fold trains a fresh model on the other folds; its early stopping listens to a validation part
of those folds (whole groups again), never to the held-out fold. The groups are the ones the
train/val/test split kept whole (packs, inferred groups or clips), so a pack is never heard on
both sides of a fold; augmented copies go with their original and are never scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from engine.concepts import Split
from engine.datasets.splits import assign_splits, grouped_folds
from engine.errors import Cancelled
from engine.models.base import TrainingCallback
from engine.progress import CancelToken
from engine.training.data import TrainingData

CV_METRICS = ("accuracy", "macro_f1", "ece")
INNER_VAL = 0.15  # share of a fold's training groups that early stopping listens to


class _Cancellable(TrainingCallback):
    def __init__(self, cancel: CancelToken | None) -> None:
        self.cancel = cancel

    def should_stop(self) -> bool:
        return self.cancel is not None and self.cancel.cancelled


def cv_rows(data: TrainingData) -> np.ndarray:
    """The rows cross-validation may use: training and validation, never test."""
    return np.flatnonzero(data.splits != str(Split.TEST))


def cv_groups(data: TrainingData) -> int:
    """How many groups the cross-validation rows hold (the most folds they allow)."""
    return len({data.split_groups[row] for row in cv_rows(data)})


def cross_validate(data: TrainingData, kind: str, hyperparams: dict, folds: int, *, seed: int = 0,
                   cancel: CancelToken | None = None, on_fold: Callable[[int, int], None] | None = None) -> dict:
    """{"folds", "grouping", "metrics": {metric: mean_interval}, "seconds"} for `kind` with
    `hyperparams` over `folds` grouped folds."""
    from engine.evaluation.metrics import evaluate, mean_interval
    from engine.models.kinds import make_model

    started = time.monotonic()
    rows = cv_rows(data)
    groups = np.array(data.split_groups, dtype=object)
    augmented = np.array([bool(t.augment) for t in data.targets] if data.targets else [False] * len(data.y))
    fold_of = grouped_folds([data.classes[i] for i in data.y[rows]], list(groups[rows]), folds, seed=seed)
    scores: dict[str, list[float]] = {metric: [] for metric in CV_METRICS}
    for fold in range(folds):
        if cancel is not None and cancel.cancelled:
            raise Cancelled(f"cancelled in cross-validation fold {fold + 1}/{folds}")
        fitting = rows[fold_of != fold]
        held_out = rows[(fold_of == fold) & ~augmented[rows]]
        inner = np.array([str(s) for s in assign_splits([data.classes[i] for i in data.y[fitting]],
                                                         list(groups[fitting]), val=INNER_VAL, test=0.0, seed=seed)])
        train, stop = fitting[inner == str(Split.TRAIN)], fitting[inner == str(Split.VAL)]
        model = make_model(kind, **{"seed": seed, **hyperparams})
        model.fit(data.features[train], data.y[train], X_val=data.features[stop] if len(stop) else None,
                  y_val=data.y[stop] if len(stop) else None, n_classes=len(data.classes), callback=_Cancellable(cancel))
        result = evaluate(data.y[held_out], model.predict_proba(data.features[held_out]), data.classes,
                          resamples=1, seed=seed)
        for metric in CV_METRICS:
            scores[metric].append(getattr(result, metric))
        if on_fold is not None:
            on_fold(fold + 1, folds)
    if cancel is not None and cancel.cancelled:
        raise Cancelled("cancelled in cross-validation")
    return {"folds": folds, "grouping": data.grouping, "rows": int(len(rows)),
            "metrics": {metric: mean_interval(values, bounds=(0.0, 1.0)) for metric, values in scores.items()},
            "seconds": round(time.monotonic() - started, 3)}
