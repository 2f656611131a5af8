"""The "dsp" extractor: a fixed-length vector of hand-made descriptors of one sound.

The segment is cut to its onset-aligned region and loudness-normalised, then summarised from a
single STFT (MFCCs and their deltas, spectral shape, zero-crossing rate), from its envelope
(attack, decay, duration, temporal centroid, crest factor) and from its energy per frequency
band. Frame statistics are taken over the active frames only, so trailing silence does not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.audio import dsp
from engine.audio.regions import (
    active_rms,
    envelope,
    envelope_block,
    gains_for,
    normalized,
    onset_region,
    onset_start,
    region_span,
)
from engine.features.base import Extractor

MFCC_TOP_DB = 80.0
ACTIVE_FRAME_DB = -60.0  # frames this far below the loudest frame are left out of frame statistics
ONSET_DB = -40.0
DECAY_DB = -20.0
EFFECTIVE_DB = -40.0
BAND_EDGES_HZ = (150.0, 800.0, 5000.0)
BATCH_PASS_FRAMES = 1024  # frames per pass of extract_batch: its many small steps per pass cost more than a
# pass of dsp.FRAMES_PER_PASS gains by staying in the CPU's cache (1,024: a fifth faster on one-shots)

SPECTRAL_ROWS = ("centroid_hz", "bandwidth_hz", "rolloff_hz", "flatness", "zcr")
TEMPORAL_NAMES = ("attack_s", "decay_s", "effective_duration_s", "temporal_centroid_s", "crest_db")
BAND_NAMES = ("energy_below_150hz", "energy_150_800hz", "energy_800_5khz", "energy_above_5khz")


def _summary_names(rows: list[str] | tuple[str, ...]) -> list[str]:
    return [f"{row}_mean" for row in rows] + [f"{row}_std" for row in rows]


def _summaries(groups: Sequence[np.ndarray], bounds: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Per sound (its frames side by side, `bounds`): each group's per-row means, then its per-row
    standard deviations, over the sound's active frames. Shape (values, sounds), float64."""
    rows = np.concatenate(groups).astype(np.float64)
    starts, sizes = bounds[:-1], np.diff(bounds)
    weights = active / np.repeat(np.add.reduceat(active, starts), sizes)  # 1 / its sound's active frames, or 0
    means = np.add.reduceat(rows * weights, starts, axis=1)
    deviations = rows - np.repeat(means, sizes, axis=1)
    np.square(deviations, out=deviations)
    deviations *= weights
    stds = np.sqrt(np.add.reduceat(deviations, starts, axis=1))
    parts, first = [], 0
    for group in groups:
        parts += [means[first: first + len(group)], stds[first: first + len(group)]]
        first += len(group)
    return np.concatenate(parts)


def _temporals(regions: Sequence[np.ndarray], sample_rate: int, levels: Sequence[float]) -> np.ndarray:
    """Attack, decay, effective duration and temporal centroid (seconds), crest factor (dB) of each
    region, whose `active_rms` levels are known: shape (regions, 5)."""
    block = envelope_block(sample_rate)
    envs = [envelope(region, block) for region in regions]
    rows = np.zeros((len(envs), max(map(len, envs), default=0)), dtype=np.float32)  # zeros after a region's blocks
    for row, env in zip(rows, envs):
        row[:len(env)] = env
    peaks = np.array([np.abs(region).max(initial=0.0) for region in regions], dtype=np.float64)
    return _temporal_rows(rows, block / sample_rate, peaks, np.asarray(levels, dtype=np.float64))


