"""The "cnn" kind: a small 2-D convolutional network on log-mel patches (N, n_mels, frames)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from engine.models.torch_nets import CnnNet, TorchClassifier

FLOOR_DB = -80.0  # what masked and shifted-in cells become: the mel extractor's silence
MAX_FREQ_MASK = 8  # mel bins
MAX_TIME_MASK = 12  # frames
MAX_SHIFT = 4  # frames, either way


def band_mask(batch: int, length: int, max_width: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, length) booleans: one random run of 0..max_width cells per row, on the generator's device."""
    device = generator.device
    width = torch.randint(0, max_width + 1, (batch, 1), generator=generator, device=device)
    start = (torch.rand((batch, 1), generator=generator, device=device) * (length - width + 1)).long()
    cells = torch.arange(length, device=device)
    return (cells >= start) & (cells < start + width)


def spec_augment(patches: torch.Tensor, generator: torch.Generator, floor: float = FLOOR_DB) -> torch.Tensor:
    """A random frequency band and time span masked, and a small time shift, per (n_mels, frames)
    patch; masked and shifted-in cells become `floor` (silence). The random draws are made where the
    generator lives (the GPU's own when training there: no copies)."""
    batch, n_mels, frames = patches.shape
    freq = band_mask(batch, n_mels, MAX_FREQ_MASK, generator)[:, :, None]
    time = band_mask(batch, frames, MAX_TIME_MASK, generator)[:, None, :]
    shift = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (batch, 1), generator=generator, device=generator.device)
    source = torch.arange(frames, device=generator.device) - shift  # output frame t takes input frame t - shift
    inside = ((source >= 0) & (source < frames))[:, None, :]
    index = source.clamp(0, frames - 1)[:, None, :].expand(batch, n_mels, frames)
    device = patches.device
    shifted = patches.gather(2, index.to(device))
    return shifted.masked_fill(~inside.to(device) | freq.to(device) | time.to(device), floor)


class CnnClassifier(TorchClassifier):
    kind = "cnn"
    input_rank = 2
    defaults = {"epochs": 30, "lr": 1e-3, "batch_size": "auto", "weight_decay": 1e-4, "dropout": 0.3, "patience": 6,
                "class_balance": True, "augment": True, "seed": 0, "device": "auto"}

    def _config(self, X: np.ndarray) -> dict[str, Any]:
        return {"input_shape": list(X.shape[1:])}

    def _build(self, config: dict[str, Any]) -> nn.Module:
        return CnnNet(self.n_classes_, float(self.hyperparams["dropout"]))

    def _augment(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return spec_augment(batch, generator) if self.hyperparams["augment"] else batch
