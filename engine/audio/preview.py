"""What the label screen draws: a quick mono decode at a reduced rate, then the min/max envelope
and a log-frequency spectrogram of any span at the terminal's resolution.

A long track is decoded in parallel parts, block by block, into one preallocated array, and a
caller may draw while that goes on: `Preview.decoded_mask` tells which columns are there yet.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile

SHORT_CLIP_S = 120.0
SHORT_CLIP_RATE = 22050  # one-shots and loops keep their hi-hats in the spectrogram
LONG_CLIP_RATE = 11025  # tracks: fast enough to open a 10-minute track in well under a second
PARALLEL_ABOVE_S = 60.0
BLOCK_FRAMES = 1 << 17
SPECTRUM_FFT = 512
FRAMES_PER_COLUMN = 4  # spectra averaged per column, so a zoomed-out column is not one random instant
FLOOR_DB = -80.0


def preview_rate(duration_s: float) -> int:
    return SHORT_CLIP_RATE if duration_s <= SHORT_CLIP_S else LONG_CLIP_RATE


class Preview:
    """Mono float32 samples of a clip at `rate`, filled part by part (thread-safe to read while filling)."""

    def __init__(self, duration_s: float, rate: int, parts: int = 1) -> None:
        self.duration_s = float(duration_s)
        self.rate = int(rate)
        self.samples = np.zeros(max(1, int(math.ceil(self.duration_s * self.rate))), dtype=np.float32)
        bounds = np.linspace(0, len(self.samples), parts + 1).astype(int)
        self._parts = [[int(start), int(start), int(end)] for start, end in zip(bounds[:-1], bounds[1:])]
        self._lock = threading.Lock()

    @property
    def complete(self) -> bool:
        with self._lock:
            return all(cursor >= end for _, cursor, end in self._parts)

    @property
    def decoded_fraction(self) -> float:
        with self._lock:
            done = sum(cursor - start for start, cursor, _ in self._parts)
        return done / len(self.samples)

    def _write(self, part: int, block: np.ndarray) -> None:
        start, cursor, end = self._parts[part]
        block = block[: max(0, end - cursor)]
        self.samples[cursor:cursor + len(block)] = block
        with self._lock:
            self._parts[part][1] = cursor + len(block)

    def _finish(self, part: int) -> None:
        with self._lock:
            self._parts[part][1] = self._parts[part][2]

    def decoded_mask(self, sample_indices: np.ndarray) -> np.ndarray:
        """True where the sample at each index has been decoded."""
        with self._lock:
            parts = [tuple(part) for part in self._parts]
        mask = np.zeros(len(sample_indices), dtype=bool)
        for start, cursor, _ in parts:
            mask |= (sample_indices >= start) & (sample_indices < cursor)
        return mask


def _decode_part(path: Path, preview: Preview, part: int, source_rate: int, first_frame: int, last_frame: int,
                 cancel: threading.Event | None) -> None:
    import soxr

    with soundfile.SoundFile(str(path)) as handle:
        handle.seek(first_frame)
        stream = None if source_rate == preview.rate else soxr.ResampleStream(
            source_rate, preview.rate, 1, dtype="float32", quality="LQ")
        mixdown = np.full(handle.channels, 1 / handle.channels, dtype=np.float32)  # a matrix product: 30x a strided mean
        buffer = np.empty((BLOCK_FRAMES, handle.channels), dtype=np.float32)
        remaining = last_frame - first_frame
        while remaining > 0:
            if cancel is not None and cancel.is_set():
                return
            block = handle.read(min(BLOCK_FRAMES, remaining), dtype="float32", always_2d=True, out=buffer)
            if not len(block):
                break
            remaining -= len(block)
            mono = block @ mixdown
            preview._write(part, mono if stream is None else stream.resample_chunk(mono, last=remaining <= 0))
    preview._finish(part)


def decode_preview(path: str | Path, *, rate: int | None = None, workers: int = 2,
                   cancel: threading.Event | None = None,
                   on_ready: Callable[[Preview], None] | None = None) -> Preview:
    """Decode a clip to mono at `rate` (by default `preview_rate` of its duration).

    Clips longer than a minute are decoded in `workers` parts at once. `on_ready` is called with
    the (still filling) preview before decoding starts, so a caller can draw as it arrives."""
    path = Path(path)
    info = soundfile.info(str(path))
    duration = info.frames / info.samplerate
    rate = rate or preview_rate(duration)
    parts = max(1, workers) if duration > PARALLEL_ABOVE_S else 1
    preview = Preview(duration, rate, parts)
    if on_ready is not None:
        on_ready(preview)
    bounds = np.linspace(0, info.frames, parts + 1).astype(int)
    jobs = [(path, preview, n, info.samplerate, int(bounds[n]), int(bounds[n + 1]), cancel) for n in range(parts)]
    if parts == 1:
        _decode_part(*jobs[0])
    else:
        with ThreadPoolExecutor(parts) as pool:
            for future in [pool.submit(_decode_part, *job) for job in jobs]:
                future.result()
    return preview


def column_edges(preview: Preview, start_s: float, end_s: float, columns: int) -> np.ndarray:
    """Sample indices of the column boundaries of [start_s, end_s) (columns + 1 of them)."""
    seconds = np.linspace(start_s, end_s, columns + 1)
    return np.clip(np.round(seconds * preview.rate).astype(np.int64), 0, len(preview.samples))


def envelope(preview: Preview, start_s: float, end_s: float, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of the samples under each of `columns` columns; NaN where nothing is decoded yet
    or the column lies past the end of the clip."""
    edges = column_edges(preview, start_s, end_s, columns)
    lows = np.full(columns, np.nan, dtype=np.float32)
    highs = np.full(columns, np.nan, dtype=np.float32)
    widths = np.diff(edges)
    filled = widths > 0
    if not filled.any():
        return lows, highs
    first, last = int(edges[0]), int(edges[-1])
    span = preview.samples[first:last]
    if np.all(widths[filled] == widths[filled][0]) and filled.all():
        # Equal columns (the usual case): one reshape, no Python loop.
        blocks = span[: widths[0] * columns].reshape(columns, widths[0])
        lows[:], highs[:] = blocks.min(axis=1), blocks.max(axis=1)
    else:
        starts = edges[:-1][filled] - first
        lows[filled] = np.minimum.reduceat(span, starts)
        highs[filled] = np.maximum.reduceat(span, starts)
    centres = (edges[:-1] + edges[1:]) // 2
    missing = ~filled | ~preview.decoded_mask(np.minimum(centres, len(preview.samples) - 1))
    missing |= np.linspace(start_s, end_s, columns + 1)[:-1] >= preview.duration_s
    lows[missing] = highs[missing] = np.nan
    return lows, highs


