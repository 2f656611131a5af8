"""The one interface every model kind follows, in scikit-learn's habits.

Hyperparameters are explicit keywords (validated against `defaults`), fitted state ends in `_`,
`seed` makes a fit repeatable. Models see class indices 0..K-1; the registry keeps the names.
Artifacts are written without pickle (JSON, LightGBM text, safetensors) into a folder, and read
back through `engine.models.artifacts.ModelFiles`, which refuses a file changed since registration
before it is parsed; `load` checks what it parsed and raises `ModelFilesDamaged` for anything off.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from engine.errors import WorkbenchError
from engine.models.artifacts import ModelFiles


class TrainingCallback:
    """Listens to training; every hook does nothing unless overridden (Lightning-style)."""

    def on_epoch_end(self, epoch: int, total_epochs: int, train_loss: float, val_loss: float | None,
                     val_metric: float | None) -> None:
        """After each epoch (or boosting round block): losses and the validation metric (accuracy)."""

    def should_stop(self) -> bool:
        """Checked between epochs; True stops training early (cancellation)."""
        return False


class NotSupported(WorkbenchError):
    """The model kind cannot do what was asked (e.g. an export format)."""


def _same_type(value: Any, default: Any) -> bool:
    """Whether a saved hyperparameter has its default's type (an integer may stand for a float, and a
    whole number for "auto", which training resolves to one)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default)
    if default == "auto" and isinstance(value, int):
        return True
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


class Classifier(ABC):
    kind: ClassVar[str]
    input_rank: ClassVar[int] = 1  # 1: rows are feature vectors (N, D); 2: rows are patches (N, M, T)
    feature_kinds: ClassVar[tuple[str, ...] | None] = None  # the feature kinds it trains on, when only some fit
    has_logits: ClassVar[bool] = False  # True when `logits` gives the model's own pre-softmax scores
    # Temperature scaling fitted on validation data after training (engine/evaluation/calibration.py);
    # saved in model.json by `kinds.save_model`, 1.0 (no scaling) until set.
    temperature_: float = 1.0
    defaults: ClassVar[dict[str, Any]] = {}
    saved_files: ClassVar[tuple[str, ...]]  # what `save` writes; the first holds the hyperparameters and class count

    def __init__(self, **hyperparams: Any) -> None:
        unknown = set(hyperparams) - set(self.defaults)
        if unknown:
            raise ValueError(f"{self.kind}: unknown hyperparameter(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(self.defaults))}")
        self.hyperparams: dict[str, Any] = {**self.defaults, **hyperparams}

    def get_params(self) -> dict[str, Any]:
        return dict(self.hyperparams)

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray, *, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
            n_classes: int | None = None, callback: TrainingCallback | None = None,
            sample_weight: np.ndarray | None = None) -> Classifier:
        """Train on X (float32) and y (int class indices). Validation data, when given, drives early
        stopping and the per-epoch val loss / metric. Sets `n_classes_` (n_classes or max(y)+1).
        `sample_weight` (one non-negative number per row) scales each row's share of the loss, on top
        of class balancing."""

    @abstractmethod
    def logits(self, X: np.ndarray) -> np.ndarray:
        """(N, n_classes_) the model's own pre-softmax scores, before temperature scaling."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(N, n_classes_) probabilities, each row summing to 1: softmax(logits / temperature_)."""
        scores = np.asarray(self.logits(X), dtype=np.float64) / self.temperature_
        exp = np.exp(scores - scores.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the fitted model's files into `folder` (which exists). No pickle."""

    @classmethod
    @abstractmethod
    def load(cls, files: ModelFiles) -> Classifier:
        """Read a model written by `save`, checking that its parts fit together."""

    @classmethod
    def _from_saved(cls, files: ModelFiles, name: str, saved: dict[str, Any]) -> Classifier:
        """An unfitted model with the hyperparameters and class count of `saved` (file `name`)."""
        try:
            model = cls(**saved["hyperparams"])
        except ValueError as error:
            raise files.damaged(name, str(error)) from None
        for key, value in model.hyperparams.items():
            if not _same_type(value, cls.defaults[key]):
                raise files.damaged(name, f"hyperparameter {key} is {value!r}, not like its default {cls.defaults[key]!r}")
        if saved["n_classes"] < 1:
            raise files.damaged(name, f"n_classes is {saved['n_classes']}")
        model.n_classes_ = saved["n_classes"]
        return model

    def export_onnx(self, path: Path) -> None:
        """Write an ONNX graph: input 'features' float32 [batch, ...], output 'probabilities' [batch, K]
        (softmax(logits / temperature_): the temperature is part of the graph)."""
        raise NotSupported(f"{self.kind} models cannot be exported to ONNX")
