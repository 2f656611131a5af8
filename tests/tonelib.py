"""Synthesised tone classes for the model-gate, weights and hard-negative tests: each class is a
pitch (with a few percent of jitter, a decay and a little noise), each pack a timbre (gain and
overtones). A logistic regression on dsp features tells them apart perfectly; white noise is
far outside them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

RATE = 22050
TONE_CLASSES = {"low": 220.0, "mid": 880.0, "high": 3520.0}
PACKS = {"pack_a": (0.5, 0.0), "pack_b": (0.3, 0.3), "pack_c": (0.7, 0.15)}  # name: (gain, overtone level)


def tone(freq: float, rng: np.random.Generator, gain: float = 0.5, overtone: float = 0.0,
         seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    f = freq * (1 + rng.uniform(-0.03, 0.03))
    wave = np.sin(2 * np.pi * f * t) + overtone * np.sin(2 * np.pi * 2 * f * t)
    wave *= np.exp(-t * rng.uniform(2.0, 4.0))
    wave += 0.003 * rng.standard_normal(len(t))
    return (gain * wave / np.abs(wave).max()).astype(np.float32)


def noise(rng: np.random.Generator, seconds: float = 1.0) -> np.ndarray:
    return (0.3 * rng.standard_normal(int(seconds * RATE)) * np.exp(-np.arange(int(seconds * RATE)) / RATE * 3)
            ).astype(np.float32)


def write(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, rate)
    return path


def tone_library(root: Path, per_pack: int = 4, seed: int = 0, classes: dict[str, float] | None = None,
                 packs: dict | None = None) -> Path:
    """ROOT/<class>/<pack>/<class>_<n>.wav: a curated folder of tone classes."""
    rng = np.random.default_rng(seed)
    for label, freq in (classes or TONE_CLASSES).items():
        for pack, (gain, overtone) in (packs or PACKS).items():
            for n in range(per_pack):
                write(root / label / pack / f"{label}_{seed}_{n:02d}.wav", tone(freq, rng, gain, overtone))
    return root


def noise_folder(root: Path, count: int = 12, seed: int = 5) -> Path:
    rng = np.random.default_rng(seed)
    for n in range(count):
        write(root / f"noise_{n:02d}.wav", noise(rng))
    return root


def tone_folder(root: Path, count: int = 12, seed: int = 6) -> Path:
    """Unlabelled tones of the known classes (an OOD set that is not out of distribution)."""
    rng = np.random.default_rng(seed)
    freqs = list(TONE_CLASSES.values())
    for n in range(count):
        write(root / f"tone_{n:02d}.wav", tone(freqs[n % len(freqs)], rng))
    return root
