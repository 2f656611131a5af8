"""Embeddings from any audio-embedding ONNX model placed in the workspace.

Input contract (documented in the README):
- the model file is `<workspace>/models/embeddings/<NAME>.onnx`;
- an optional sidecar `<NAME>.json` says `{"sample_rate": 48000, "input_seconds": 10.0}`
  (defaults: 16000 Hz, and the model's own fixed length if its input has one, else the segment's length);
- the model's first input takes mono float32 samples in [-1, 1] shaped [batch, samples], [samples]
  or [batch, 1, samples]; batch is 1;
- the first output is the embedding: [batch, dim], [dim] or [batch, frames, dim] (frames are averaged).
The model file's hash is part of the cache key, so replacing the file invalidates its features.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.audio.regions import normalize_loudness, onset_region
from engine.errors import InputError, NotFound
from engine.features.base import Extractor


@cache
def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OnnxExtractor(Extractor):
    name = "onnx"
    code_modules = ("engine.audio.regions",)
    defaults = {"model_path": "", "model_sha256": "", "sample_rate": 16000, "input_seconds": None,
                "region_s": None, "target_db": -20.0}

    @classmethod
    def from_folder(cls, embeddings_dir: Path, name: str, **params: Any) -> OnnxExtractor:
        model_path = Path(embeddings_dir) / f"{name}.onnx"
        if not model_path.is_file():
            available = sorted(p.stem for p in Path(embeddings_dir).glob("*.onnx"))
            raise NotFound(f"{model_path}: no such embedding model (available: {', '.join(available) or 'none'})")
        sidecar = model_path.with_suffix(".json")
        settings: dict[str, Any] = {}
        if sidecar.is_file():
            try:
                settings = json.loads(sidecar.read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise InputError(f"{sidecar}: cannot read the model's settings ({error})") from error
            settings = {k: v for k, v in settings.items() if k in ("sample_rate", "input_seconds", "region_s")}
        return cls(model_path=str(model_path), model_sha256=_file_sha256(str(model_path)), **{**settings, **params})

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._session = None

    def __getstate__(self) -> dict:
        return {"params": self.params}

    def __setstate__(self, state: dict) -> None:
        self.params = state["params"]
        self._session = None

    def _open(self):
        if self._session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            try:
                self._session = onnxruntime.InferenceSession(
                    self.params["model_path"], options, providers=["CPUExecutionProvider"])
            except Exception as error:  # onnxruntime raises its own exception types
                raise InputError(f"{self.params['model_path']}: cannot load ONNX model ({error})") from error
        return self._session

    def _input_length(self, model_input, natural: int) -> int:
        fixed = model_input.shape[-1]
        if isinstance(fixed, int) and fixed > 0:
            return fixed
        if self.params["input_seconds"]:
            return int(round(self.params["input_seconds"] * self.sample_rate))
        return max(natural, 1)

    def extract(self, samples: np.ndarray) -> np.ndarray:
        session = self._open()
        model_input = session.get_inputs()[0]
        region = onset_region(samples, self.sample_rate, self.params["region_s"])
        region = normalize_loudness(region, self.params["target_db"])
        length = self._input_length(model_input, region.size)
        fitted = np.zeros(length, dtype=np.float32)
        fitted[: min(length, region.size)] = region[:length]
        shaped = {1: fitted, 2: fitted[None, :], 3: fitted[None, None, :]}.get(len(model_input.shape))
        if shaped is None:
            raise InputError(f"{self.params['model_path']}: input {model_input.name} has shape "
                             f"{model_input.shape}; expected [batch, samples]")
        output = np.asarray(session.run(None, {model_input.name: shaped})[0], dtype=np.float32)
        return output.reshape(-1, output.shape[-1]).mean(axis=0)
