"""The "lgbm" kind: LightGBM multiclass gradient boosting on feature vectors.

Boosting stops early once the validation loss has not improved for `patience` rounds, and the
model keeps the best round. Saved as LightGBM's own text model plus a small JSON file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.models.base import Classifier, NotSupported, TrainingCallback
from engine.settings import cpu_threads

MODEL_FILE = "lgbm.txt"
META_FILE = "lgbm.json"
REPORT_EVERY = 10  # rounds between callback reports


def _accuracy(predictions: np.ndarray, data) -> tuple[str, float, bool]:
    return "accuracy", float(np.mean(predictions.argmax(axis=1) == data.get_label())), True


class LightGbmClassifier(Classifier):
    kind = "lgbm"
    input_rank = 1
    has_logits = True
    defaults = {"n_estimators": 400, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 5,
                "patience": 30, "class_balance": True, "seed": 0}

    def fit(self, X, y, *, X_val=None, y_val=None, n_classes=None, callback=None, sample_weight=None):
        import lightgbm as lgb

        hp = self.hyperparams
        X, y = np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64)
        self.n_classes_ = int(n_classes or y.max() + 1)
        weight = None
        if hp["class_balance"]:
            counts = np.bincount(y)
            weight = len(y) / (np.count_nonzero(counts) * counts[y])
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dtype=np.float64) * (1.0 if weight is None else weight)
        params = {"objective": "multiclass", "num_class": self.n_classes_, "metric": "multi_logloss",
                  "learning_rate": hp["learning_rate"], "num_leaves": hp["num_leaves"],
                  "min_child_samples": hp["min_child_samples"], "seed": hp["seed"], "deterministic": True,
                  "force_row_wise": True, "num_threads": cpu_threads(), "verbose": -1}
        train = lgb.Dataset(X, y, weight=weight)
        valid_sets, valid_names = [train], ["train"]
        if X_val is not None and len(X_val):
            valid_sets.append(lgb.Dataset(np.asarray(X_val, dtype=np.float32), np.asarray(y_val), reference=train))
            valid_names.append("val")
        booster = lgb.train(params, train, num_boost_round=hp["n_estimators"], valid_sets=valid_sets,
                            valid_names=valid_names, feval=_accuracy,
                            callbacks=[_monitor(hp["patience"], callback or TrainingCallback())])
        # Keep the rounds up to the best one; the text form is also exactly what `save` writes.
        self.booster_ = lgb.Booster(model_str=booster.model_to_string())
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.booster_.predict(np.asarray(X, dtype=np.float32), num_threads=cpu_threads())

    def logits(self, X: np.ndarray) -> np.ndarray:
        return self.booster_.predict(np.asarray(X, dtype=np.float32), raw_score=True, num_threads=cpu_threads())

    def save(self, folder: Path) -> None:
        self.booster_.save_model(Path(folder) / MODEL_FILE)
        (Path(folder) / META_FILE).write_text(json.dumps({"hyperparams": self.hyperparams,
                                                           "n_classes": self.n_classes_}))

    @classmethod
    def load(cls, folder: Path) -> LightGbmClassifier:
        import lightgbm as lgb

        saved = json.loads((Path(folder) / META_FILE).read_text())
        model = cls(**saved["hyperparams"])
        model.n_classes_ = saved["n_classes"]
        model.booster_ = lgb.Booster(model_file=Path(folder) / MODEL_FILE)
        return model

    def export_onnx(self, path: Path) -> None:
        raise NotSupported("lgbm models cannot be exported to ONNX: no LightGBM-to-ONNX converter "
                           "(such as onnxmltools) is installed")


def _monitor(patience: int, callback: TrainingCallback):
    """A LightGBM callback: reports every REPORT_EVERY rounds, stops on a stalled val loss or on request."""
    import lightgbm as lgb

    best = {"round": 0, "loss": float("inf"), "results": []}

    def monitor(env) -> None:
        results = {(r[0], r[1]): float(r[2]) for r in env.evaluation_result_list}
        done = env.iteration + 1 - env.begin_iteration
        total = env.end_iteration - env.begin_iteration
        val_loss = results.get(("val", "multi_logloss"))
        if val_loss is None or val_loss < best["loss"]:  # without validation data the latest round is the best
            best.update(round=env.iteration, loss=val_loss, results=env.evaluation_result_list)
        stalled = val_loss is not None and env.iteration - best["round"] >= patience
        stop = stalled or callback.should_stop()
        if done % REPORT_EVERY == 0 or done == total or stop:
            callback.on_epoch_end(done, total, results[("train", "multi_logloss")], val_loss,
                                  results.get(("val", "accuracy")))
        if stop:
            raise lgb.callback.EarlyStopException(best["round"], best["results"])

    return monitor
