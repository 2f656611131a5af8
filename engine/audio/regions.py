"""Where a sound starts and how loud it is: onset-aligned regions and loudness normalisation.

Both work on a short-time envelope (RMS over consecutive blocks) and measure levels relative to
the loudest block, so they behave the same whatever the gain of the recording.
"""

from __future__ import annotations

import numpy as np

ENVELOPE_BLOCK_S = 0.002
PREROLL_S = 0.005
ACTIVE_DB = -40.0  # blocks within this of the loudest one make up the "active part"
SILENCE_DB = -120.0  # a clip whose active part is quieter than this (dBFS) is treated as silent
LOUDNESS_BLOCK = 256  # samples per envelope block when measuring loudness


def envelope(samples: np.ndarray, block: int) -> np.ndarray:
    """RMS of consecutive blocks of `block` samples (the last one may be shorter)."""
    block = max(1, int(block))
    samples = np.asarray(samples, dtype=np.float32)
    whole = len(samples) // block * block
    energy = np.empty(-(-len(samples) // block), dtype=np.float32)
    blocks = samples[:whole].reshape(-1, block)
    np.einsum("ij,ij->i", blocks, blocks, out=energy[: len(blocks)])  # sums of squares, no squares array
    energy[: len(blocks)] /= block
    if whole < len(samples):
        tail = samples[whole:]
        energy[-1] = np.dot(tail, tail) / len(tail)
    return np.sqrt(energy, out=energy)


def envelope_block(sample_rate: int) -> int:
    return max(1, round(sample_rate * ENVELOPE_BLOCK_S))


def first_above(env: np.ndarray, threshold_db: float) -> int:
    """Index of the first envelope block within threshold_db of the loudest one."""
    return int(np.argmax(env >= env.max() * 10.0 ** (threshold_db / 20.0)))


def onset_start(samples: np.ndarray, sample_rate: int, threshold_db: float = -40.0) -> int | None:
    """Where `onset_region`'s region starts: PREROLL_S before the onset, in samples from the start
    (negative when the sound starts sooner); None for empty or all-zero input."""
    block = envelope_block(sample_rate)
    return onset_in(samples, envelope(samples, block), block, sample_rate, threshold_db)


def onset_in(samples: np.ndarray, env: np.ndarray, block: int, sample_rate: int,
             threshold_db: float = -40.0) -> int | None:
    """`onset_start` of samples whose `envelope` (blocks of `block` samples) is already known."""
    if env.size == 0 or not env.max() > 0:
        return None
    block_start = first_above(env, threshold_db) * block
    level = env.max() * 10.0 ** (threshold_db / 20.0)
    onset = block_start + int(np.argmax(np.abs(samples[block_start : block_start + block]) >= level))
    return onset - round(sample_rate * PREROLL_S)


def onset_region(
    samples: np.ndarray, sample_rate: int, max_seconds: float | None, threshold_db: float = -40.0
) -> np.ndarray:
    """The sound from PREROLL_S before its onset, at most max_seconds long (None or 0: to the end).

    The onset is the first sample within threshold_db of the RMS of the clip's loudest envelope
    block (found inside the first block whose RMS gets there). The pre-roll is always exactly
    PREROLL_S: a sound that starts sooner is padded with zeros, so the same hit gives the same
    region whatever silence led up to it. Empty or all-zero input is returned unchanged.
    """
    return region_from(samples, onset_start(samples, sample_rate, threshold_db), sample_rate, max_seconds)


def region_from(samples: np.ndarray, start: int | None, sample_rate: int, max_seconds: float | None) -> np.ndarray:
    """`onset_region` of samples whose `onset_start` is already known."""
    if start is None:
        return samples
    lead, first, last = region_span(start, len(samples), sample_rate, max_seconds)
    if not lead:
        return samples[first:last]
    return np.concatenate([np.zeros(lead, dtype=samples.dtype), samples[first:last]])


def region_span(start: int | None, length: int, sample_rate: int, max_seconds: float | None) -> tuple[int, int, int]:
    """Where `region_from` cuts `length` samples: `lead` zeros, then samples[first:last]."""
    if start is None:
        return 0, 0, length
    stop = start + round(max_seconds * sample_rate) if max_seconds else length
    if start >= 0:
        first = min(start, length)
        return 0, first, max(first, min(stop, length))
    return min(-start, stop - start), 0, min(max(stop, 0), length)


def gains_for(levels: np.ndarray | float, target_db: float = -20.0) -> np.ndarray:
    """The factors `normalize_loudness` scales sounds whose `active_rms` are `levels` by: 1.0 for silence."""
    levels = np.asarray(levels, dtype=np.float64)
    silent = levels <= 10.0 ** (SILENCE_DB / 20.0)
    return np.where(silent, 1.0, 10.0 ** (target_db / 20.0) / np.where(silent, 1.0, levels))


def active_rms(samples: np.ndarray, block: int = LOUDNESS_BLOCK) -> float:
    """RMS over the blocks within ACTIVE_DB of the loudest block (0.0 for silence)."""
    return float(active_levels(envelope(samples, block)[None])[0])


def active_levels(env: np.ndarray) -> np.ndarray:
    """`active_rms` of sounds whose envelopes are the rows of `env` (zeros after a sound's own blocks)."""
    loudest = env.max(axis=1) if env.shape[1] else np.zeros(len(env), dtype=env.dtype)
    active = env >= (loudest * 10.0 ** (ACTIVE_DB / 20.0))[:, None]
    squares = np.square(env, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        levels = np.sqrt((squares * active).sum(axis=1) / np.count_nonzero(active, axis=1))
    return np.where(loudest > 0, levels, 0.0)


def normalize_loudness(samples: np.ndarray, target_db: float = -20.0) -> np.ndarray:
    """Scaled so the RMS of the active part is target_db dBFS; silent input stays silent.

    Non-finite samples are replaced by zeros, so the result is always finite (finite silence comes
    back as the input itself).
    """
    return normalized(samples, target_db)[0]


def normalized(samples: np.ndarray, target_db: float = -20.0) -> tuple[np.ndarray, float]:
    """`normalize_loudness` of the samples, and the `active_rms` of what it returns."""
    samples = np.asarray(samples, dtype=np.float32)
    if not np.isfinite(samples).all():  # (checking first is several times cheaper than nan_to_num)
        samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    level = active_rms(samples)
    gain = float(gains_for(level, target_db))
    return (samples if gain == 1.0 else samples * np.float32(gain)), level * gain
