"""Spectral building blocks in plain numpy/scipy (no librosa at run time).

Conventions follow librosa's defaults so features stay comparable: centred frames zero-padded by
n_fft // 2, a periodic Hann window, Slaney mel scale with area-normalised filters, orthonormal
DCT-II for MFCCs. Spectrograms are (bins, frames); per-frame values are 1-D over frames.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

AMIN = 1e-10  # power floor before taking logs (-100 dB)

# Slaney mel scale: linear below 1 kHz, logarithmic above.
_HZ_PER_MEL = 200.0 / 3.0
_LOG_START_HZ = 1000.0
_LOG_START_MEL = _LOG_START_HZ / _HZ_PER_MEL
_LOG_STEP = np.log(6.4) / 27.0


def frame(samples: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred frames as a read-only view, shape (1 + len // hop, n_fft)."""
    padded = np.pad(np.asarray(samples, dtype=np.float32), n_fft // 2)
    if len(padded) < n_fft:
        padded = np.pad(padded, (0, n_fft - len(padded)))
    return sliding_window_view(padded, n_fft)[::hop]


@cache
def hann_window(n_fft: int) -> np.ndarray:
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    window.flags.writeable = False
    return window


def power_spectrogram(frames: np.ndarray) -> np.ndarray:
    """|STFT|² of Hann-windowed frames, shape (n_fft // 2 + 1, n_frames), float32."""
    spectrum = scipy.fft.rfft(frames * hann_window(frames.shape[1]), axis=1, overwrite_x=True)
    parts = spectrum.view(spectrum.real.dtype)  # real and imaginary parts side by side, squared in place
    np.square(parts, out=parts)
    return np.add(parts[:, 0::2], parts[:, 1::2]).T


@cache
def fft_frequencies(sample_rate: int, n_fft: int) -> np.ndarray:
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float32)
    freqs.flags.writeable = False
    return freqs


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    log_part = _LOG_START_MEL + np.log(np.maximum(hz, _LOG_START_HZ) / _LOG_START_HZ) / _LOG_STEP
    return np.where(hz >= _LOG_START_HZ, log_part, hz / _HZ_PER_MEL)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    log_part = _LOG_START_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _LOG_START_MEL) - _LOG_START_MEL))
    return np.where(mel >= _LOG_START_MEL, log_part, mel * _HZ_PER_MEL)


@cache
def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Triangular filters evenly spaced on the mel scale, each scaled to unit area (Slaney
    normalisation). Shape (n_mels, n_fft // 2 + 1), float32, read-only."""
    fmax = sample_rate / 2.0 if fmax is None else fmax
    bin_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz - lower) / (centre - lower)
    falling = (upper - bin_hz) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    weights = weights.astype(np.float32)
    weights.flags.writeable = False
    return weights


def power_to_db(power: np.ndarray, ref: float = 1.0, top_db: float | None = None,
                bounds: np.ndarray | None = None) -> np.ndarray:
    """10·log10(power / ref), floored at AMIN; with top_db, also at top_db below the maximum.

    `bounds` (frame offsets, 0 first and the frame count last) splits a spectrogram that holds
    several sounds' frames side by side: each sound is floored below its own maximum."""
    db = 10.0 * np.log10(np.maximum(power, AMIN)) - 10.0 * np.log10(max(ref, AMIN))
    if top_db is None or not db.size:
        return db
    if bounds is None:
        return np.maximum(db, db.max() - top_db)
    starts, sizes = np.asarray(bounds[:-1]), np.diff(bounds)
    peaks = np.maximum.reduceat(db.max(axis=0), starts[sizes > 0])
    return np.maximum(db, np.repeat(peaks - top_db, sizes[sizes > 0]))


def mfcc(log_mel: np.ndarray, n_mfcc: int) -> np.ndarray:
    """Orthonormal DCT-II over the mel axis of a log-mel spectrogram, first n_mfcc coefficients."""
    return scipy.fft.dct(log_mel, type=2, norm="ortho", axis=0)[:n_mfcc]


