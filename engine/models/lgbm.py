"""The "lgbm" kind: LightGBM multiclass gradient boosting on feature vectors.

Boosting stops early once the validation loss has not improved for `patience` rounds, and the
model keeps the best round. Saved as LightGBM's own text model plus a small JSON file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.models.artifacts import ModelFiles
from engine.models.base import Classifier, NotSupported, TrainingCallback
from engine.settings import cpu_threads

MODEL_FILE = "lgbm.txt"
META_FILE = "lgbm.json"
REPORT_EVERY = 10  # rounds between callback reports
ONNX_OPSET = 15  # the ai.onnx opset of an exported model (onnxruntime >= 1.10 runs it)


def _accuracy(predictions: np.ndarray, data) -> tuple[str, float, bool]:
    return "accuracy", float(np.mean(predictions.argmax(axis=1) == data.get_label())), True


class LightGbmClassifier(Classifier):
    kind = "lgbm"
    input_rank = 1
    has_logits = True
    saved_files = (META_FILE, MODEL_FILE)
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

    def logits(self, X: np.ndarray) -> np.ndarray:
        return self.booster_.predict(np.asarray(X, dtype=np.float32), raw_score=True, num_threads=cpu_threads())

    def save(self, folder: Path) -> None:
        self.booster_.save_model(Path(folder) / MODEL_FILE)
        (Path(folder) / META_FILE).write_text(json.dumps({"hyperparams": self.hyperparams, "n_classes": self.n_classes_,
                                                           "n_features": self.booster_.num_feature()}))

    @classmethod
    def load(cls, files: ModelFiles) -> LightGbmClassifier:
        import lightgbm as lgb

        saved = files.json(META_FILE, {"hyperparams": dict, "n_classes": int})
        model = cls._from_saved(files, META_FILE, saved)
        text = files.text(MODEL_FILE)
        _check_model_text(files, text, model.n_classes_, saved.get("n_features"))
        try:
            model.booster_ = lgb.Booster(model_str=text)
        except lgb.basic.LightGBMError as error:
            raise files.damaged(MODEL_FILE, f"LightGBM cannot read it ({error})") from None
        return model

    def export_onnx(self, path: Path) -> None:
        """The boosted trees as an ONNX TreeEnsembleClassifier (onnxmltools' LightGBM converter), with
        the one output 'probabilities' (the converter's 'label' output is dropped)."""
        try:
            import onnxmltools
            from onnxmltools.convert.common.data_types import FloatTensorType
        except ImportError:
            raise NotSupported("lgbm models cannot be exported to ONNX: onnxmltools is not installed") from None
        features = FloatTensorType([None, self.booster_.num_feature()])
        graph = onnxmltools.convert_lightgbm(self.booster_, initial_types=[("features", features)], zipmap=False,
                                             target_opset=ONNX_OPSET)
        kept = [output for output in graph.graph.output if output.name == "probabilities"]
        del graph.graph.output[:]
        graph.graph.output.extend(kept)
        _apply_temperature(graph, self.temperature_)
        Path(path).write_bytes(graph.SerializeToString())


def _apply_temperature(graph, temperature: float) -> None:
    """Make the graph's 'probabilities' softmax(log(p) / temperature), as `predict_proba` computes
    them (log p is the raw score up to a per-row constant, which softmax ignores)."""
    from onnx import TensorProto, helper

    for node in graph.graph.node:
        node.output[:] = ["uncalibrated" if name == "probabilities" else name for name in node.output]
    graph.graph.initializer.append(helper.make_tensor("temperature", TensorProto.FLOAT, [], [float(temperature)]))
    graph.graph.node.extend([
        helper.make_node("Log", ["uncalibrated"], ["log_probabilities"]),
        helper.make_node("Div", ["log_probabilities", "temperature"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["probabilities"], axis=1),
    ])


def _check_model_text(files: ModelFiles, text: str, n_classes: int, n_features: int | None) -> None:
    """The outline of a LightGBM text model, checked before LightGBM parses it: its parser can crash
    or spin on a cut or garbled file (a registered file's hash rules that out; this covers files
    registered before hashes were kept)."""
    if not text.startswith("tree\nversion=") or "\nend of trees\n" not in text:
        raise files.damaged(MODEL_FILE, "not a complete LightGBM text model")
    header = dict(line.split("=", 1) for line in text[:4096].splitlines()[1:8] if "=" in line)
    if header.get("num_class") != str(n_classes):
        raise files.damaged(MODEL_FILE, f"num_class={header.get('num_class')} where {META_FILE} says {n_classes}")
    if n_features is not None and header.get("max_feature_idx") != str(n_features - 1):
        raise files.damaged(MODEL_FILE, f"max_feature_idx={header.get('max_feature_idx')} where {META_FILE} "
                                        f"says {n_features} features")


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
