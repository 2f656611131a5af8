"""The "finetune" kind: the pretrained aiSFX network with a new classification head, fine-tuned.

Input: waveforms at 44100 Hz (the `wave` features, (N, samples)). The network is the aiSFX front
end and CNN of `engine.embeddings.aisfx` (log-mel frames, four conv blocks, mean over frequency and
max over time: 512 numbers) followed by dropout and one linear layer. Training starts from the
aiSFX weights workbench ships (`embeddings/weights/`, SHA-256 checked, read as safetensors; never
unpickled) and trains the head plus the last `train_blocks` conv blocks (0-4; 4 is all of them).
The blocks below stay frozen, batch-norm statistics included. Learning rates are discriminative:
the head learns at `lr`, the conv block next to it at `lr * lr_decay`, the one below at
`lr * lr_decay**2`, and so on. Training batches get SpecAugment on the log-mel frames
(`augment`) and mixup on the waveforms (`mixup`, the Beta alpha; 0 turns it off); early
stopping on the validation split (a held-out source with `--split group`) keeps the best epoch.
CUDA with mixed precision when present (the log-mel front end always runs in float32).

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
from engine.models.cnn import spec_augment
from engine.models.torch_nets import TorchClassifier

N_BLOCKS = len(aisfx.CHANNELS)
SILENCE = 0.0  # what the aiSFX log-mel gives for silence: log10(1) / max


class FinetuneNet(nn.Module):
    """Waveforms [batch, samples] -> logits [batch, n_classes] through aiSFX and a linear head."""

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

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        with torch.autocast(waveform.device.type, enabled=False):
            frames = self.embedder.log_mel(waveform.float())
        if self.training and self.frame_augment is not None:
            frames = self.frame_augment(frames)
        return self.head(self.embedder.net(frames))


class FinetuneClassifier(TorchClassifier):
    kind = "finetune"
    input_rank = 1
    feature_kinds = ("wave",)
    defaults = {"epochs": 30, "lr": 3e-3, "lr_decay": 0.3, "train_blocks": 1, "batch_size": 32,
                "weight_decay": 1e-4, "dropout": 0.3, "patience": 4, "mixup": 0.2, "augment": True,
                "class_balance": True, "seed": 0, "device": "auto"}

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
        if self.hyperparams["augment"]:
            generator = torch.Generator().manual_seed(self.hyperparams["seed"] + 1)

            def augment(frames: torch.Tensor) -> torch.Tensor:  # spec_augment takes (mels, frames) patches
                return spec_augment(frames.transpose(1, 2), generator, floor=SILENCE).transpose(1, 2)

            net.frame_augment = augment

    def _param_groups(self, net: nn.Module) -> list[dict[str, Any]]:
        lr, decay = float(self.hyperparams["lr"]), float(self.hyperparams["lr_decay"])
        groups = [{"params": list(net.head.parameters()), "lr": lr}]
        trained = net.blocks()[net.frozen:]
        for depth, block in enumerate(reversed(trained), start=1):
            groups.append({"params": list(block.parameters()), "lr": lr * decay ** depth})
        return groups

    def fit(self, X, y, **kwargs):
        super().fit(X, y, **kwargs)
        self.net_.frame_augment = None  # a training-time closure; not part of the fitted model
        return self