def delta(features: np.ndarray, width: int = 9, bounds: np.ndarray | None = None) -> np.ndarray:
    """Local slope over frames by linear regression over `width` frames, edges repeated.

    With `bounds` (as in `power_to_db`), each sound's frames are a sequence of their own: its
    edges are repeated, and no slope reaches into a neighbour's frames."""
    half = width // 2
    n_frames = features.shape[1]
    bounds = np.array([0, n_frames]) if bounds is None else np.asarray(bounds)
    sizes = np.diff(bounds)
    first = np.repeat(bounds[:-1], sizes)
    last = np.repeat(bounds[1:] - 1, sizes)
    index = np.arange(n_frames)
    slope = np.zeros_like(features)
    for k in range(1, half + 1):
        ahead, behind = np.minimum(index + k, last), np.maximum(index - k, first)
        slope += k * (features[:, ahead] - features[:, behind])
    return slope / (2 * sum(k * k for k in range(1, half + 1)))


def _safe(total: np.ndarray) -> np.ndarray:
    return np.maximum(total, np.finfo(np.float32).tiny)


def spectral_centroid(magnitude: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    return (freqs @ magnitude) / _safe(magnitude.sum(axis=0))


def spectral_bandwidth(magnitude: np.ndarray, freqs: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """Magnitude-weighted standard deviation of frequency around the centroid: from the first two
    moments (one matrix product), as variance + (mean - centroid)², summed in float64."""
    total = _safe(magnitude.sum(axis=0)).astype(np.float64)
    moments = (np.stack([freqs, np.square(freqs)]) @ magnitude) / total
    spread = moments[1] - np.square(moments[0]) + np.square(moments[0] - centroid)
    return np.sqrt(np.maximum(spread, 0.0)).astype(magnitude.dtype)


ROLLOFF_BLOCK = 32  # spectral_rolloff sums bins in blocks of this many, then looks inside one block per frame


def spectral_rolloff(magnitude: np.ndarray, freqs: np.ndarray, fraction: float = 0.85) -> np.ndarray:
    """Lowest frequency below which `fraction` of the frame's magnitude lies: the running sum over
    blocks of bins finds the block where it is reached, the running sum inside it the bin."""
    n_bins, n_frames = magnitude.shape
    starts = np.arange(0, n_bins, ROLLOFF_BLOCK)
    blocks = np.cumsum(np.add.reduceat(magnitude, starts, axis=0), axis=0)
    target = fraction * blocks[-1]
    block = np.minimum(np.count_nonzero(blocks < target, axis=0), len(starts) - 1)
    frame = np.arange(n_frames)
    before = np.where(block > 0, blocks[np.maximum(block - 1, 0), frame], 0.0)
    bins = starts[block][:, None] + np.arange(ROLLOFF_BLOCK)
    inside = np.where(bins < n_bins, magnitude[np.minimum(bins, n_bins - 1), frame[:, None]], 0.0)
    reached = np.count_nonzero(before[:, None] + np.cumsum(inside, axis=1) < target[:, None], axis=1)
    return freqs[np.minimum(starts[block] + reached, n_bins - 1)]


def spectral_flatness(power: np.ndarray) -> np.ndarray:
    """Geometric over arithmetic mean of the power spectrum: 1 for white noise, near 0 for tones."""
    floored = np.maximum(power, AMIN)
    return np.exp(np.log(floored).mean(axis=0)) / floored.mean(axis=0)


def zero_crossing_rate(frames: np.ndarray) -> np.ndarray:
    """Fraction of adjacent sample pairs in each frame whose signs differ."""
    negative = np.signbit(frames)
    return np.count_nonzero(negative[:, 1:] != negative[:, :-1], axis=1) / frames.shape[1]


def frame_rms(frames: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", frames, frames) / frames.shape[1])
