"""What the torch model kinds share: networks, device choice, the training loop, artifacts and ONNX export.

Training runs from in-memory tensors (no DataLoader workers) and is repeatable on CPU for a given
seed: the global torch seed drives initialisation and dropout, a torch.Generator the shuffling and
augmentation, deterministic algorithms are on and torch uses at most two threads. On CUDA the loop
uses mixed precision and pinned host batches. Fitted networks are kept and used on the CPU.
"""

from __future__ import annotations

import copy
import json
import warnings
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors, save_file
from torch import nn

from engine.models.artifacts import ModelFiles
from engine.models.base import Classifier, TrainingCallback
from engine.settings import cpu_threads

PREDICT_BATCH = 256
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "network.json"


def resolve_device(name: str) -> torch.device:
    """"auto" is CUDA when available, else the CPU; asking for CUDA without it is an error."""
    cuda = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {name!r}")
    if name == "cuda" and not cuda:
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA GPU "
                         "(is the CUDA build of torch installed?); use 'cpu' or 'auto'")
    return torch.device(name)


class Standardize(nn.Module):
    """(x - mean) / scale with fixed statistics; they live in the model's config, not its weights."""

    def __init__(self, mean: list[float], scale: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


def mlp_net(mean: list[float], scale: list[float], hidden: int, n_classes: int, dropout: float) -> nn.Module:
    return nn.Sequential(
        Standardize(mean, scale),
        nn.Linear(len(mean), hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden // 2, n_classes),
    )


class CnnNet(nn.Module):
    """Four conv blocks over a (n_mels, frames) dB patch, global average pooling, one linear layer."""

    def __init__(self, n_classes: int, dropout: float, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for index, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            layers.append(nn.MaxPool2d(2) if index < len(widths) - 1 else nn.AdaptiveAvgPool2d(1))
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # dB values with a -80 floor map to about [-1, 1].
        return self.head(self.features(((x + 40.0) / 40.0).unsqueeze(1)))


def balanced_class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (present classes * count) per class, as scikit-learn's "balanced"; 0 for absent classes."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = len(y) / (np.count_nonzero(present) * counts[present])
    return weights


def _logits(net: nn.Module, X: torch.Tensor, device: torch.device) -> torch.Tensor:
    net.eval()
    with torch.inference_mode():
        return torch.cat([net(X[start:start + PREDICT_BATCH].to(device)).float().cpu()
                          for start in range(0, len(X), PREDICT_BATCH)])


class TorchClassifier(Classifier):
    """fit / predict_proba / save / load / export_onnx for a network described by a JSON config."""

    has_logits = True
    saved_files = (CONFIG_FILE, WEIGHTS_FILE)

    @abstractmethod
    def _config(self, X: np.ndarray) -> dict[str, Any]:
        """What, besides the hyperparameters, builds the network: from the training data."""

    @abstractmethod
    def _build(self, config: dict[str, Any]) -> nn.Module:
        """A fresh network for a config."""

    def _augment(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Training batches pass through here; no augmentation unless a kind adds one."""
        return batch

    def _initialise(self, net: nn.Module) -> None:
        """A fresh network's starting weights before training; as built unless a kind loads its own."""

    def _param_groups(self, net: nn.Module) -> list[dict[str, Any]]:
        """What the optimiser trains, in groups of one learning rate each; all of it at `lr` unless a
        kind trains parts at their own rates."""
        return [{"params": [p for p in net.parameters() if p.requires_grad], "lr": self.hyperparams["lr"]}]

    def fit(self, X, y, *, X_val=None, y_val=None, n_classes=None, callback=None, sample_weight=None):
        hp = self.hyperparams
        device = resolve_device(hp["device"])
        y = np.asarray(y, dtype=np.int64)
        self.n_classes_ = int(n_classes or y.max() + 1)
        torch.set_num_threads(cpu_threads())
        if device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.utils.deterministic.fill_uninitialized_memory = False  # a debugging aid; ~15% of a CNN step
        torch.manual_seed(hp["seed"])
        self.config_ = self._config(np.asarray(X))
        self.net_ = self._build(self.config_)
        self._initialise(self.net_)
        self.net_.to(device)
        weights = balanced_class_weights(y, self.n_classes_) if hp["class_balance"] else None
        validation = None
        if X_val is not None and len(X_val):
            validation = _tensor(X_val), torch.as_tensor(np.asarray(y_val, dtype=np.int64))
        row_weights = None if sample_weight is None else torch.as_tensor(np.asarray(sample_weight, dtype=np.float32))
        _train(self.net_, _tensor(X), torch.from_numpy(y), hp, device, weights=weights, validation=validation,
               callback=callback or TrainingCallback(), augment=self._augment, row_weights=row_weights,
               param_groups=self._param_groups(self.net_))
        self.net_.cpu().eval()
        return self

    def logits(self, X: np.ndarray) -> np.ndarray:
        return _logits(self.net_, _tensor(X), torch.device("cpu")).double().numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = _logits(self.net_, _tensor(X), torch.device("cpu"))
        return torch.softmax(logits.double(), dim=1).numpy()

    def save(self, folder: Path) -> None:
        state = {name: value.detach().cpu().contiguous() for name, value in self.net_.state_dict().items()}
        save_file(state, Path(folder) / WEIGHTS_FILE)
        (Path(folder) / CONFIG_FILE).write_text(json.dumps(
            {"hyperparams": self.hyperparams, "n_classes": self.n_classes_, "config": self.config_}))

    @classmethod
    def load(cls, files: ModelFiles) -> TorchClassifier:
        saved = files.json(CONFIG_FILE, {"hyperparams": dict, "n_classes": int, "config": dict})
        model = cls._from_saved(files, CONFIG_FILE, saved)
        model.config_ = saved["config"]
        model._check_config(files)
        try:
            state = load_tensors(files.read(WEIGHTS_FILE))
        except SafetensorError as error:
            raise files.damaged(WEIGHTS_FILE, f"not a readable safetensors file ({error})") from None
        try:
            with torch.device("meta"):  # the shapes the config asks for, without allocating them
                expected = {name: tuple(value.shape) for name, value in model._build(model.config_).state_dict().items()}
        except (RuntimeError, ValueError, TypeError) as error:
            raise files.damaged(CONFIG_FILE, f"does not describe a network ({error})") from None
        for name in sorted(expected.keys() | state.keys()):
            found = tuple(state[name].shape) if name in state else None
            if found != expected.get(name):
                raise files.damaged(WEIGHTS_FILE, f"tensor {name} has shape {found} where {CONFIG_FILE} needs "
                                                  f"{expected.get(name)}")
        model.net_ = model._build(model.config_)
        model.net_.load_state_dict(state)
        model.net_.eval()
        return model

    def _check_config(self, files: ModelFiles) -> None:
        """The loaded config's input shape: as many positive integers as the kind's input rank."""
        shape = self.config_.get("input_shape")
        if (not isinstance(shape, list) or len(shape) != self.input_rank
                or not all(type(n) is int and n > 0 for n in shape)):
            raise files.damaged(CONFIG_FILE, f"input_shape is {shape!r}, not {self.input_rank} positive integer(s)")

    def export_onnx(self, path: Path) -> None:
        example = torch.zeros(2, *self.config_["input_shape"])
        export_onnx(nn.Sequential(self.net_, nn.Softmax(dim=1)), example, path)


def _tensor(X: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))


def _train(net: nn.Module, X: torch.Tensor, y: torch.Tensor, hp: dict[str, Any], device: torch.device, *,
           weights: np.ndarray | None, validation: tuple[torch.Tensor, torch.Tensor] | None,
           callback: TrainingCallback,
           augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
           row_weights: torch.Tensor | None = None, param_groups: list[dict[str, Any]] | None = None) -> None:
    """Mini-batch AdamW on cross-entropy; with validation data, early stopping keeps the best epoch.
    `row_weights` (one per training row) weight each row's loss on top of the class weights.
    `param_groups` (default: every parameter at `lr`) are the optimiser's groups. With a `mixup`
    hyperparameter alpha > 0, each batch is mixed with a shuffled copy of itself, a weight drawn
    from Beta(alpha, alpha), and so is its loss (Zhang et al. 2018)."""
    cuda = device.type == "cuda"
    generator = torch.Generator().manual_seed(hp["seed"])
    mixup = float(hp.get("mixup", 0.0))
    mix_rng = np.random.default_rng(hp["seed"])
    groups = param_groups if param_groups is not None else [{"params": net.parameters(), "lr": hp["lr"]}]
    optimizer = torch.optim.AdamW(groups, lr=hp["lr"], weight_decay=hp["weight_decay"])
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    class_weights = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=device)
    best_loss, best_state, stale = float("inf"), None, 0
    for epoch in range(1, hp["epochs"] + 1):
        net.train()
        total = 0.0
        for index in torch.randperm(len(X), generator=generator).split(hp["batch_size"]):
            xb, yb = X[index], y[index]
            if cuda:
                xb, yb = xb.pin_memory(), yb.pin_memory()
            xb = augment(xb.to(device, non_blocking=True), generator)
            yb = yb.to(device, non_blocking=True)
            rows = None if row_weights is None else row_weights[index].to(device)
            share, partner = 1.0, None
            if mixup > 0:
                share = float(mix_rng.beta(mixup, mixup))
                partner = torch.randperm(len(index), generator=generator).to(device)
                xb = share * xb + (1.0 - share) * xb[partner]
            with torch.autocast(device.type, enabled=cuda):
                logits = net(xb)
                loss = _weighted_loss(logits, yb, class_weights, rows)
                if partner is not None:
                    loss = share * loss + (1.0 - share) * _weighted_loss(
                        logits, yb[partner], class_weights, None if rows is None else rows[partner])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.item() * len(index)
        val_loss = val_accuracy = None
        if validation is not None:
            logits = _logits(net, validation[0], device)
            val_loss = F.cross_entropy(logits, validation[1]).item()
            val_accuracy = (logits.argmax(dim=1) == validation[1]).double().mean().item()
        callback.on_epoch_end(epoch, hp["epochs"], total / len(X), val_loss, val_accuracy)
        if val_loss is not None:
            if val_loss < best_loss:
                best_loss, best_state, stale = val_loss, copy.deepcopy(net.state_dict()), 0
            else:
                stale += 1
        if stale >= hp["patience"] or callback.should_stop():
            break
    if best_state is not None:
        net.load_state_dict(best_state)


def _weighted_loss(logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor | None,
                   row_weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy, as `F.cross_entropy(weight=class_weights)` (the weighted mean over rows) when
    `row_weights` is None; otherwise each row's term also carries its row weight."""
    if row_weights is None:
        return F.cross_entropy(logits, target, weight=class_weights)
    per_row = F.cross_entropy(logits, target, reduction="none")
    weight = row_weights if class_weights is None else row_weights * class_weights[target]
    return (per_row * weight).sum() / weight.sum().clamp_min(1e-12)


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Trace `module` (CPU, eval) to ONNX: input "features" and output "probabilities", batch size free."""
    module.cpu().eval()
    with warnings.catch_warnings():
        # The TorchScript exporter is chosen on purpose (small static graphs, no onnxscript needed).
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        # finetune's log-mel front end slices with a step; the exporter says it cannot fold that, harmlessly.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        torch.onnx.export(module, (example,), str(path), input_names=["features"], output_names=["probabilities"],
                          dynamic_axes={"features": {0: "batch"}, "probabilities": {0: "batch"}}, dynamo=False)
