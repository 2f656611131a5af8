"""Spectral building blocks in plain numpy/scipy (no librosa at run time).

Conventions follow librosa's defaults so features stay comparable: centred frames zero-padded by
n_fft // 2, a periodic Hann window, Slaney mel scale with area-normalised filters, orthonormal
DCT-II for MFCCs. Spectrograms are (bins, frames); per-frame values are 1-D over frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import cache

import numpy as np
import scipy.fft
import scipy.ndimage
from numpy.lib.stride_tricks import sliding_window_view

AMIN = 1e-10  # power floor before taking logs (-100 dB)

# Slaney mel scale: linear below 1 kHz, logarithmic above.
_HZ_PER_MEL = 200.0 / 3.0
_LOG_START_HZ = 1000.0
_LOG_START_MEL = _LOG_START_HZ / _HZ_PER_MEL
_LOG_STEP = np.log(6.4) / 27.0


def _padded(samples: np.ndarray, n_fft: int) -> np.ndarray:
    """The samples zero-padded by n_fft // 2 each side (and at the end to at least n_fft), float32."""
    samples = np.asarray(samples, dtype=np.float32)
    half = n_fft // 2
    padded = np.zeros(max(len(samples) + 2 * half, n_fft), dtype=np.float32)
    padded[half: half + len(samples)] = samples
    return padded


