"""The "finetune" kind: the pretrained aiSFX network with a new classification head, fine-tuned.

Input: waveforms at 44100 Hz (the `wave` features, (N, samples)). The network is the aiSFX front
end and CNN of `engine.embeddings.aisfx` (log-mel frames, four conv blocks, mean over frequency and
max over time: 512 numbers) followed by dropout and one linear layer. Training starts from the
aiSFX weights workbench ships (`embeddings/weights/`, SHA-256 checked, read as safetensors; never
unpickled) and trains the head plus the last `train_blocks` conv blocks (0-4; 4 is all of them).
The blocks below stay frozen, batch-norm statistics included. Learning rates are discriminative:
the head learns at `lr`, the conv block next to it at `lr * lr_decay`, the one below at
`lr * lr_decay**2`, and so on. Early stopping on the validation split (a held-out source with
`--split group`) keeps the best epoch. CUDA with mixed precision when present (the log-mel front
end always runs in float32).

With frozen blocks (the default trains one), what the front end and the frozen blocks make of a
clip never changes, so it is computed once per clip (training and validation rows, augmented
copies from `--augment` included: each is a row) under inference mode, in float32: their "maps"
[channels, time, frequency]. Every epoch then runs only the trained blocks and the head on them.
Training batches get SpecAugment on those maps (`augment`: a band of frequency cells and a span of
time cells become what silence gives there, the widths of the frame-level masks scaled down by
the frozen blocks' pooling; no time shift) and mixup on them (`mixup`, the Beta alpha; 0 turns
it off), i.e. manifold mixup (Verma et al. 2019). When every block trains (`train_blocks` 4)
nothing can be computed once: each epoch runs the whole network, with SpecAugment on the log-mel
frames and mixup on the waveforms.

Saved like the other torch kinds: the whole network's weights (backbone included, so a saved
model stands alone) as safetensors plus a JSON config, checked before they are loaded;
exported to ONNX with the front end inside, waveform in, probabilities out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from engine.embeddings import aisfx
from engine.models.base import TrainingCallback
from engine.models.cnn import MAX_FREQ_MASK, MAX_TIME_MASK, band_mask, spec_augment
from engine.models.torch_nets import TorchClassifier

N_BLOCKS = len(aisfx.CHANNELS)
SILENCE = 0.0  # what the aiSFX log-mel gives for silence: log10(1) / max
MAPS_BATCH = 64  # clips through the frozen blocks at a time when their maps are computed


class FinetuneNet(nn.Module):
    """Waveforms [batch, samples] -> logits [batch, n_classes] through aiSFX and a linear head:
    `trained_part(frozen_part(waveforms))`."""

    def __init__(self, n_classes: int, dropout: float, train_blocks: int) -> None:
        super().__init__()
        _, embedder_class = aisfx._classes()
        self.embedder = embedder_class(*aisfx.preprocessing_constants())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(aisfx.DIM, n_classes))
        self.frozen = N_BLOCKS - train_blocks
        for block in self.blocks()[:self.frozen]:
            block.requires_grad_(False)
        self.frame_augment = None  # set while training: frames [batch, frames, mels] -> the same, augmented

    def blocks(self) -> list[nn.Module]:
        return [getattr(self.embedder.net, f"conv_block{index + 1}") for index in range(N_BLOCKS)]

    def train(self, mode: bool = True) -> FinetuneNet:
        super().train(mode)
        for block in self.blocks()[:self.frozen]:
            block.eval()  # frozen blocks keep their batch-norm statistics
        return self

    def frozen_part(self, waveform: torch.Tensor) -> torch.Tensor:
        """Waveforms -> the maps [batch, channels, time, freq] of the last frozen block (the log-mel
        frames [batch, 1, frames, mels] when none is frozen)."""
        with torch.autocast(waveform.device.type, enabled=False):
            frames = self.embedder.log_mel(waveform.float())
        if self.training and self.frame_augment is not None:
            frames = self.frame_augment(frames)
        maps = frames.unsqueeze(1)
        for block in self.blocks()[:self.frozen]:
            maps = block(maps)
        return maps

    def trained_part(self, maps: torch.Tensor) -> torch.Tensor:
        """The frozen part's maps -> logits, through the trained blocks, the pooling and the head."""
        for block in self.blocks()[self.frozen:]:
            maps = block(maps)
        return self.head(self.embedder.net.pool(maps))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.trained_part(self.frozen_part(waveform))


