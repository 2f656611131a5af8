"""Audio augmentations baked into exported training data: gain, time shift, noise, pitch shift.

Pitch shift is varispeed (resampling), as a sampler would play a drum hit higher or lower.
Each augmentation is described by a small tuple of (name, value) pairs so it can be part of a
cache key and replayed exactly.
"""

from __future__ import annotations

import numpy as np

from engine.audio.decode import resample

Augmentation = tuple[tuple[str, float], ...]


def random_augmentation(rng: np.random.Generator) -> Augmentation:
    return (
        ("gain_db", round(float(rng.uniform(-6.0, 6.0)), 2)),
        ("shift_s", round(float(rng.uniform(0.0, 0.02)), 4)),
        ("noise_snr_db", round(float(rng.uniform(25.0, 45.0)), 1)),
        ("semitones", round(float(rng.uniform(-1.5, 1.5)), 2)),
    )


def augmentation_key(augmentation: Augmentation) -> str:
    return ",".join(f"{name}={value:g}" for name, value in augmentation)


def apply_augmentation(samples: np.ndarray, sample_rate: int, augmentation: Augmentation, seed: int) -> np.ndarray:
    settings = dict(augmentation)
    out = samples.astype(np.float32, copy=True)
    semitones = settings.get("semitones", 0.0)
    if semitones:
        speed = 2.0 ** (semitones / 12.0)
        out = resample(out, int(round(sample_rate * speed)), sample_rate)
    shift = int(round(settings.get("shift_s", 0.0) * sample_rate))
    if shift > 0:
        out = np.concatenate([np.zeros(shift, dtype=np.float32), out])
    out *= np.float32(10.0 ** (settings.get("gain_db", 0.0) / 20.0))
    snr_db = settings.get("noise_snr_db")
    if snr_db is not None and out.size:
        signal_rms = float(np.sqrt(np.mean(np.square(out, dtype=np.float64))))
        noise = np.random.default_rng(seed).standard_normal(out.size).astype(np.float32)
        out += noise * np.float32(signal_rms * 10.0 ** (-snr_db / 20.0))
    return out