def frame(samples: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred frames as a read-only view, shape (1 + len // hop, n_fft)."""
    return sliding_window_view(_padded(samples, n_fft), n_fft)[::hop]


FRAMES_PER_PASS = 256  # frames worked on together: their windowed samples (1 MB) and spectra stay in the CPU's cache


def passes(sounds: Sequence[np.ndarray], n_fft: int, hop: int,
           frames: int = FRAMES_PER_PASS) -> Iterator[Sequence[np.ndarray]]:
    """The sounds in consecutive groups of at most `frames` frames (`frame`'s count) each, a longer
    sound in a group of its own: the batched extractors take one STFT per group, whose arrays stay
    in the CPU's cache, rather than one of a whole batch (several times slower)."""
    first, held = 0, 0
    for index, samples in enumerate(sounds):
        count = 1 + max(len(samples) + 2 * (n_fft // 2) - n_fft, 0) // hop
        if held and held + count > frames:
            yield sounds[first:index]
            first, held = index, 0
        held += count
    if first < len(sounds):
        yield sounds[first:]


def frame_many(sounds: Sequence[np.ndarray], n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centred frames of several sounds, side by side, as positions in one buffer: the sounds,
    each padded as `frame` pads it (then with zeros to a whole number of hops), back to back; where
    each frame starts in it (sound by sound, the frames `frame` gives); and `bounds`, each sound's
    first frame and the frame count last.

    `frames_at(buffer, starts, n_fft)` takes the frames out; `frame_rms_at` and
    `zero_crossing_rate_at` measure them from the buffer, each sample once."""
    half = n_fft // 2
    padded = [max(len(samples) + 2 * half, n_fft) for samples in sounds]  # each sound's length as `_padded` pads it
    counts = [1 + (length - n_fft) // hop for length in padded]
    offsets = np.cumsum([0] + [-(-length // hop) * hop for length in padded])
    buffer = np.zeros(offsets[-1], dtype=np.float32)
    for samples, offset in zip(sounds, offsets):
        buffer[offset + half: offset + half + len(samples)] = samples
    starts = np.concatenate([np.zeros(0, dtype=np.int64)]
                            + [offset + hop * np.arange(count) for offset, count in zip(offsets, counts)])
    return buffer, starts, np.cumsum([0] + counts)


def frames_at(buffer: np.ndarray, starts: np.ndarray, n_fft: int) -> np.ndarray:
    """The n_fft samples from each of `starts`: shape (len(starts), n_fft), a copy."""
    return sliding_window_view(buffer, n_fft)[starts]


def _block_size(length: int, starts: np.ndarray, n_fft: int) -> int:
    """gcd(starts, n_fft, length): blocks of that many values tile a buffer of `length` values, and
    every frame (n_fft values from one of `starts`) is a whole number of them."""
    return math.gcd(n_fft, *map(int, np.unique(starts % n_fft)), length)


def _block_sums(totals: np.ndarray, block: int, starts: np.ndarray, n_fft: int) -> np.ndarray:
    """The sum of values[s: s + n_fft] for each s of `starts`, from the `totals` of consecutive blocks of
    `block` values (`_block_size`) by running sums: each value is added once, not once per frame
    that holds it."""
    running = np.concatenate([[0], np.cumsum(totals, dtype=np.result_type(totals, np.int64))])
    return running[(starts + n_fft) // block] - running[starts // block]


def frame_rms_at(buffer: np.ndarray, starts: np.ndarray, n_fft: int) -> np.ndarray:
    """`frame_rms(frames_at(buffer, starts, n_fft))` from block sums of the squared samples."""
    blocks = buffer.reshape(-1, _block_size(len(buffer), starts, n_fft))
    totals = np.einsum("ij,ij->i", blocks, blocks).astype(np.float64)
    energy = np.maximum(_block_sums(totals, blocks.shape[1], starts, n_fft), 0.0)
    return np.sqrt(energy / n_fft).astype(np.float32)


def zero_crossing_rate_at(buffer: np.ndarray, starts: np.ndarray, n_fft: int) -> np.ndarray:
    """`zero_crossing_rate(frames_at(buffer, starts, n_fft))` (the same counts) from block counts of
    the sign changes between adjacent samples: each pair is compared once, not once per frame."""
    negative = np.signbit(buffer)
    changes = np.zeros(len(buffer), dtype=bool)  # changes[j]: samples j and j + 1 differ in sign
    np.not_equal(negative[1:], negative[:-1], out=changes[:-1])
    block = _block_size(len(buffer), starts, n_fft)
    totals = changes.view(np.uint8).reshape(-1, block).sum(axis=1, dtype=np.int64)
    across_the_end = changes[starts + n_fft - 1]  # a frame's last sample and the next one: not in the frame
    return (_block_sums(totals, block, starts, n_fft) - across_the_end) / n_fft


@cache
def hann_window(n_fft: int) -> np.ndarray:
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    window.flags.writeable = False
    return window


def power_spectrogram(frames: np.ndarray) -> np.ndarray:
    """|STFT|² of Hann-windowed frames, shape (n_fft // 2 + 1, n_frames), float32."""
    spectrum = scipy.fft.rfft(frames * hann_window(frames.shape[1]), axis=1, overwrite_x=True)
    parts = spectrum.view(np.float32 if spectrum.dtype == np.complex64 else np.float64)  # re, im, re, im ...
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


MEL_BANDS = 16  # mel_spectrogram's groups of neighbouring filters


@cache
def _filter_bands(sample_rate: int, n_fft: int, n_mels: int, fmin: float,
                  fmax: float | None) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """The filterbank cut into MEL_BANDS groups of neighbouring filters, each with only the bins its
    filters cover: (first filter, last + 1, first bin, last + 1, weights)."""
    filters = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
    bands = []
    for rows in np.array_split(np.arange(n_mels), min(MEL_BANDS, n_mels)):
        covered = np.flatnonzero(filters[rows].any(axis=0))
        low, high = (covered[0], covered[-1] + 1) if covered.size else (0, 0)
        bands.append((rows[0], rows[-1] + 1, low, high, np.ascontiguousarray(filters[rows[0]: rows[-1] + 1, low:high])))
    return tuple(bands)


def mel_spectrogram(power: np.ndarray, sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                    fmax: float | None = None) -> np.ndarray:
    """`mel_filterbank(...) @ power`, (n_mels, frames) float32, group by group of neighbouring filters
    over just the bins they cover: a filter covers a few bins, so the whole product would mostly
    multiply zeros (a sixth of the work with the defaults)."""
    mel = np.zeros((n_mels, power.shape[1]), dtype=np.float32)
    for first, last, low, high, weights in _filter_bands(sample_rate, n_fft, n_mels, fmin, fmax):
        np.matmul(weights, power[low:high], out=mel[first:last])
    return mel


def power_to_db(power: np.ndarray, ref: float = 1.0, top_db: float | None = None,
                bounds: np.ndarray | None = None, amin: float = AMIN) -> np.ndarray:
    """10·log10(power / ref), floored at `amin`; with top_db, also at top_db below the maximum.

    `bounds` (frame offsets, 0 first and the frame count last) splits a spectrogram that holds
    several sounds' frames side by side: each sound is floored below its own maximum."""
    db = np.maximum(power, amin)
    np.log10(db, out=db)
    db *= 10.0
    if ref != 1.0:
        db -= 10.0 * np.log10(max(ref, amin))
    return db if top_db is None else floor_db(db, top_db, bounds)


def floor_db(db: np.ndarray, top_db: float, bounds: np.ndarray | None = None) -> np.ndarray:
    """`db` floored at top_db below its maximum (each sound's, with `bounds` as in `power_to_db`) and at
    AMIN's level. So a gain can be added after the logs: `floor_db(power_to_db(power, amin=a) +
    10·log10(gain), top_db)` is `power_to_db(power * gain, top_db=top_db)` for any a <= AMIN / gain."""
    if not db.size:
        return db
    if bounds is None:
        return np.maximum(db, max(db.max() - top_db, 10.0 * math.log10(AMIN)))
    starts, sizes = np.asarray(bounds[:-1]), np.diff(bounds)
    peaks = np.maximum.reduceat(db.max(axis=0), starts[sizes > 0])
    floors = np.maximum(peaks - top_db, 10.0 * math.log10(AMIN)).astype(db.dtype)
    return np.maximum(db, np.repeat(floors, sizes[sizes > 0]))


@cache
def _dct_rows(n_mels: int, n_mfcc: int) -> np.ndarray:
    """The first n_mfcc rows of the orthonormal DCT-II matrix of size n_mels, float32, read-only."""
    rows = scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc].astype(np.float32)
    rows.flags.writeable = False
    return rows


def mfcc(log_mel: np.ndarray, n_mfcc: int) -> np.ndarray:
    """Orthonormal DCT-II over the mel axis of a log-mel spectrogram, first n_mfcc coefficients: a
    product with those rows of the DCT's matrix (a quarter of the work of the whole transform)."""
    return _dct_rows(log_mel.shape[0], n_mfcc) @ log_mel


def delta(features: np.ndarray, width: int = 9, bounds: np.ndarray | None = None) -> np.ndarray:
    """Local slope over frames by linear regression over `width` frames, edges repeated.

    With `bounds` (as in `power_to_db`), each sound's frames are a sequence of their own: its
    edges are repeated, and no slope reaches into a neighbour's frames."""
    half = width // 2
    n_frames = features.shape[1]
    bounds = np.array([0, n_frames]) if bounds is None else np.asarray(bounds)
    weights = np.arange(-half, half + 1) / (2 * sum(k * k for k in range(1, half + 1)))
    slope = scipy.ndimage.correlate1d(features, weights, axis=1, mode="nearest")
    # Frames within `half` of a sound's edge: their neighbours across the edge are its edge frame.
    sizes = np.diff(bounds)
    near = np.arange(n_frames) - np.repeat(bounds[:-1], sizes)
    near = np.flatnonzero((near < half) | (near >= np.repeat(sizes, sizes) - half))
    first, last = (np.repeat(ends, sizes)[near] for ends in (bounds[:-1], bounds[1:] - 1))
    fixed = np.zeros((features.shape[0], len(near)), dtype=slope.dtype)
    for k in range(1, half + 1):
        ahead, behind = features[:, np.minimum(near + k, last)], features[:, np.maximum(near - k, first)]
        fixed += weights[half + k] * (ahead - behind)
    slope[:, near] = fixed
    return slope


def _safe(total: np.ndarray) -> np.ndarray:
    return np.maximum(total, np.finfo(np.float32).tiny)


def spectral_centroid_and_bandwidth(magnitude: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's magnitude-weighted mean frequency (centroid c) and standard deviation of frequency
    around it (bandwidth), from its first three moments M0, M1, M2 (float64 sums of m, m·f and m·f²,
    one pass over the spectrogram): c = M1 / M0 and sum m·(f - c)² = M2 - 2c·M1 + c²·M0."""
    powers = np.asarray(freqs, dtype=np.float64) ** np.arange(3)[:, None]
    m0, m1, m2 = powers @ magnitude.astype(np.float64)
    centroid = m1 / _safe(m0)
    spread = np.maximum(m2 - 2.0 * centroid * m1 + centroid * centroid * m0, 0.0)
    return centroid.astype(np.float32), np.sqrt(spread / _safe(m0)).astype(np.float32)


ROLLOFF_BLOCK = 16  # bins summed at a time when looking for the rolloff


def spectral_rolloff(magnitude: np.ndarray, freqs: np.ndarray, fraction: float = 0.85) -> np.ndarray:
    """Lowest frequency below which `fraction` of the frame's magnitude lies.

    Found in two steps rather than by a running sum over every bin: the running sum of
    ROLLOFF_BLOCK-bin block totals picks the block where the sum passes the threshold, then a
    running sum inside that block alone picks the bin."""
    by_frame = np.ascontiguousarray(magnitude.T)  # (frames, bins): a view for power_spectrogram's layout
    n_frames, n_bins = by_frame.shape
    if n_frames == 0:
        return np.zeros(0, dtype=freqs.dtype)
    starts = np.arange(0, n_bins, ROLLOFF_BLOCK)
    whole = n_bins // ROLLOFF_BLOCK * ROLLOFF_BLOCK
    sums = np.einsum("ijk->ij", by_frame[:, :whole].reshape(n_frames, -1, ROLLOFF_BLOCK))  # each block's sum
    if whole < n_bins:
        sums = np.concatenate([sums, by_frame[:, whole:].sum(axis=1, keepdims=True)], axis=1)
    totals = np.cumsum(sums, axis=1)
    threshold = fraction * totals[:, -1]
    block = np.argmax(totals >= threshold[:, None], axis=1)
    before = np.where(block > 0, totals[np.arange(n_frames), block - 1], 0)
    bins = starts[block][:, None] + np.arange(ROLLOFF_BLOCK)
    inside = np.where(bins < n_bins, by_frame[np.arange(n_frames)[:, None], np.minimum(bins, n_bins - 1)], 0)
    reached = before[:, None] + np.cumsum(inside, axis=1) >= threshold[:, None]
    reached[:, -1] = True  # the block's total reached it: rounding must not push it past the block
    return freqs[np.minimum(starts[block] + np.argmax(reached, axis=1), n_bins - 1)]


def spectral_flatness(power: np.ndarray) -> np.ndarray:
    """Geometric over arithmetic mean of the power spectrum: 1 for white noise, near 0 for tones."""
    floored = np.maximum(power, AMIN)
    mean = np.full(len(floored), 1.0 / len(floored), dtype=floored.dtype)  # means over bins as products
    arithmetic = mean @ floored
    return np.exp(mean @ np.log(floored, out=floored)) / arithmetic


def zero_crossing_rate(frames: np.ndarray) -> np.ndarray:
    """Fraction of adjacent sample pairs in each frame whose signs differ."""
    negative = np.signbit(frames)
    return np.count_nonzero(negative[:, 1:] != negative[:, :-1], axis=1) / frames.shape[1]


def frame_rms(frames: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", frames, frames) / frames.shape[1])
