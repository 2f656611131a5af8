"""The "dsp" extractor: a fixed-length vector of hand-made descriptors of one sound.

The segment is cut to its onset-aligned region and loudness-normalised, then summarised from a
single STFT (MFCCs and their deltas, spectral shape, zero-crossing rate), from its envelope
(attack, decay, duration, temporal centroid, crest factor) and from its energy per frequency
band. Frame statistics are taken over the active frames only, so trailing silence does not count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.audio import dsp
from engine.audio.regions import (
    active_rms,
    envelope,
    envelope_block,
    first_above,
    loudness_gain,
    normalize_loudness,
    onset_region,
    onset_start,
    region_from,
)
from engine.features.base import Extractor

MFCC_TOP_DB = 80.0
ACTIVE_FRAME_DB = -60.0  # frames this far below the loudest frame are left out of frame statistics
ONSET_DB = -40.0
DECAY_DB = -20.0
EFFECTIVE_DB = -40.0
BAND_EDGES_HZ = (150.0, 800.0, 5000.0)

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
    counts = np.add.reduceat(active, starts)
    means = np.add.reduceat(np.where(active, rows, 0.0), starts, axis=1) / counts
    deviations = np.where(active, rows - np.repeat(means, sizes, axis=1), 0.0)
    stds = np.sqrt(np.add.reduceat(np.square(deviations), starts, axis=1) / counts)
    parts, first = [], 0
    for group in groups:
        parts += [means[first: first + len(group)], stds[first: first + len(group)]]
        first += len(group)
    return np.concatenate(parts)


def _temporal(region: np.ndarray, sample_rate: int) -> np.ndarray:
    """Attack, decay, effective duration and temporal centroid (seconds), crest factor (dB)."""
    block = envelope_block(sample_rate)
    env = envelope(region, block)
    if env.size == 0 or not env.max() > 0:
        return np.zeros(len(TEMPORAL_NAMES))
    seconds_per_block = block / sample_rate
    onset = first_above(env, ONSET_DB)
    peak = int(np.argmax(env))
    decay_end = np.flatnonzero(env >= env[peak] * 10.0 ** (DECAY_DB / 20.0))[-1]
    effective_blocks = np.count_nonzero(env >= env[peak] * 10.0 ** (EFFECTIVE_DB / 20.0))
    times = (np.arange(env.size) - onset) * seconds_per_block
    return np.array(
        [
            (peak - onset) * seconds_per_block,
            (decay_end - peak) * seconds_per_block,
            effective_blocks * seconds_per_block,
            float(times @ env) / float(env.sum()),
            20.0 * np.log10(float(np.abs(region).max()) / active_rms(region)),
        ]
    )


def _band_energy(power: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Each frame's energy below, between and above BAND_EDGES_HZ: shape (bands, frames), float64."""
    bounds = np.concatenate([[0], np.searchsorted(freqs, BAND_EDGES_HZ)])
    return np.add.reduceat(power, bounds, axis=0, dtype=np.float64)


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
        at a time, dsp.FRAMES_PER_PASS frames or so, which stay in the CPU's cache; the frame statistics
        of all those sounds at once, and only the envelope descriptors sound by sound."""
        n_fft, hop = int(self.params["n_fft"]), int(self.params["hop"])
        regions = [normalize_loudness(onset_region(np.asarray(samples, dtype=np.float32), self.sample_rate,
                                                   self.params["region_s"]), self.params["target_db"])
                   for samples in batch]
        vectors = []
        for group in dsp.passes(regions, n_fft, hop):
            buffer, starts, bounds = dsp.frame_many(group, n_fft, hop)
            vectors += self._vectors(group, bounds, *self._buffer_values(buffer, starts))
        return vectors

    def extract_windows(self, samples: np.ndarray, windows: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """Features of the windows [first, last) (in samples) of one long sound, the inner frames of
        every window taken from one STFT over all of it.

        As `extract_batch` of the windows' samples, but for where a window's inner frames fall: on
        the sound's own hop grid, at most hop / 2 samples from where the window's own frames would
        be. The frames that reach past a window's onset region into its zero padding (two at each
        end with the defaults) are its own, so the edges the statistics see are the same. Loudness
        normalisation is applied as the gain it would be (the descriptors other than the MFCCs do
        not depend on it)."""
        if not windows:
            return []
        samples = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        sample_rate, n_fft, hop = self.sample_rate, int(self.params["n_fft"]), int(self.params["hop"])
        buffer, starts, _ = dsp.frame_many([samples], n_fft, hop)
        inner = self._buffer_values(buffer, starts)
        total = inner[2].size
        regions, gains, picks, edge_frames = [], [], [], []
        edge_count = 0
        for first, last in windows:
            window = samples[first:last]
            onset = onset_start(window, sample_rate)
            region = region_from(window, onset, sample_rate, self.params["region_s"])
            start = first + max(onset or 0, -first)  # the region's first sample in the sound
            own = dsp.frame(region, n_fft, hop)
            n = len(own)
            edge = np.flatnonzero((np.arange(n) * hop < n_fft // 2) | (np.arange(n) * hop + n_fft // 2 > len(region)))
            middle = np.setdiff1d(np.arange(n), edge)
            grid = np.clip(int(round(start / hop)) + middle, 0, total - 1)
            pick = np.empty(n, dtype=np.int64)
            pick[middle] = grid
            pick[edge] = total + edge_count + np.arange(len(edge))
            edge_frames.append(own[edge])
            edge_count += len(edge)
            picks.append(pick)
            regions.append(region)
            gains.append(np.float32(loudness_gain(region, self.params["target_db"]) ** 2))
        edge_frames = np.concatenate(edge_frames)
        edges = self._frame_values(edge_frames, dsp.zero_crossing_rate(edge_frames), dsp.frame_rms(edge_frames))
        mel_power, spectral, rms, energy = (np.concatenate([whole, part], axis=-1) for whole, part in zip(inner, edges))
        bounds = np.cumsum([0] + [len(pick) for pick in picks])
        scaled = np.concatenate([mel_power[:, pick] * gain for pick, gain in zip(picks, gains)], axis=1)
        every = np.concatenate(picks)
        return self._vectors(regions, bounds, scaled, spectral[:, every], rms[every], energy[:, every])

    def _buffer_values(self, buffer: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, ...]:
        """`_frame_values` of the frames `dsp.frame_many` laid out in `buffer`."""
        n_fft = int(self.params["n_fft"])
        return self._frame_values(dsp.frames_at(buffer, starts, n_fft), dsp.zero_crossing_rate_at(buffer, starts, n_fft),
                                  dsp.frame_rms_at(buffer, starts, n_fft))

    def _frame_values(self, frames: np.ndarray, zcr: np.ndarray,
                      rms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per frame: mel power, the spectral-shape rows (the frames' zero-crossing rate `zcr` last),
        RMS (`rms`, as given) and band energies."""
        sample_rate, n_fft = self.sample_rate, int(self.params["n_fft"])
        power = dsp.power_spectrogram(frames)
        magnitude = np.sqrt(power)
        freqs = dsp.fft_frequencies(sample_rate, n_fft)
        mel_power = dsp.mel_spectrogram(power, sample_rate, n_fft, int(self.params["n_mels"]))
        centroid = dsp.spectral_centroid(magnitude, freqs)
        spectral = np.stack(
            [
                centroid,
                dsp.spectral_bandwidth(magnitude, freqs, centroid),
                dsp.spectral_rolloff(magnitude, freqs),
                dsp.spectral_flatness(power),
                zcr,
            ]
        )
        return mel_power, spectral, rms, _band_energy(power, freqs)

    def _vectors(self, regions: list[np.ndarray], bounds: np.ndarray, mel_power: np.ndarray, spectral: np.ndarray,
                 rms: np.ndarray, energy: np.ndarray) -> list[np.ndarray]:
        """Each sound's vector from its frames' values, the sounds' frames side by side (`bounds`)."""
        cepstra = dsp.mfcc(dsp.power_to_db(mel_power, top_db=MFCC_TOP_DB, bounds=bounds), int(self.params["n_mfcc"]))
        groups = (cepstra, dsp.delta(cepstra, bounds=bounds), spectral)
        sizes = np.diff(bounds)
        loudest = np.repeat(np.maximum.reduceat(rms, bounds[:-1]), sizes)
        active = rms >= loudest * 10.0 ** (ACTIVE_FRAME_DB / 20.0)
        temporal = np.stack([_temporal(region, self.sample_rate) for region in regions], axis=1)
        values = np.concatenate([_summaries(groups, bounds, active), temporal, _band_ratios(energy, bounds)])
        return list(values.T.astype(np.float32))
