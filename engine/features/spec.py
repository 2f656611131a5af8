"""Feature specs: the text a person types (`dsp`, `mel`, `wave`, `onnx:NAME`, `hybrid:NAME`) and the
extractors it stands for.

`hybrid:NAME` is the ONNX embedding NAME followed by the dsp statistics; each part is cached on
its own, so a hybrid reuses whatever dsp features are already in the cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.features.base import Extractor

KINDS = ("dsp", "mel", "wave", "onnx", "hybrid")
# Embeddings whose clips are standardised (`onnx.standardize`) unless a spec says otherwise: across packs
# never heard, aiSFX + dsp features standardised gained macro-F1 in bench/bench_generalisation.py (README).
STANDARDIZED_EMBEDDINGS = ("aisfx",)


def parse_param_value(text: str) -> Any:
    """`1.5` → 1.5, `none` → None, `true` → True, anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(pairs: list[str]) -> dict[str, Any]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"parameter {pair!r} must look like key=value (e.g. region_s=1.0 or dsp.n_mfcc=13)")
        params[key.strip()] = parse_param_value(value)
    return params


@dataclass(frozen=True)
class FeatureSpec:
    kind: str
    model: str | None = None  # the embedding model's name, for onnx and hybrid
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, params: dict[str, Any] | None = None) -> FeatureSpec:
        kind, _, model = text.strip().partition(":")
        kind = kind.lower()
        if kind not in KINDS:
            raise InputError(f"unknown extractor {text!r}; choose one of dsp, mel, wave, onnx:NAME, hybrid:NAME")
        if kind in ("onnx", "hybrid") and not model:
            raise InputError(f"{kind} needs an embedding model name, e.g. {kind}:clap (see models/embeddings/)")
        if kind in ("dsp", "mel", "wave") and model:
            raise InputError(f"{kind} takes no model name")
        return cls(kind, model or None, dict(params or {}))

    def with_embedding_defaults(self) -> FeatureSpec:
        """This spec with `onnx.standardize` on for an embedding of STANDARDIZED_EMBEDDINGS whose params
        do not set it: what a new training extracts. A model version keeps the spec it was trained on,
        so one trained before stays on the features it knew."""
        given = any(key.split(".")[-1] == "standardize" for key in self.params)
        if self.kind not in ("onnx", "hybrid") or self.model not in STANDARDIZED_EMBEDDINGS or given:
            return self
        return FeatureSpec(self.kind, self.model, {**self.params, "onnx.standardize": True})

    def __str__(self) -> str:
        return f"{self.kind}:{self.model}" if self.model else self.kind

    def _params_for(self, part: str, single: bool) -> dict[str, Any]:
        chosen = {}
        for key, value in self.params.items():
            owner, dot, name = key.partition(".")
            if dot and owner == part:
                chosen[name] = value
            elif not dot and single:
                chosen[key] = value
        return chosen

    def extractors(self, embeddings_dir: Path) -> list[Extractor]:
        """The leaf extractors whose outputs, flattened and joined, make this feature set."""
        from engine.features.dsp import DspExtractor
        from engine.features.mel import MelExtractor

        single = self.kind != "hybrid"
        try:
            if self.kind == "dsp":
                return [DspExtractor(**self._params_for("dsp", single))]
            if self.kind == "mel":
                return [MelExtractor(**self._params_for("mel", single))]
            if self.kind == "wave":
                from engine.features.wave import WaveExtractor

                return [WaveExtractor(**self._params_for("wave", single))]
            from engine.features.onnx_embed import OnnxExtractor

            embedding = OnnxExtractor.from_folder(embeddings_dir, self.model, **self._params_for("onnx", single))
            if self.kind == "onnx":
                return [embedding]
            return [embedding, DspExtractor(**self._params_for("dsp", False))]
        except ValueError as error:
            raise InputError(str(error)) from error

    def to_dict(self) -> dict:
        return {"kind": self.kind, "model": self.model, "params": self.params}
