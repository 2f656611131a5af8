"""The GPU box, in one run: training on the card and on all cores, extraction on the card.

    python bench/bench_gpu.py                    # all parts; CUDA when there is one, else the CPU (it says so)
    python bench/bench_gpu.py train extract      # some: train, cores, extract
    python bench/bench_gpu.py --rows 4000        # fewer training patches

train    The engine's CNN at its default settings (`make_model("cnn")`: device auto, batch size
         auto, augmentation, class balance, early stopping on a validation set) fitted on (64, 96)
         mel-shaped patches for a fixed number of epochs, against a tight loop of the same network
         (CnnNet) on the same patches held on the device: random batches, AdamW, bf16 autocast,
         channels-last weights and cuDNN's autotuner on CUDA, no augmentation, validation or
         per-epoch work, one sync at the end. The tight loop
         runs at the engine's batch size and at 1,024. Both in training samples per second; the
         ratio engine / tight is the engine loop's efficiency (goal on CUDA: >= 50% of the tight
         loop, about 100k samples/s on an H200). The engine with its weights in the plain layout
         (not channels-last) is printed beside it, with each run's validation accuracy.
cores    The engine's CNN on the CPU with every core this process may use (the `threads`
         setting unset) against the same fit with WORKBENCH_THREADS=2 (the old cap).
extract  `onnx:aisfx` features of synthetic one-shots, extracted with --device cuda (the workers
         decode, this process runs the aiSFX port on the card in batches) against --device cpu
         (onnxruntime in one worker process per core), in seconds of audio per second; `mel` (CPU
         workers either way) beside it for scale.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from unittest.mock import patch
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_models import mel_like  # noqa: E402  (the same mel-shaped patches as the training bench)
from engine.device import resolve_device  # noqa: E402
from engine.models import torch_nets  # noqa: E402
from engine.models.kinds import make_model  # noqa: E402
from engine.models.torch_nets import CnnNet  # noqa: E402


def engine_rate(X, y, X_val, y_val, epochs: int, **hyperparams) -> tuple[float, int, float]:
    """Training samples per second of the engine's cnn (its defaults unless overridden), the batch
    size it used and its validation accuracy."""
    make_model("cnn", epochs=1, **hyperparams).fit(X[:256], y[:256], n_classes=9)  # warm-up: kernels, allocator
    model = make_model("cnn", epochs=epochs, patience=epochs, **hyperparams)
    started = time.perf_counter()
    model.fit(X, y, X_val=X_val, y_val=y_val, n_classes=9)
    rate = len(X) * epochs / (time.perf_counter() - started)
    return rate, model.get_params()["batch_size"], float((model.predict(X_val) == y_val).mean())


def tight_rate(X, y, batch_size: int, steps: int, device: torch.device) -> float:
    """Training samples per second of the bare loop: data resident, random batches, no syncs."""
    torch.manual_seed(0)
    net = CnnNet(9, 0.3).to(device).train()
    if device.type == "cuda":  # the fastest this network goes: NHWC convolutions, cuDNN's autotuner
        net.to(memory_format=torch.channels_last)
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = device.type == "cuda"
    try:
        return _tight_loop(net, X, y, batch_size, steps, device)
    finally:  # not left on for the other parts: it would retune every new batch shape there
        torch.backends.cudnn.benchmark = benchmark


def _tight_loop(net, X, y, batch_size: int, steps: int, device: torch.device) -> float:
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


def bench_train(rows: int | None, epochs: int | None) -> None:
    device = resolve_device("auto")
    cuda = device.type == "cuda"
    rows = rows or (20_000 if cuda else 1_000)
    epochs = epochs or (10 if cuda else 1)
    X, y = mel_like(rows, seed=0)
    X_val, y_val = mel_like(max(rows // 6, 64), seed=1)
    engine, batch_size, accuracy = engine_rate(X, y, X_val, y_val, epochs)
    with patch.object(torch_nets, "_tuned_for_cuda", lambda net, cuda: contextlib.nullcontext()):
        plain, _, plain_accuracy = engine_rate(X, y, X_val, y_val, epochs)
    steps = max(rows * epochs // batch_size // 2, 10)
    tight = tight_rate(X, y, batch_size, steps=steps, device=device)
    tight_1024 = tight_rate(X, y, 1024, steps=max(rows * epochs // 1024 // 2, 10), device=device)
    print(f"train: {rows:,} patches (64x96), {epochs} epoch(s); the engine chose batch {batch_size}")
    print(f"  engine cnn at defaults      {engine:>10,.0f} samples/s  (val accuracy {accuracy:.3f}; validation each epoch included)")
    print(f"  engine cnn, plain layout    {plain:>10,.0f} samples/s  (val accuracy {plain_accuracy:.3f}; "
          f"weights not channels-last)")
    print(f"  tight loop, batch {batch_size:<5}      {tight:>10,.0f} samples/s")
    print(f"  tight loop, batch 1024      {tight_1024:>10,.0f} samples/s")
    print(f"  engine / tight (same batch) {engine / tight:>10.0%}   engine / tight at 1024 {engine / tight_1024:.0%}"
          f"   (goal on CUDA >= 50%)")


def bench_cores(rows: int) -> None:
    X, y = mel_like(rows, seed=0)
    rates = {}
    for threads in (None, 2):
        if threads is None:
            os.environ.pop("WORKBENCH_THREADS", None)
        else:
            os.environ["WORKBENCH_THREADS"] = str(threads)
        rates[threads], _, _ = engine_rate(X, y, X[:64], y[:64], 1, device="cpu")
        rates[threads, "threads"] = torch.get_num_threads()
    os.environ.pop("WORKBENCH_THREADS", None)
    print(f"cores: engine cnn on the CPU, {rows:,} patches, 1 epoch")
    print(f"  all cores ({rates[None, 'threads']} threads)  {rates[None]:>10,.0f} samples/s")
    print(f"  WORKBENCH_THREADS=2 ({rates[2, 'threads']})   {rates[2]:>10,.0f} samples/s   ratio {rates[None] / rates[2]:.1f}x")


def bench_extract(per_class_per_pack: int) -> None:
    from engine.audio.synth import DRUM_CLASSES, write_curated_library
    from engine.embeddings import aisfx
    from engine.features.service import extract_workspace
    from engine.features.spec import FeatureSpec
    from engine.jobs.parallel import default_workers
    from engine.library.importer import import_folder
    from engine.workspace import Workspace

    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as scratch:
        with ProcessPoolExecutor(min(len(DRUM_CLASSES), default_workers())) as pool:  # one class each
            paths = [path for paths in pool.map(write_curated_library, repeat(Path(scratch) / "lib"),
                                                 repeat(per_class_per_pack), [(name,) for name in DRUM_CLASSES])
                     for path in paths]
        workspace = Workspace.open(Path(scratch) / "ws")
        import_folder(workspace, Path(scratch) / "lib", curated=True)
        aisfx.ensure_installed(workspace, "onnx:aisfx")
        import soundfile

        seconds = sum(soundfile.info(path).duration for path in paths)
        print(f"extract: {len(paths)} one-shots, {seconds:.0f} s of audio, {default_workers()} workers "
              f"(on cuda they decode; this process runs the card)")
        for features in ("mel", "onnx:aisfx"):
            rates = {}
            for device in (("cuda", "cpu") if cuda and features != "mel" else ("cpu",)):
                workspace.cache.clear()
                report = extract_workspace(workspace, FeatureSpec.parse(features), device=device)
                assert report.extracted == len(paths), report
                rates[device] = seconds / report.seconds
            line = f"  {features:<11} cpu {rates['cpu']:>9,.0f} s/s"
            if "cuda" in rates:
                line += f"   cuda {rates['cuda']:>9,.0f} s/s   ratio {rates['cuda'] / rates['cpu']:.1f}x"
            print(line)
        if not cuda:
            print("  no CUDA: the card's figure was not measured")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parts", nargs="*", choices=["train", "cores", "extract", []], default=[])
    parser.add_argument("--rows", type=int, default=None, help="training patches (default 20,000 on CUDA, 1,000 on CPU)")
    parser.add_argument("--epochs", type=int, default=None, help="engine epochs (default 10 on CUDA, 1 on CPU)")
    parser.add_argument("--core-rows", type=int, default=2_000, help="patches for the CPU-cores part")
    parser.add_argument("--clips", type=int, default=None,
                        help="one-shots per class per pack for extract (default 120 on CUDA = 5,400 clips, 4 on CPU)")
    args = parser.parse_args()
    parts = args.parts or ["train", "cores", "extract"]
    if torch.cuda.is_available():
        print(f"CUDA: {torch.cuda.get_device_name()}; torch {torch.__version__}; {os.cpu_count()} CPUs")
    else:
        print(f"no CUDA: running on the CPU ({torch.get_num_threads()} threads); the figures say nothing of a GPU")
    for part in parts:
        started = time.perf_counter()
        if part == "train":
            bench_train(args.rows, args.epochs)
        elif part == "cores":
            bench_cores(args.core_rows)
        else:
            bench_extract(args.clips or (120 if torch.cuda.is_available() else 4))
        print(f"  ({part}: {time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
