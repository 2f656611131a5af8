"""The one interface every feature extractor follows.

An extractor turns the samples of one segment (mono float32 at its sample rate) into a float32
array of a fixed shape. Its identity in the cache is (name, params, code version); the code
version is a fingerprint of the source of the modules it depends on, so editing an extractor's
code invalidates its cached features without anyone having to remember to bump a number.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cache
from typing import Any, ClassVar

import numpy as np


@cache
def source_fingerprint(*module_names: str) -> str:
    """A short hash of the source text of the given modules."""
    digest = hashlib.sha256()
    for name in module_names:
        module = importlib.import_module(name)
        with open(module.__file__, "rb") as handle:
            digest.update(name.encode() + b"\0" + handle.read())
    return digest.hexdigest()[:16]


def _check_type(extractor: str, key: str, value: Any, default: Any) -> None:
    """A parameter takes its default's type (an int where a float is expected is fine); whole-number
    sizes (n_fft, hop, n_mels, sample_rate …) must be positive. None is accepted where the default is None
    or a float (e.g. region_s=None: the whole segment)."""
    if value is None:
        if default is None or isinstance(default, float):
            return
        raise ValueError(f"{extractor}: parameter {key} needs a value")
    if default is None:
        return
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        if not isinstance(value, type(default)):
            raise ValueError(f"{extractor}: parameter {key} must be {type(default).__name__}, got {value!r}")
        return
    wanted = int if isinstance(default, int) else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise ValueError(f"{extractor}: parameter {key} must be {type(default).__name__}, got {value!r}")
    if isinstance(default, int) and default > 0 and not value > 0:
        raise ValueError(f"{extractor}: parameter {key} must be positive, got {value!r}")


class Extractor(ABC):
    """Base class: subclasses set `name`, `defaults`, `code_modules` and implement `extract`."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    # Modules whose source defines what this extractor computes (its own module is always included).
    code_modules: ClassVar[tuple[str, ...]] = ()

    # Where batched tensor work runs: "cpu" or a torch device type ("cuda"), for an extractor that
    # can run some there (`can_run_on_device`). Not a parameter: the features are the same within
    # float tolerance.
    device: str = "cpu"
    can_run_on_device: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise ValueError(f"{self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; known: {known}")
        for key, value in params.items():
            _check_type(self.name, key, value, self.defaults[key])
        self.params: dict[str, Any] = {**self.defaults, **params}

    @property
    def sample_rate(self) -> int:
        return int(self.params["sample_rate"])

    @property
    def code_version(self) -> str:
        return source_fingerprint(type(self).__module__, *self.code_modules)

    @property
    def params_hash(self) -> str:
        text = json.dumps(self.params, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def cache_prefix(self) -> str:
        """Everything in the cache key except the clip and the segment."""
        return f"{self.name}:{self.params_hash}:{self.code_version}"

    def runs_on_device(self) -> bool:
        """Whether `extract_batch` runs its tensor work on `device` (not the CPU): extraction then
        runs it in one process over many clips at once, while the workers decode."""
        return False

    @abstractmethod
    def extract(self, samples: np.ndarray) -> np.ndarray:
        """Features of one segment: `samples` is mono float32 at `self.sample_rate`."""

    def extract_batch(self, batch: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of several segments, in order; an extractor that can share work across them
        (one STFT over all their frames) overrides this."""
        return [self.extract(samples) for samples in batch]

    def extract_windows(self, samples: np.ndarray, windows: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """Features of the windows [first, last) (in samples) of one long sound; an extractor that can
        take them from one pass over the sound (one STFT) overrides this."""
        return self.extract_batch([samples[first:last] for first, last in windows])

    def onset_span_s(self) -> float | None:
        """How much of a segment `extract` reads, in seconds from just before its onset; None: all of it.

        Extraction of a long segment decodes only that much around the onset it finds while
        streaming the file. An extractor that cuts `onset_region(samples, rate, params["region_s"])`
        needs nothing more; one that reads a span of its own says so here."""
        return self.params.get("region_s") or None