def band_edges(rate: int, bands: int, n_fft: int = SPECTRUM_FFT, low_hz: float = 40.0) -> np.ndarray:
    """FFT bin boundaries of `bands` log-spaced bands from `low_hz` to Nyquist (each at least one bin)."""
    nyquist = rate / 2
    hertz = np.geomspace(low_hz, nyquist, bands + 1)
    bins = np.round(hertz / nyquist * (n_fft // 2)).astype(int)
    bins = np.clip(bins, 1, n_fft // 2 + 1)
    for index in range(1, len(bins)):
        bins[index] = max(bins[index], bins[index - 1] + 1)
    return np.minimum(bins, n_fft // 2 + 1)


def spectrogram(preview: Preview, start_s: float, end_s: float, columns: int, bands: int,
                n_fft: int = SPECTRUM_FFT) -> np.ndarray:
    """A (bands, columns) image in [0, 1] (row 0 = the lowest band), NaN where not decoded yet.

    Only `FRAMES_PER_COLUMN` short frames per column are transformed, whatever the span, so a
    whole track costs the same as a second of it."""
    edges = column_edges(preview, start_s, end_s, columns)
    offsets = (np.arange(FRAMES_PER_COLUMN) + 0.5) / FRAMES_PER_COLUMN
    centres = edges[:-1, None] + (np.diff(edges)[:, None] * offsets[None, :]).astype(np.int64)
    starts = np.clip(centres - n_fft // 2, 0, max(0, len(preview.samples) - n_fft))
    padded = preview.samples if len(preview.samples) >= n_fft else np.pad(preview.samples, (0, n_fft - len(preview.samples)))
    frames = padded[starts.reshape(-1)[:, None] + np.arange(n_fft)[None, :]]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)) ** 2
    power = power.reshape(columns, FRAMES_PER_COLUMN, -1).mean(axis=1)
    bins = band_edges(preview.rate, bands, n_fft)
    banded = np.add.reduceat(power, bins[:-1], axis=1)[:, :bands] / np.maximum(np.diff(bins), 1)
    decibels = 10 * np.log10(np.maximum(banded, 1e-12))
    image = np.clip((decibels - (decibels.max() + FLOOR_DB)) / -FLOOR_DB, 0, 1).T.astype(np.float32)
    missing = ~preview.decoded_mask(np.minimum(edges[:-1], len(preview.samples) - 1))
    missing |= np.linspace(start_s, end_s, columns + 1)[:-1] >= preview.duration_s
    image[:, missing] = np.nan
    return image
