"""Embeddings from any audio-embedding ONNX model placed in the workspace.

Input contract (documented in the README):
- the model file is `<workspace>/models/embeddings/<NAME>.onnx`;
- an optional sidecar `<NAME>.json` says `{"sample_rate": 48000, "input_seconds": 10.0}`
  (defaults: 16000 Hz, and the model's own fixed length if its input has one, else the segment's length);
  it may also hold `region_s`, `dim` and `source`; every value is checked against the bounds below
  before anything is allocated;
- the model's first input takes mono float32 samples in [-1, 1] shaped [batch, samples], [samples]
  or [batch, 1, samples]; batch is 1;
- the first output is the embedding: [batch, dim], [dim] or [batch, frames, dim] (frames are averaged).
The model file's hash is part of the cache key, so replacing the file invalidates its features.

`standardize=True` (a feature parameter, `onnx.standardize`) makes each clip's embedding zero-mean and
unit-variance over its dimensions: what is left is its shape, not its overall level, which follows
the recording chain more than the instrument (see `FeatureSpec.with_embedding_defaults`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.audio.regions import normalize_loudness, onset_region
from engine.embeddings import aisfx
from engine.errors import InputError, NotFound
from engine.features.base import Extractor
from engine.io import file_sha256, read_small_file


SAMPLE_RATES = (1_000, 192_000)  # the sample rates (Hz) an embedding model may ask for
MAX_INPUT_SECONDS = 300.0  # the longest input a model may ask for (input_seconds, region_s, a fixed input)
MAX_DIM = 65_536
MAX_SIDECAR_BYTES = 64 * 1024
SIDECAR_KEYS = ("sample_rate", "input_seconds", "region_s", "dim", "source", "weights_sha256", "onnx_sha256")


def _is_number(value: Any, kinds: type | tuple[type, ...] = (int, float)) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def check_settings(settings: dict[str, Any], where: str) -> None:
    """InputError naming `where` unless every setting an embedding model has is of its type and within
    its bounds (NaN and infinity are not)."""
    rate = settings.get("sample_rate")
    if rate is not None and not (_is_number(rate, int) and SAMPLE_RATES[0] <= rate <= SAMPLE_RATES[1]):
        raise InputError(f"{where}: sample_rate must be a whole number of Hz from {SAMPLE_RATES[0]:,} to "
                         f"{SAMPLE_RATES[1]:,}, got {rate!r}")
    for key in ("input_seconds", "region_s"):
        value = settings.get(key)
        if value is not None and not (_is_number(value) and 0 < value <= MAX_INPUT_SECONDS):
            raise InputError(f"{where}: {key} must be a number of seconds above 0 and at most {MAX_INPUT_SECONDS:g}, "
                             f"got {value!r}")
    dim = settings.get("dim")
    if dim is not None and not (_is_number(dim, int) and 1 <= dim <= MAX_DIM):
        raise InputError(f"{where}: dim must be a whole number from 1 to {MAX_DIM:,}, got {dim!r}")
    for key in ("source", "weights_sha256", "onnx_sha256"):
        if not isinstance(settings.get(key, ""), str):
            raise InputError(f"{where}: {key} must be text, got {settings[key]!r}")


def read_sidecar(path: Path) -> dict[str, Any]:
    """The settings in an embedding model's JSON sidecar, checked (`check_settings`); InputError naming
    the file and the problem."""
    text = read_small_file(path, "the model's settings", MAX_SIDECAR_BYTES)
    try:
        settings = json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(f"{path}: cannot read the model's settings ({error})") from error
    if not isinstance(settings, dict):
        raise InputError(f"{path}: the model's settings must be a JSON object, got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(SIDECAR_KEYS))
    if unknown:
        raise InputError(f"{path}: unknown setting(s) {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(SIDECAR_KEYS)})")
    check_settings(settings, str(path))
    return settings


@cache
def _file_sha256(path: str) -> str:
    return file_sha256(Path(path))


class OnnxExtractor(Extractor):
    name = "onnx"
    can_run_on_device = True
    code_modules = ("engine.audio.regions",)
    defaults = {"model_path": "", "model_sha256": "", "sample_rate": 16000, "input_seconds": None,
                "region_s": None, "target_db": -20.0, "standardize": False}

    @classmethod
    def from_folder(cls, embeddings_dir: Path, name: str, **params: Any) -> OnnxExtractor:
        model_path = Path(embeddings_dir) / f"{name}.onnx"
        if not model_path.is_file():
            available = sorted(p.stem for p in Path(embeddings_dir).glob("*.onnx"))
            raise NotFound(f"{model_path}: no such embedding model (available: {', '.join(available) or 'none'})")
        sidecar = model_path.with_suffix(".json")
        settings: dict[str, Any] = {}
        if sidecar.exists() or sidecar.is_symlink():
            settings = {key: value for key, value in read_sidecar(sidecar).items()
                        if key in ("sample_rate", "input_seconds", "region_s")}
        return cls(model_path=str(model_path), model_sha256=_file_sha256(str(model_path)), **{**settings, **params})

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_settings(self.params, f"{self.params['model_path'] or 'onnx'}: parameters")
        self._session = None
        self._is_port: bool | None = None

    def __getstate__(self) -> dict:
        return {"params": self.params, "device": self.device}

    def __setstate__(self, state: dict) -> None:
        self.params = state["params"]
        self.device = state.get("device", "cpu")
        self._session = None
        self._is_port = None

    def runs_as_port(self) -> bool:
        """Whether this model is the aiSFX port's own export, unchanged (`aisfx.runs_as_port`): then a
        torch device runs the port itself, batched, in place of the file."""
        if self._is_port is None:
            sidecar = Path(self.params["model_path"]).with_suffix(".json")
            self._is_port = sidecar.is_file() and aisfx.runs_as_port(read_sidecar(sidecar), self.params["model_sha256"])
        return self._is_port

    def runs_on_device(self) -> bool:
        """On a torch device: the aiSFX port's own export (`runs_as_port`), or any model when
        onnxruntime has the CUDA provider (onnxruntime-gpu)."""
        if self.device == "cpu":
            return False
        if self.runs_as_port():
            return True
        import onnxruntime

        return self.device == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers()

    def _open(self):
        if self._session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            providers = ["CPUExecutionProvider"]
            if self.device == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")  # onnxruntime-gpu on a CUDA box
            try:
                self._session = onnxruntime.InferenceSession(self.params["model_path"], options, providers=providers)
            except Exception as error:  # onnxruntime raises its own exception types
                raise InputError(f"{self.params['model_path']}: cannot load ONNX model ({error})") from error
        return self._session

    def _input_length(self, model_input, natural: int) -> int:
        fixed = model_input.shape[-1] if model_input is not None else None
        if isinstance(fixed, int) and fixed > MAX_INPUT_SECONDS * self.sample_rate:
            raise InputError(f"{self.params['model_path']}: input {model_input.name} takes {fixed:,} samples, "
                             f"longer than {MAX_INPUT_SECONDS:g} s at {self.sample_rate} Hz")
        if isinstance(fixed, int) and fixed > 0:
            return fixed
        if self.params["input_seconds"]:
            return int(round(self.params["input_seconds"] * self.sample_rate))
        return max(natural, 1)

    def _model_input(self, samples: np.ndarray, model_input=None) -> np.ndarray:
        """The waveform the model is given for one segment: its onset region, loudness-normalised,
        cut or padded with zeros to the input length."""
        region = onset_region(samples, self.sample_rate, self.params["region_s"])
        region = normalize_loudness(region, self.params["target_db"])
        length = self._input_length(model_input, region.size)
        fitted = np.zeros(length, dtype=np.float32)
        fitted[: min(length, region.size)] = region[:length]
        return fitted

    def _finished(self, embedding: np.ndarray) -> np.ndarray:
        return standardized(embedding) if self.params["standardize"] else embedding

    def extract(self, samples: np.ndarray) -> np.ndarray:
        session = self._open()
        model_input = session.get_inputs()[0]
        fitted = self._model_input(samples, model_input)
        shaped = {1: fitted, 2: fitted[None, :], 3: fitted[None, None, :]}.get(len(model_input.shape))
        if shaped is None:
            raise InputError(f"{self.params['model_path']}: input {model_input.name} has shape "
                             f"{model_input.shape}; expected [batch, samples]")
        output = np.asarray(session.run(None, {model_input.name: shaped})[0], dtype=np.float32)
        return self._finished(output.reshape(-1, output.shape[-1]).mean(axis=0))

    def extract_batch(self, batch: Sequence[np.ndarray]) -> list[np.ndarray]:
        """On a torch device, the aiSFX port's own export is run as the port, all segments at once
        (`extract_with_port`); any other model, or the CPU, goes through onnxruntime segment by segment."""
        if self.device != "cpu" and self.runs_as_port():
            return self.extract_with_port(batch, self.device)
        return super().extract_batch(batch)

    def extract_with_port(self, batch: Sequence[np.ndarray], device: str) -> list[np.ndarray]:
        """`extract` of each segment, computed by the aiSFX port on the torch `device` in batches."""
        embeddings = aisfx.embed_batch([self._model_input(samples) for samples in batch], device)
        return [self._finished(embedding) for embedding in embeddings]


def standardized(vector: np.ndarray) -> np.ndarray:
    """The vector minus its mean, divided by its standard deviation (a constant vector: zeros)."""
    centred = vector.astype(np.float64) - vector.mean(dtype=np.float64)
    spread = centred.std()
    return (centred / spread if spread > 0 else np.zeros_like(centred)).astype(np.float32)