class TrainedPart(nn.Module):
    """A FinetuneNet's trained part as a module of its own, on precomputed maps (its parameters are
    the network's: training it trains the network)."""

    def __init__(self, net: FinetuneNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.net.trained_part(maps)


def mask_maps(maps: torch.Tensor, silence: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SpecAugment on maps [batch, channels, time, freq]: per map, a random band of frequency cells
    and span of time cells take the values `silence` [channels, time, freq] (the maps of a silent
    clip) has there. The widths are those of the frame-level masks (`MAX_FREQ_MASK` mel bins,
    `MAX_TIME_MASK` frames) over the cells' size, at least one cell."""
    batch, _, frames, bins = maps.shape
    cell = max(aisfx.N_MELS // bins, 1)  # the frozen blocks pool time and frequency alike
    freq = band_mask(batch, bins, max(MAX_FREQ_MASK // cell, 1), generator)[:, None, None, :]
    time = band_mask(batch, frames, max(MAX_TIME_MASK // cell, 1), generator)[:, None, :, None]
    return torch.where((freq | time).to(maps.device), silence.to(maps.device), maps)


class FinetuneClassifier(TorchClassifier):
    kind = "finetune"
    input_rank = 1
    feature_kinds = ("wave",)
    defaults = {"epochs": 30, "lr": 3e-3, "lr_decay": 0.3, "train_blocks": 1, "batch_size": 32,
                "weight_decay": 1e-4, "dropout": 0.3, "patience": 4, "mixup": 0.2, "augment": True,
                "class_balance": True, "seed": 0, "device": "auto"}
    _silence: torch.Tensor | None = None  # while training on maps with `augment`: a silent clip's maps

    def __init__(self, **hyperparams: Any) -> None:
        super().__init__(**hyperparams)
        if not 0 <= self.hyperparams["train_blocks"] <= N_BLOCKS:
            raise ValueError(f"finetune: train_blocks must be 0 to {N_BLOCKS}, not {self.hyperparams['train_blocks']}")

    def _config(self, X: np.ndarray) -> dict[str, Any]:
        return {"input_shape": list(X.shape[1:])}

    def _build(self, config: dict[str, Any]) -> nn.Module:
        return FinetuneNet(self.n_classes_, float(self.hyperparams["dropout"]), int(self.hyperparams["train_blocks"]))

    def _initialise(self, net: nn.Module) -> None:
        """The pretrained aiSFX weights: the ones workbench ships (else an installed aisfx package)."""
        weights, _ = aisfx.network_weights()
        net.embedder.net.load_state_dict(weights, strict=True)

    def _param_groups(self, net: nn.Module) -> list[dict[str, Any]]:
        lr, decay = float(self.hyperparams["lr"]), float(self.hyperparams["lr_decay"])
        groups = [{"params": list(net.head.parameters()), "lr": lr}]
        trained = net.blocks()[net.frozen:]
        for depth, block in enumerate(reversed(trained), start=1):
            groups.append({"params": list(block.parameters()), "lr": lr * decay ** depth})
        return groups

    def _fitted_part(self, net, X, X_val, device, callback):
        """With frozen blocks: the trained part on the frozen part's maps of every row, computed once."""
        if net.frozen == 0:
            return self._on_waveforms(net, X, X_val)
        silent = torch.zeros(1, X.shape[1]) if self.hyperparams["augment"] else None
        maps, val_maps, silence = (None if rows is None else _frozen_maps(net, rows, device, callback)
                                   for rows in (X, X_val, silent))
        if callback.should_stop():
            return None
        self._silence = None if silence is None else silence[0].to(device)
        return TrainedPart(net), maps, val_maps

    def _on_waveforms(self, net: FinetuneNet, X: torch.Tensor, X_val: torch.Tensor | None):
        """The whole network on the waveforms every epoch: SpecAugment on its log-mel frames, mixup
        on the waveforms."""
        if self.hyperparams["augment"]:
            generator = torch.Generator().manual_seed(self.hyperparams["seed"] + 1)

            def augment(frames: torch.Tensor) -> torch.Tensor:  # spec_augment takes (mels, frames) patches
                return spec_augment(frames.transpose(1, 2), generator, floor=SILENCE).transpose(1, 2)

            net.frame_augment = augment
        return net, X, X_val

    def _augment(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return batch if self._silence is None else mask_maps(batch, self._silence, generator)

    def fit(self, X, y, **kwargs):
        try:
            super().fit(X, y, **kwargs)
        finally:  # training-time state; not part of the fitted model
            if getattr(self, "net_", None) is not None:
                self.net_.frame_augment = None
            self._silence = None
        return self


def _frozen_maps(net: FinetuneNet, X: torch.Tensor, device: torch.device,
                 callback: TrainingCallback) -> torch.Tensor | None:
    """The frozen part's maps of every row, on the CPU in float32, MAPS_BATCH rows at a time (None
    when the callback says stop: cancelled)."""
    net.eval()
    parts = []
    with torch.inference_mode():
        for start in range(0, len(X), MAPS_BATCH):
            if callback.should_stop():
                return None
            parts.append(net.frozen_part(X[start:start + MAPS_BATCH].to(device)).float().cpu())
    return torch.cat(parts)  # outside inference mode: a tensor training may keep for its backward pass
