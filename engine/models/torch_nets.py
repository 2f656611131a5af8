"""What the torch model kinds share: networks, device choice, the training loop, artifacts and ONNX export.

Training runs from in-memory tensors (no DataLoader workers) and is repeatable on CPU for a given
seed: the global torch seed drives initialisation and dropout, a torch.Generator the shuffling and
augmentation, deterministic algorithms are on and torch uses the `threads` setting's CPU threads. On
CUDA the training data stays on the card when it fits, the loop reads the loss once per epoch, the
forward pass runs under bf16 autocast, and `batch_size="auto"` picks a batch that fills the card.
Fitted networks are kept and used on the CPU.
"""

from __future__ import annotations

import contextlib
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

from engine.device import resolve_device
from engine.models.artifacts import ModelFiles
from engine.models.base import Classifier, TrainingCallback
from engine.settings import cpu_threads

PREDICT_BATCH = 256
RESIDENT_SHARE = 0.5  # training data moves to the GPU when it takes at most this share of its free memory
MAX_AUTO_BATCH = 4096
AUTO_MEMORY_SHARE = 0.25  # "auto" batch size: a training step may take this share of the GPU's free memory
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "network.json"


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
    cpu_batch_size = 32  # what batch_size="auto" is on the CPU (on CUDA: a batch that fills the card)

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

    def _fitted_part(self, net: nn.Module, X: torch.Tensor, X_val: torch.Tensor | None, device: torch.device,
                     callback: TrainingCallback) -> tuple[nn.Module, torch.Tensor, torch.Tensor | None] | None:
        """What the training loop runs, and on which rows: the whole network on the rows as given,
        unless a kind runs only a part of it on inputs it computes once (None: cancelled meanwhile)."""
        return net, X, X_val

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
        callback = callback or TrainingCallback()
        has_validation = X_val is not None and len(X_val) > 0
        fitted = self._fitted_part(self.net_, _tensor(X), _tensor(X_val) if has_validation else None, device, callback)
        if fitted is not None:
            part, inputs, val_inputs = fitted
            validation = None
            if val_inputs is not None:
                validation = val_inputs, torch.as_tensor(np.asarray(y_val, dtype=np.int64))
            row_weights = None if sample_weight is None else torch.as_tensor(np.asarray(sample_weight, dtype=np.float32))
            with _tuned_for_cuda(part, device.type == "cuda"):
                self.hyperparams["batch_size"] = _train(
                    part, inputs, torch.from_numpy(y), hp, device, weights=weights, validation=validation,
                    callback=callback, augment=self._augment, row_weights=row_weights,
                    default_batch=self.cpu_batch_size, param_groups=self._param_groups(self.net_))
        self.net_.cpu().eval()
        return self

    def logits(self, X: np.ndarray) -> np.ndarray:
        return _logits(self.net_, _tensor(X), torch.device("cpu")).double().numpy()

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
        export_onnx(self.net_, example, path, self.temperature_)


def _tensor(X: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))


