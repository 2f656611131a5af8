"""The engine's CNN training against a tight loop of the same network, in one run.

    python bench/bench_gpu.py                # CUDA when there is one, else the CPU (it says so)
    python bench/bench_gpu.py --rows 4000    # fewer training patches

engine  `make_model("cnn")` at its default settings (device auto, batch size, augmentation,
        class balance, early stopping on a validation set) fitted on (64, 96) mel-shaped patches,
        for a fixed number of epochs.
tight   the same network (CnnNet) on the same patches held on the device: random batches of the
        same size, AdamW, bf16 autocast on CUDA, no augmentation, validation or per-epoch work,
        one sync at the end.
Both in training samples per second; the ratio engine / tight is the engine loop's efficiency
(goal on CUDA: >= 50%).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_models import mel_like  # noqa: E402  (the same mel-shaped patches as the training bench)
from engine.models.kinds import make_model  # noqa: E402
from engine.device import resolve_device  # noqa: E402
from engine.models.torch_nets import CnnNet  # noqa: E402


def engine_rate(X, y, X_val, y_val, epochs: int) -> tuple[float, int]:
    """Training samples per second of the engine's cnn at its defaults, and the batch size it used."""
    model = make_model("cnn", epochs=epochs)
    model.fit(X[:64], y[:64], n_classes=9)  # warm-up: kernels, allocator
    model = make_model("cnn", epochs=epochs)
    started = time.perf_counter()
    model.fit(X, y, X_val=X_val, y_val=y_val, n_classes=9)
    return len(X) * epochs / (time.perf_counter() - started), model.get_params()["batch_size"]


def tight_rate(X, y, batch_size: int, steps: int, device: torch.device) -> float:
    """Training samples per second of the bare loop: data resident, random batches, no syncs."""
    torch.manual_seed(0)
    net = CnnNet(9, 0.3).to(device).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    X, y = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
    cuda = device.type == "cuda"

    def step() -> None:
        index = torch.randint(0, len(X), (batch_size,), device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(net(X[index]).float(), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="training patches (default 20,000 on CUDA, 1,000 on CPU)")
    parser.add_argument("--epochs", type=int, default=None, help="engine epochs (default 3 on CUDA, 1 on CPU)")
    args = parser.parse_args()
    device = resolve_device("auto")
    cuda = device.type == "cuda"
    if cuda:
        print(f"CUDA: {torch.cuda.get_device_name(device)}")
    else:
        print(f"no CUDA: running on the CPU ({torch.get_num_threads()} threads); the figures say nothing of a GPU")
    rows = args.rows or (20_000 if cuda else 1_000)
    epochs = args.epochs or (3 if cuda else 1)
    X, y = mel_like(rows, seed=0)
    X_val, y_val = mel_like(max(rows // 6, 64), seed=1)
    engine, batch_size = engine_rate(X, y, X_val, y_val, epochs)
    tight = tight_rate(X, y, batch_size, steps=max(rows * epochs // batch_size // 2, 10), device=device)
    print(f"{rows:,} patches (64x96), {epochs} epoch(s), batch {batch_size}")
    print(f"engine cnn at defaults  {engine:>10,.0f} samples/s (validation each epoch included)")
    print(f"tight loop, resident    {tight:>10,.0f} samples/s")
    print(f"ratio engine / tight    {engine / tight:>10.0%}  (goal on CUDA >= 50%)")


if __name__ == "__main__":
    main()
