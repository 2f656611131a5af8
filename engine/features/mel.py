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



def torch_log_mel(buffer: np.ndarray, starts: np.ndarray, n_fft: int, hop: int, filters: np.ndarray,
                  device: str) -> np.ndarray:
    """`power_to_db(filters @ power_spectrogram(frames_at(buffer, starts, n_fft)))` computed by torch
    on `device`, all the frames in one batch, taken out of the buffer there (`starts` are whole
    hops, as `dsp.frame_many` lays them): (n_mels, n_frames) float32 on the host."""
    import torch

    with torch.inference_mode():
        samples = torch.from_numpy(np.ascontiguousarray(buffer, dtype=np.float32)).to(device)
        frames = samples.unfold(0, n_fft, hop)[torch.from_numpy(starts // hop).to(device)]
        window = torch.from_numpy(dsp.hann_window(n_fft).copy()).to(device)
        spectrum = torch.fft.rfft(frames * window, dim=1)
        power = spectrum.real.square() + spectrum.imag.square()
        mel = power @ torch.from_numpy(filters.copy()).to(device).T
        return (10.0 * torch.log10(mel.clamp_min(dsp.AMIN))).T.cpu().numpy()


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

    @property
    def torch_device(self) -> str | None:
        """The torch device the STFT and mel projection run on; None: numpy on the CPU."""
        return None if self.device == "cpu" else self.device

    def runs_on_device(self) -> bool:
        return self.torch_device is not None

    def onset_span_s(self) -> float:
        """Long enough that the last frame's window is filled with the sound, not with padding."""
        n_fft, hop, n_frames = int(self.params["n_fft"]), int(self.params["hop"]), int(self.params["frames"])
        return ((n_frames - 1) * hop + n_fft // 2) / self.sample_rate

    def extract(self, samples: np.ndarray) -> np.ndarray:
        return self.extract_batch([samples])[0]

    def extract_batch(self, batch: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One STFT and one mel projection over the frames of several sounds at a time: on the CPU,
        dsp.FRAMES_PER_PASS frames or so, which stay in its cache; on a torch device, the whole batch."""
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
        for group in ([regions] if self.torch_device else dsp.passes(regions, n_fft, hop)):
            buffer, starts, bounds = dsp.frame_many(group, n_fft, hop)
            keep = np.concatenate([np.arange(first, min(last, first + n_frames))
                                   for first, last in zip(bounds[:-1], bounds[1:])])
            bounds = np.cumsum([0] + [min(count, n_frames) for count in np.diff(bounds)])
            if self.torch_device is None:
                power = dsp.power_spectrogram(dsp.frames_at(buffer, starts[keep], n_fft))
                log_mel = dsp.power_to_db(dsp.mel_spectrogram(power, sample_rate, n_fft, n_mels, fmin, fmax))
            else:
                log_mel = torch_log_mel(buffer, starts[keep], n_fft, hop,
                                        dsp.mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax), self.torch_device)
            log_mel = np.maximum(log_mel, floor)
            for first, last in zip(bounds[:-1], bounds[1:]):
                patch = np.full((n_mels, n_frames), floor, dtype=np.float32)
                patch[:, : last - first] = log_mel[:, first:last]
                patches.append(patch)
        return patches
