"""The "mel" extractor: a fixed-size log-mel patch of a sound, starting at its onset.

Values are dB relative to power 1.0 after loudness normalisation, floored at -top_db; a sound
shorter than the patch is padded with the floor value, a longer one is cut.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.audio import dsp
from engine.audio.regions import normalize_loudness, onset_region
from engine.features.base import Extractor

class MelExtractor(Extractor):
    name = "mel"
    code_modules = ("engine.audio.dsp", "engine.audio.regions")
    defaults = {
        "sample_rate": 22050,
        "n_fft": 1024,
        "hop": 256,
        "n_mels": 64,
        "frames": 96,
        "fmin": 20.0,
        "fmax": 11025.0,
        "target_db": -20.0,
        "top_db": 80.0,
    }

    def onset_span_s(self) -> float:
        """Long enough that the last frame's window is filled with the sound, not with padding."""
        n_fft, hop, n_frames = int(self.params["n_fft"]), int(self.params["hop"]), int(self.params["frames"])
        return ((n_frames - 1) * hop + n_fft // 2) / self.sample_rate

    def extract(self, samples: np.ndarray) -> np.ndarray:
        return self.extract_batch([samples])[0]

    def extract_batch(self, batch: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One STFT and one mel projection over the frames of several sounds at a time,
        dsp.FRAMES_PER_PASS frames or so, which stay in the CPU's cache. (Always the CPU: on a 16-core
        H200 box, log-mel on the card ran at half the rate of the workers doing it themselves, since
        decoding, not the STFT, is what it costs; README, "Extraction on a GPU".)"""
        if not batch:
            return []
        sample_rate, n_fft, hop = self.sample_rate, int(self.params["n_fft"]), int(self.params["hop"])
        n_mels, n_frames = int(self.params["n_mels"]), int(self.params["frames"])
        fmin, fmax = float(self.params["fmin"]), float(self.params["fmax"])
        floor = -float(self.params["top_db"])
        regions = [normalize_loudness(onset_region(np.asarray(samples, dtype=np.float32), sample_rate,
                                                   self.onset_span_s()), self.params["target_db"])
                   for samples in batch]
        patches = []
        for group in dsp.passes(regions, n_fft, hop):
            buffer, starts, bounds = dsp.frame_many(group, n_fft, hop)
            keep = np.concatenate([np.arange(first, min(last, first + n_frames))
                                   for first, last in zip(bounds[:-1], bounds[1:])])
            bounds = np.cumsum([0] + [min(count, n_frames) for count in np.diff(bounds)])
            power = dsp.power_spectrogram(dsp.frames_at(buffer, starts[keep], n_fft))
            log_mel = np.maximum(dsp.power_to_db(dsp.mel_spectrogram(power, sample_rate, n_fft, n_mels, fmin, fmax)),
                                 floor)
            for first, last in zip(bounds[:-1], bounds[1:]):
                patch = np.full((n_mels, n_frames), floor, dtype=np.float32)
                patch[:, : last - first] = log_mel[:, first:last]
                patches.append(patch)
        return patches
