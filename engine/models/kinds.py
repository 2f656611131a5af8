"""The model kinds by name, and saving / loading a model folder whatever its kind.

Kinds are imported when first used, so importing this module stays free of torch, LightGBM and
scikit-learn.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.models.artifacts import ModelFiles
from engine.models.base import Classifier

MODEL_FILE = "model.json"
_KIND_CLASSES = {
    "logreg": "engine.models.logreg:LogisticRegressionClassifier",
    "lgbm": "engine.models.lgbm:LightGbmClassifier",
    "mlp": "engine.models.mlp:MlpClassifier",
    "cnn": "engine.models.cnn:CnnClassifier",
    "finetune": "engine.models.finetune:FinetuneClassifier",
}
ENSEMBLE = "ensemble"  # members of the kinds above, made by `train --model auto --ensemble K`, never trained by name
_SAVED_CLASSES = {**_KIND_CLASSES, ENSEMBLE: "engine.models.ensemble:EnsembleClassifier",
                  "onnx": "engine.models.external:OnnxClassifier"}  # imported (`models import`), never trained here


class _Kinds(Mapping[str, type[Classifier]]):
    """A read-only mapping of kind name to class that imports a kind's module on lookup."""

    def __init__(self, classes: dict[str, str]) -> None:
        self._classes = classes

    def __getitem__(self, kind: str) -> type[Classifier]:
        module, name = self._classes[kind].split(":")
        return getattr(importlib.import_module(module), name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __contains__(self, kind: object) -> bool:
        return kind in self._classes


MODEL_KINDS: Mapping[str, type[Classifier]] = _Kinds(_KIND_CLASSES)  # the kinds a person trains by name
SAVED_KINDS: Mapping[str, type[Classifier]] = _Kinds(_SAVED_CLASSES)  # the kinds a model folder may hold


def _kind_class(kind: str) -> type[Classifier]:
    if kind not in SAVED_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {', '.join(SAVED_KINDS)}")
    return SAVED_KINDS[kind]


def make_model(kind: str, **hyperparams: Any) -> Classifier:
    return _kind_class(kind)(**hyperparams)


def save_model(model: Classifier, folder: Path) -> None:
    """The model's own files plus model.json naming its kind, hyperparameters and temperature."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder)
    (folder / MODEL_FILE).write_text(json.dumps({"kind": model.kind, "hyperparams": model.get_params(),
                                                 "temperature": model.temperature_}, indent=2))


def load_model(folder: Path, *, hashes: dict | None = None, kind: str | None = None,
               n_classes: int | None = None) -> Classifier:
    """The model saved in `folder`. With `hashes` (as `artifacts.file_hashes` recorded them) no file
    is parsed unless it is the one registered; `kind` and `n_classes`, when given, are what the
    registry expects. Any problem with the files raises `ModelFilesDamaged` naming the file."""
    files = ModelFiles(folder, hashes)
    saved = files.json(MODEL_FILE, {"kind": str})
    if saved["kind"] not in SAVED_KINDS:
        raise files.damaged(MODEL_FILE, f"unknown model kind {saved['kind']!r}")
    if kind is not None and saved["kind"] != kind:
        raise files.damaged(MODEL_FILE, f"kind {saved['kind']!r} where the registry has {kind!r}")
    kind_class = SAVED_KINDS[saved["kind"]]
    model = kind_class.load(files)
    temperature = saved.get("temperature", 1.0)  # folders saved before calibration have none
    if type(temperature) not in (int, float) or not math.isfinite(temperature) or temperature <= 0:
        raise files.damaged(MODEL_FILE, f"temperature {temperature!r} is not a positive number")
    model.temperature_ = float(temperature)
    if n_classes is not None and model.n_classes_ != n_classes:
        raise files.damaged(kind_class.saved_files[0], f"{model.n_classes_} classes where the registry has {n_classes}")
    return model
