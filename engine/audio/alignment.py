"""Multi-microphone alignment: the lag of each channel behind the first, by FFT cross-correlation.

A positive lag means the channel hears the sound later than channel 0. The search is limited to
±max_lag_s; the peak is that of the absolute correlation (a microphone wired with inverted polarity
correlates negatively at its true lag), refined to a fraction of a sample by a parabola through its
neighbours. A channel whose peak level is below SILENCE_DB has no lag to measure (a dead microphone):
its lag is None, and so is every channel's when channel 0 is silent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from engine.errors import InputError

SILENCE_DB = -60.0  # peak level (dBFS) below which a channel is silent, as the dataset's silent-clip gate


def is_silent(channel: np.ndarray) -> bool:
    """Whether a channel's peak level is below SILENCE_DB (or it has no samples)."""
    return not len(channel) or float(np.max(np.abs(channel))) < 10 ** (SILENCE_DB / 20)


def lag_seconds(reference: np.ndarray, other: np.ndarray, rate: int, max_lag_s: float) -> float | None:
    """How much later `other` carries the content of `reference`, in seconds; None when either is silent."""
    if is_silent(reference) or is_silent(other):
        return None
    n = len(reference) + len(other) - 1
    size = 1 << (n - 1).bit_length()
    spectrum = np.fft.rfft(other, size) * np.conj(np.fft.rfft(reference, size))
    correlation = np.fft.irfft(spectrum, size)  # index k: other shifted k samples later (negative k wraps)
    reach = max(1, min(int(round(max_lag_s * rate)), len(reference) - 1))
    lags = np.concatenate([np.arange(-reach, 0), np.arange(0, reach + 1)])
    values = np.abs(np.concatenate([correlation[-reach:], correlation[:reach + 1]]))
    best = int(np.argmax(values))
    shift = 0.0
    if 0 < best < len(values) - 1:
        left, centre, right = values[best - 1], values[best], values[best + 1]
        curvature = left - 2 * centre + right
        if curvature < 0:
            shift = 0.5 * (left - right) / curvature
    return float((lags[best] + shift) / rate)


def channel_lags(path: str | Path, max_lag_s: float = 0.05) -> tuple[int, list[float | None]]:
    """The channel count of a file and each later channel's lag behind channel 0, in seconds (None
    where that channel or channel 0 is silent)."""
    try:
        samples, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
        raise InputError(f"{path}: cannot read audio ({error})") from error
    channels = samples.shape[1]
    if channels < 2:
        return channels, []
    reference = samples[:, 0] - samples[:, 0].mean()
    return channels, [lag_seconds(reference, samples[:, c] - samples[:, c].mean(), rate, max_lag_s)
                      for c in range(1, channels)]
