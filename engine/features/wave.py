"""The "wave" extractor: a fixed-length stretch of the waveform from just before the sound's onset.

For model kinds that compute their own front end from audio (`finetune` runs the aiSFX log-mel
and network on it). Samples are mono float32 at `sample_rate`, `seconds` long from the onset
region's start (`engine.audio.regions.onset_region`); a shorter sound is padded with zeros.
Level is left as it is: the network's front end normalises its input.
"""

from __future__ import annotations

import numpy as np

from engine.audio.regions import onset_region
from engine.features.base import Extractor


class WaveExtractor(Extractor):
    name = "wave"
    code_modules = ("engine.audio.regions",)
    defaults = {"sample_rate": 44100, "seconds": 0.75}

    def onset_span_s(self) -> float:
        return float(self.params["seconds"])

    def extract(self, samples: np.ndarray) -> np.ndarray:
        length = round(float(self.params["seconds"]) * self.sample_rate)
        region = onset_region(np.asarray(samples, dtype=np.float32), self.sample_rate, self.onset_span_s())[:length]
        out = np.zeros(length, dtype=np.float32)
        out[:len(region)] = region
        return out