def _temporal_rows(env: np.ndarray, seconds_per_block: float, peaks: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """`_temporals` of regions whose envelopes (rows of `env`, zeros after a region's own blocks),
    largest absolute samples and `active_rms` levels are known: shape (regions, 5)."""
    if not env.shape[1]:
        return np.zeros((len(env), len(TEMPORAL_NAMES)))
    loudest = env.max(axis=1)
    sounding = loudest > 0
    onset = np.argmax(env >= (loudest * 10.0 ** (ONSET_DB / 20.0))[:, None], axis=1)
    peak = np.argmax(env, axis=1)
    decaying = env >= (loudest * 10.0 ** (DECAY_DB / 20.0))[:, None]
    decay_end = env.shape[1] - 1 - np.argmax(decaying[:, ::-1], axis=1)
    effective_blocks = np.count_nonzero(env >= (loudest * 10.0 ** (EFFECTIVE_DB / 20.0))[:, None], axis=1)
    total = np.where(sounding, env.sum(axis=1, dtype=np.float64), 1.0)
    centroid = (env @ np.arange(env.shape[1], dtype=np.float64) / total - onset) * seconds_per_block
    with np.errstate(divide="ignore", invalid="ignore"):
        crest = 20.0 * np.log10(np.asarray(peaks, dtype=np.float64) / levels)
    rows = np.stack([(peak - onset) * seconds_per_block, (decay_end - peak) * seconds_per_block,
                     effective_blocks * seconds_per_block, centroid, crest], axis=1)
    return np.where(sounding[:, None], rows, 0.0)


def _band_energy(power: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
    """Each frame's energy below, between and above BAND_EDGES_HZ: shape (bands, frames), float64."""
    return (_bands(sample_rate, n_fft, power.dtype) @ power).astype(np.float64)


@cache
def _bands(sample_rate: int, n_fft: int, dtype: np.dtype) -> np.ndarray:
    """(bands, bins): ones where an FFT bin lies in a band of `_band_energy`, zeros elsewhere."""
    band = np.searchsorted(BAND_EDGES_HZ, dsp.fft_frequencies(sample_rate, n_fft), side="right")
    bands = (np.arange(len(BAND_EDGES_HZ) + 1)[:, None] == band).astype(dtype)
    bands.flags.writeable = False
    return bands


def _band_ratios(energy: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Share of each sound's energy in each band, from its frames' `_band_energy` (the sounds' frames
    side by side, `bounds`): shape (bands, sounds)."""
    totals = np.add.reduceat(energy, bounds[:-1], axis=1)
    return totals / np.maximum(totals.sum(axis=0), np.finfo(np.float32).tiny)


class DspExtractor(Extractor):
    name = "dsp"
    code_modules = ("engine.audio.dsp", "engine.audio.regions")
    defaults = {
        "sample_rate": 22050,
        "n_fft": 1024,
        "hop": 256,
        "n_mels": 64,
        "n_mfcc": 20,
        "region_s": 1.5,  # None or 0: the whole segment
        "target_db": -20.0,
    }

    def feature_names(self) -> list[str]:
        coefficients = range(int(self.params["n_mfcc"]))
        return [
            *_summary_names([f"mfcc{i:02d}" for i in coefficients]),
            *_summary_names([f"delta{i:02d}" for i in coefficients]),
            *_summary_names(SPECTRAL_ROWS),
            *TEMPORAL_NAMES,
            *BAND_NAMES,
        ]

    def extract(self, samples: np.ndarray) -> np.ndarray:
        return self.extract_batch([samples])[0]

    def extract_batch(self, batch: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One STFT (and one mel, MFCC, delta and spectral-shape pass) over the frames of several sounds
        at a time, BATCH_PASS_FRAMES frames or so; the frame statistics and envelope descriptors of all
        those sounds at once (only their envelopes sound by sound)."""
        n_fft, hop = int(self.params["n_fft"]), int(self.params["hop"])
        normalised = [normalized(onset_region(np.asarray(samples, dtype=np.float32), self.sample_rate,
                                              self.params["region_s"]), self.params["target_db"]) for samples in batch]
        regions, levels = [region for region, _ in normalised], [level for _, level in normalised]
        vectors: list[np.ndarray] = []
        for group in dsp.passes(regions, n_fft, hop, BATCH_PASS_FRAMES):
            buffer, starts, bounds = dsp.frame_many(group, n_fft, hop)
            temporal = _temporals(group, self.sample_rate, levels[len(vectors): len(vectors) + len(group)])
            mel_power, *values = self._buffer_values(buffer, starts)
            vectors += self._vectors(temporal, bounds, dsp.power_to_db(mel_power), *values)
        return vectors

    def extract_windows(self, samples: np.ndarray, windows: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """Features of the windows [first, last) (in samples) of one long sound, the inner frames of
        every window taken from one STFT over all of it.

        As `extract_batch` of the windows' samples, but for where a window's inner frames fall: on
        the sound's own hop grid, at most hop / 2 samples from where the window's own frames would
        be. The frames that reach past a window's onset region into its zero padding (two at each
        end with the defaults) are its own, so the edges the statistics see are the same. The onset
        regions, envelopes and levels are the windows' own; loudness normalisation is applied as the
        gain it would be (the descriptors other than the MFCCs do not depend on it)."""
        if not windows:
            return []
        samples = np.asarray(samples, dtype=np.float32)
        if not np.isfinite(samples).all():  # a check costs a tenth of replacing
            samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
        sample_rate, n_fft, hop = self.sample_rate, int(self.params["n_fft"]), int(self.params["hop"])
        half = n_fft // 2
        spans = []  # each window's onset region: `lead` zeros, then samples[first:last]
        for first, last in windows:
            lead, low, high = region_span(onset_start(samples[first:last], sample_rate), last - first, sample_rate,
                                          self.params["region_s"])
            spans.append((lead, first + low, first + high))
        regions = [np.concatenate([np.zeros(lead, dtype=np.float32), samples[first:last]]) if lead
                   else samples[first:last] for lead, first, last in spans]
        levels = np.array([active_rms(region) for region in regions])
        temporal = _temporals(regions, sample_rate, levels)
        power_gains = np.square(gains_for(levels, self.params["target_db"]))
        lead, first, last = np.array(spans, dtype=np.int64).reshape(-1, 3).T
        buffer, frame_starts, _ = dsp.frame_many([samples], n_fft, hop)  # the sound's frames: buffer[k * hop:][:n_fft]

        # Each window's frames: frame k of its region covers region[k * hop - half, k * hop + half)
        # (zeros outside), i.e. from `origin + k * hop` in the sound.
        length = lead + last - first
        counts = 1 + np.maximum(length + 2 * half - n_fft, 0) // hop
        bounds = np.concatenate([[0], np.cumsum(counts)])
        k = np.arange(bounds[-1]) - np.repeat(bounds[:-1], counts)
        origin = np.repeat(first - lead - half, counts) + k * hop
        edge = (k * hop < half) | (k * hop + half > np.repeat(length, counts))
        total = len(frame_starts)  # the sound's frames, in blocks that stay in the CPU's cache
        frames = sliding_window_view(buffer, n_fft)[::hop][:total]
        zcr, rms = dsp.zero_crossing_rate_at(buffer, frame_starts, n_fft), dsp.frame_rms_at(buffer, frame_starts, n_fft)
        inner = [np.concatenate(values, axis=-1) for values in zip(*(
            self._frame_values(frames[start:start + dsp.FRAMES_PER_PASS], zcr[start:start + dsp.FRAMES_PER_PASS],
                               rms[start:start + dsp.FRAMES_PER_PASS])
            for start in range(0, total, dsp.FRAMES_PER_PASS)))]
        where = origin[edge, None] + np.arange(n_fft)  # an edge frame's samples, zero outside its region
        inside = (where >= np.repeat(first, counts)[edge, None]) & (where < np.repeat(last, counts)[edge, None])
        edges = self._values_of(np.where(inside, samples[np.clip(where, 0, max(len(samples) - 1, 0))], np.float32(0)))
        pick = np.clip((origin + half + hop // 2) // hop, 0, total - 1)  # the sound's frame nearest each frame
        pick[edge] = total + np.arange(np.count_nonzero(edge))
        mel_power, spectral, rms, energy = (np.concatenate([a, b], axis=-1) for a, b in zip(inner, edges))
        # The windows' log-mel: the sound's, floored below AMIN by the largest gain (`dsp.floor_db` then
        # floors what the gain leaves below AMIN), with each window's loudness gain added.
        amin = max(dsp.AMIN / float(power_gains.max()), float(np.finfo(np.float32).tiny))
        log_mel = dsp.power_to_db(mel_power, amin=amin)[:, pick]
        log_mel += np.repeat((10.0 * np.log10(power_gains)).astype(np.float32), counts)
        return self._vectors(temporal, bounds, log_mel, spectral[:, pick], rms[pick], energy[:, pick])

    def _buffer_values(self, buffer: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, ...]:
        """`_frame_values` of the frames `dsp.frame_many` laid out in `buffer`."""
        n_fft = int(self.params["n_fft"])
        return self._frame_values(dsp.frames_at(buffer, starts, n_fft), dsp.zero_crossing_rate_at(buffer, starts, n_fft),
                                  dsp.frame_rms_at(buffer, starts, n_fft))

    def _values_of(self, frames: np.ndarray) -> tuple[np.ndarray, ...]:
        """`_frame_values` of frames given as an array of their own."""
        return self._frame_values(frames, dsp.zero_crossing_rate(frames), dsp.frame_rms(frames))

    def _frame_values(self, frames: np.ndarray, zcr: np.ndarray,
                      rms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per frame: mel power, the spectral-shape rows (the frames' zero-crossing rate `zcr` last),
        RMS (`rms`, as given) and band energies."""
        sample_rate, n_fft = self.sample_rate, int(self.params["n_fft"])
        power = dsp.power_spectrogram(frames)
        magnitude = np.sqrt(power)
        freqs = dsp.fft_frequencies(sample_rate, n_fft)
        mel_power = dsp.mel_spectrogram(power, sample_rate, n_fft, int(self.params["n_mels"]))
        spectral = np.stack(
            [
                *dsp.spectral_centroid_and_bandwidth(magnitude, freqs),
                dsp.spectral_rolloff(magnitude, freqs),
                dsp.spectral_flatness(power),
                zcr,
            ]
        )
        return mel_power, spectral, rms, _band_energy(power, sample_rate, n_fft)

    def _vectors(self, temporal: np.ndarray, bounds: np.ndarray, log_mel: np.ndarray,
                 spectral: np.ndarray, rms: np.ndarray, energy: np.ndarray) -> list[np.ndarray]:
        """Each sound's vector from its `_temporals` row and its frames' values (`log_mel`: the mel power in
        dB, `dsp.power_to_db` of it), the sounds' frames side by side (`bounds`)."""
        cepstra = dsp.mfcc(dsp.floor_db(log_mel, MFCC_TOP_DB, bounds), int(self.params["n_mfcc"]))
        groups = (cepstra, dsp.delta(cepstra, bounds=bounds), spectral)
        sizes = np.diff(bounds)
        loudest = np.repeat(np.maximum.reduceat(rms, bounds[:-1]), sizes)
        active = rms >= loudest * 10.0 ** (ACTIVE_FRAME_DB / 20.0)
        values = np.concatenate([_summaries(groups, bounds, active), np.reshape(temporal, (len(sizes), -1)).T,
                                 _band_ratios(energy, bounds)])
        return list(values.T.astype(np.float32))
