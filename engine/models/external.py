"""The "onnx" kind: a model trained elsewhere, imported as an ONNX graph that maps a batch of
feature vectors (or patches) to class probabilities.

It is never trained here (`fit` is not supported); it predicts through ONNX Runtime and exports
as the very bytes it was imported from. Saved as the graph plus a small JSON file naming its input
and output, read back (like every kind) through `ModelFiles`, so a changed file is refused before
ONNX Runtime parses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.models.artifacts import ModelFiles
from engine.models.base import Classifier, NotSupported

MODEL_FILE = "model.onnx"
META_FILE = "onnx.json"
PROBABILITIES = "probabilities"  # the output name workbench's own exports use


def open_session(data: bytes):
    """An ONNX Runtime session on the CPU for a graph's bytes (raises what ONNX Runtime raises)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: shape warnings would clutter the terminal
    return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def graph_io(session) -> tuple[str, str, int]:
    """(input name, output name, input rank) of a classifier graph: exactly one input, and the
    output named 'probabilities' or else the only one. ValueError saying what is wrong otherwise."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ValueError(f"it has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); a classifier takes "
                         "one: a batch of feature vectors")
    if inputs[0].type != "tensor(float)":
        raise ValueError(f"its input {inputs[0].name!r} is {inputs[0].type}, not tensor(float)")
    names = [o.name for o in outputs]
    output = PROBABILITIES if PROBABILITIES in names else names[0] if len(names) == 1 else None
    if output is None:
        raise ValueError(f"it has outputs {', '.join(names)}: name the probabilities output 'probabilities'")
    rank = len(inputs[0].shape) - 1
    if rank < 1:
        raise ValueError(f"its input {inputs[0].name!r} has shape {inputs[0].shape}: no batch of feature vectors")
    return inputs[0].name, output, rank


class OnnxClassifier(Classifier):
    kind = "onnx"
    defaults: dict = {}
    saved_files = (META_FILE, MODEL_FILE)

    @classmethod
    def from_bytes(cls, data: bytes, n_classes: int) -> OnnxClassifier:
        """The model of an ONNX graph's bytes; raises ValueError (or ONNX Runtime's error) when it
        cannot be a classifier."""
        model = cls()
        model.graph_ = data
        model.session_ = open_session(data)
        model.input_, model.output_, model.rank_ = graph_io(model.session_)
        model.n_classes_ = int(n_classes)
        return model

    def fit(self, X, y, **_) -> OnnxClassifier:
        raise NotSupported("an imported ONNX model cannot be trained here; train a version of another kind")

    def graph_outputs(self, X: np.ndarray) -> np.ndarray:
        """What the graph itself gives for a batch (what an import checks, and export parity compares)."""
        return np.asarray(self.session_.run([self.output_], {self.input_: np.asarray(X, dtype=np.float32)})[0],
                          dtype=np.float64)

    def logits(self, X: np.ndarray) -> np.ndarray:
        """The log of the graph's probabilities (an imported model keeps temperature 1, so its
        probabilities are the graph's own)."""
        return np.log(np.maximum(self.graph_outputs(X), np.finfo(np.float64).tiny))

    def save(self, folder: Path) -> None:
        (Path(folder) / MODEL_FILE).write_bytes(self.graph_)
        (Path(folder) / META_FILE).write_text(json.dumps({"hyperparams": {}, "n_classes": self.n_classes_,
                                                           "input": self.input_, "output": self.output_}))

    @classmethod
    def load(cls, files: ModelFiles) -> OnnxClassifier:
        saved = files.json(META_FILE, {"hyperparams": dict, "n_classes": int, "input": str, "output": str})
        cls._from_saved(files, META_FILE, saved)  # checks the hyperparameters and class count
        data = files.read(MODEL_FILE)
        try:
            model = cls.from_bytes(data, saved["n_classes"])
        except Exception as error:  # ONNX Runtime raises its own exception types for a bad graph
            raise files.damaged(MODEL_FILE, f"ONNX Runtime cannot use it ({error})") from None
        if (model.input_, model.output_) != (saved["input"], saved["output"]):
            raise files.damaged(MODEL_FILE, f"its input/output are {model.input_}/{model.output_} where {META_FILE} "
                                            f"says {saved['input']}/{saved['output']}")
        return model

    def export_onnx(self, path: Path) -> None:
        Path(path).write_bytes(self.graph_)
