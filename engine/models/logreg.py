"""The "logreg" kind: standardised features, then multinomial logistic regression.

scikit-learn fits; the fitted model is plain arrays (scaler, coefficients, intercepts) that
predict in numpy, are saved as one JSON file and export to ONNX through a tiny torch module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.models.artifacts import ModelFiles
from engine.models.base import Classifier

PARAMS_FILE = "logreg.json"
SCALE_FLOOR = 1e-6
ABSENT_CLASS_LOGIT = -50.0  # classes missing from the training labels get a probability of about 0


def _log_loss(probabilities: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(probabilities[np.arange(len(y)), y], 1e-15))))


class LogisticRegressionClassifier(Classifier):
    kind = "logreg"
    input_rank = 1
    has_logits = True
    saved_files = (PARAMS_FILE,)
    defaults = {"C": 1.0, "max_iter": 2000, "class_balance": True, "seed": 0}

    def fit(self, X, y, *, X_val=None, y_val=None, n_classes=None, callback=None, sample_weight=None):
        from sklearn.linear_model import LogisticRegression

        hp = self.hyperparams
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)
        self.n_classes_ = int(n_classes or y.max() + 1)
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.maximum(X.std(axis=0), SCALE_FLOOR)
        model = LogisticRegression(C=hp["C"], max_iter=hp["max_iter"], random_state=hp["seed"],
                                   class_weight="balanced" if hp["class_balance"] else None)
        model.fit((X - self.mean_) / self.scale_, y, sample_weight=sample_weight)
        coef, intercept = model.coef_, model.intercept_
        if len(model.classes_) == 2:  # scikit-learn keeps one logit (class 1 vs class 0); split it symmetrically
            coef, intercept = np.vstack([-coef, coef]) / 2, np.array([-intercept[0], intercept[0]]) / 2
        self.coef_ = np.zeros((self.n_classes_, X.shape[1]))
        self.intercept_ = np.full(self.n_classes_, ABSENT_CLASS_LOGIT)
        self.coef_[model.classes_], self.intercept_[model.classes_] = coef, intercept

        if callback is not None:
            train_loss = _log_loss(self.predict_proba(X), y)
            val_loss = val_accuracy = None
            if X_val is not None and len(X_val):
                y_val = np.asarray(y_val, dtype=np.int64)
                probabilities = self.predict_proba(X_val)
                val_loss = _log_loss(probabilities, y_val)
                val_accuracy = float(np.mean(probabilities.argmax(axis=1) == y_val))
            callback.on_epoch_end(1, 1, train_loss, val_loss, val_accuracy)
        return self

    def logits(self, X: np.ndarray) -> np.ndarray:
        standardized = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        return standardized @ self.coef_.T + self.intercept_

    def save(self, folder: Path) -> None:
        (Path(folder) / PARAMS_FILE).write_text(json.dumps({
            "hyperparams": self.hyperparams, "n_classes": self.n_classes_, "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(), "coef": self.coef_.tolist(), "intercept": self.intercept_.tolist()}))

    @classmethod
    def load(cls, files: ModelFiles) -> LogisticRegressionClassifier:
        saved = files.json(PARAMS_FILE, {"hyperparams": dict, "n_classes": int, "mean": list, "scale": list,
                                         "coef": list, "intercept": list})
        model = cls._from_saved(files, PARAMS_FILE, saved)
        arrays = {}
        for key in ("mean", "scale", "coef", "intercept"):
            try:
                arrays[key] = np.array(saved[key], dtype=np.float64)
            except (ValueError, TypeError):
                raise files.damaged(PARAMS_FILE, f"{key!r} is not an array of numbers") from None
            if not np.isfinite(arrays[key]).all():
                raise files.damaged(PARAMS_FILE, f"{key!r} holds a value that is not finite")
        n_features = len(arrays["mean"])
        expected = {"mean": (n_features,), "scale": (n_features,), "coef": (model.n_classes_, n_features),
                    "intercept": (model.n_classes_,)}
        for key, shape in expected.items():
            if arrays[key].shape != shape:
                raise files.damaged(PARAMS_FILE, f"{key!r} has shape {arrays[key].shape}, not {shape} "
                                                 f"({model.n_classes_} classes, {n_features} features)")
        if not (arrays["scale"] > 0).all():
            raise files.damaged(PARAMS_FILE, "'scale' holds a value that is not positive")
        model.mean_, model.scale_ = arrays["mean"], arrays["scale"]
        model.coef_, model.intercept_ = arrays["coef"], arrays["intercept"]
        return model

    def export_onnx(self, path: Path) -> None:
        import torch

        from engine.models.torch_nets import Standardize, export_onnx

        linear = torch.nn.Linear(self.coef_.shape[1], self.n_classes_)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(self.coef_))
            linear.bias.copy_(torch.from_numpy(self.intercept_))
        module = torch.nn.Sequential(Standardize(self.mean_.tolist(), self.scale_.tolist()), linear)
        export_onnx(module, torch.zeros(2, self.coef_.shape[1]), path, self.temperature_)