def fits_on_device(tensors: list[torch.Tensor], device: torch.device) -> bool:
    """Whether the training tensors can live on the device for the whole fit: always on the CPU; on
    CUDA when they take at most RESIDENT_SHARE of its free memory."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return sum(t.numel() * t.element_size() for t in tensors) <= RESIDENT_SHARE * free


def resolve_batch_size(value: int | str, default: int, net: nn.Module, X: torch.Tensor, device: torch.device) -> int:
    """A batch size given as a number is that number; "auto" is the kind's default on the CPU and, on
    CUDA, the largest power of two (up to MAX_AUTO_BATCH, and a tenth of the training rows) whose
    forward and backward pass takes at most AUTO_MEMORY_SHARE of the card's free memory."""
    if value != "auto":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"batch_size must be a positive whole number or 'auto', not {value!r}")
        return value
    if device.type != "cuda":
        return default
    probe = copy.deepcopy(net)  # its batch-norm statistics move; the network being trained stays as it is
    chosen, size = default, default
    while size <= min(MAX_AUTO_BATCH, max(default, len(X) // 10)):
        free, _ = torch.cuda.mem_get_info(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        rows = X[torch.arange(size) % len(X)].to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            probe(rows).float().sum().backward()
        used = torch.cuda.max_memory_allocated(device) - before
        probe.zero_grad(set_to_none=True)
        del rows
        if used > AUTO_MEMORY_SHARE * free:
            break
        chosen, size = size, size * 2
    return chosen


@contextlib.contextmanager
def _tuned_for_cuda(net: nn.Module, cuda: bool):
    """On CUDA, while training: convolution weights in channels-last layout (bf16 tensor-core kernels
    without layout transposes), undone after. (cuDNN's autotuner is left off: a fit meets several
    batch shapes, the last of an epoch, validation, and tuning each cost more than it saved.)"""
    if not cuda:
        yield
        return
    net.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        net.to(memory_format=torch.contiguous_format)


def _train(net: nn.Module, X: torch.Tensor, y: torch.Tensor, hp: dict[str, Any], device: torch.device, *,
           weights: np.ndarray | None, validation: tuple[torch.Tensor, torch.Tensor] | None,
           callback: TrainingCallback,
           augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
           row_weights: torch.Tensor | None = None, default_batch: int = 32,
           param_groups: list[dict[str, Any]] | None = None) -> int:
    """Mini-batch AdamW on cross-entropy; with validation data, early stopping keeps the best epoch.
    `row_weights` (one per training row) weight each row's loss on top of the class weights.
    `param_groups` (default: every parameter at `lr`) are the optimiser's groups. With a `mixup`
    hyperparameter alpha > 0, each batch is mixed with a shuffled copy of itself, a weight drawn
    from Beta(alpha, alpha), and so is its loss (Zhang et al. 2018).

    The training tensors move to the device once when they fit (`fits_on_device`), else each batch
    is copied over from pinned memory; the epoch's loss is summed on the device and read once per
    epoch, so no step waits for the device. On CUDA the forward pass runs under bf16 autocast and
    augmentation draws its randomness on the card. Returns the batch size used."""
    cuda = device.type == "cuda"
    generator = torch.Generator().manual_seed(hp["seed"])  # the shuffling: the same on every device
    augment_generator = torch.Generator(device).manual_seed(hp["seed"]) if cuda else generator
    batch_size = resolve_batch_size(hp["batch_size"], default_batch, net, X, device)
    mixup = float(hp.get("mixup", 0.0))
    mix_rng = np.random.default_rng(hp["seed"])
    groups = param_groups if param_groups is not None else [{"params": net.parameters(), "lr": hp["lr"]}]
    optimizer = torch.optim.AdamW(groups, lr=hp["lr"], weight_decay=hp["weight_decay"])
    class_weights = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=device)
    resident = fits_on_device([X, y] + ([] if row_weights is None else [row_weights]), device)
    if resident:
        X, y = X.to(device), y.to(device)
        row_weights = None if row_weights is None else row_weights.to(device)
    best_loss, best_state, stale = float("inf"), None, 0
    for epoch in range(1, hp["epochs"] + 1):
        net.train()
        total = torch.zeros((), dtype=torch.float64, device=device)
        order = torch.randperm(len(X), generator=generator)
        for index in (order.to(device) if resident else order).split(batch_size):
            xb, yb = X[index], y[index]
            wb = None if row_weights is None else row_weights[index]
            if not resident:  # CUDA, data too large to keep there: batches come from pinned memory
                xb, yb = xb.pin_memory().to(device, non_blocking=True), yb.pin_memory().to(device, non_blocking=True)
                wb = None if wb is None else wb.to(device)
            xb = augment(xb, augment_generator)
            share, partner = 1.0, None
            if mixup > 0:
                share = float(mix_rng.beta(mixup, mixup))
                partner = torch.randperm(len(index), generator=generator).to(xb.device)
                xb = share * xb + (1.0 - share) * xb[partner]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                logits = net(xb).float()
            loss = _weighted_loss(logits, yb, class_weights, wb)
            if partner is not None:
                loss = share * loss + (1.0 - share) * _weighted_loss(
                    logits, yb[partner], class_weights, None if wb is None else wb[partner])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach().double() * len(index)
        val_loss = val_accuracy = None
        if validation is not None:
            logits = _logits(net, validation[0], device)
            val_loss = F.cross_entropy(logits, validation[1]).item()
            val_accuracy = (logits.argmax(dim=1) == validation[1]).double().mean().item()
        callback.on_epoch_end(epoch, hp["epochs"], total.item() / len(X), val_loss, val_accuracy)
        if val_loss is not None:
            if val_loss < best_loss:
                best_loss, best_state, stale = val_loss, copy.deepcopy(net.state_dict()), 0
            else:
                stale += 1
        if stale >= hp["patience"] or callback.should_stop():
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return batch_size


def _weighted_loss(logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor | None,
                   row_weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy, as `F.cross_entropy(weight=class_weights)` (the weighted mean over rows) when
    `row_weights` is None; otherwise each row's term also carries its row weight."""
    if row_weights is None:
        return F.cross_entropy(logits, target, weight=class_weights)
    per_row = F.cross_entropy(logits, target, reduction="none")
    weight = row_weights if class_weights is None else row_weights * class_weights[target]
    return (per_row * weight).sum() / weight.sum().clamp_min(1e-12)


class _Probabilities(nn.Module):
    """softmax(logits / temperature) over a logits module: the temperature is a constant of the graph."""

    def __init__(self, logits: nn.Module, temperature: float) -> None:
        super().__init__()
        self.logits, self.temperature = logits, float(temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x) / self.temperature, dim=1)


def export_onnx(logits: nn.Module, example: torch.Tensor, path: Path, temperature: float = 1.0) -> None:
    """Trace `logits` (CPU, eval) followed by softmax(· / temperature) to ONNX: input "features" and
    output "probabilities", batch size free."""
    module = _Probabilities(logits, temperature).cpu().eval()
    with warnings.catch_warnings():
        # The TorchScript exporter is chosen on purpose (small static graphs, no onnxscript needed).
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        # finetune's log-mel front end slices with a step; the exporter says it cannot fold that, harmlessly.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        torch.onnx.export(module, (example,), str(path), input_names=["features"], output_names=["probabilities"],
                          dynamic_axes={"features": {0: "batch"}, "probabilities": {0: "batch"}}, dynamo=False)
