"""Decoding audio files into numpy arrays (soundfile / libsndfile), mono mixdown, resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".aifc"})
MAX_CHANNELS = 8
# Magic numbers of the containers we read: a file that starts like one of these but does not
# decode is corrupt; anything else is not audio at all.
AUDIO_MAGIC = (b"RIFF", b"RF64", b"FORM", b"fLaC", b"OggS", b"ID3", b"caff")


def looks_like_audio(head: bytes) -> bool:
    is_mpeg_frame = len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0
    return head.startswith(AUDIO_MAGIC) or is_mpeg_frame


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) → (frames,) float32."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate or samples.size == 0:
        return samples
    import soxr

    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def decode(path: str | Path, sample_rate: int | None = None, start_s: float = 0.0,
           end_s: float | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 samples of [start_s, end_s) of a file, resampled to `sample_rate` if given."""
    with soundfile.SoundFile(str(path)) as handle:
        rate = handle.samplerate
        first = max(0, int(round(start_s * rate)))
        last = handle.frames if end_s is None else min(handle.frames, int(round(end_s * rate)))
        handle.seek(min(first, handle.frames))
        samples = handle.read(max(0, last - first), dtype="float32", always_2d=True)
    mono = to_mono(samples)
    if sample_rate is not None:
        return resample(mono, rate, sample_rate), sample_rate
    return mono, rate
