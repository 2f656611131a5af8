"""Bootstrap CI benchmark: the vectorised `engine.evaluation.metrics.bootstrap_ci` against a naive loop.

    python bench/bench_evaluation.py [--n 10000] [--classes 9] [--resamples 1000] [--naive 100]

Times bootstrap_ci over N predictions and R resamples (best of 3), and a naive baseline that loops
over resamples in Python calling sklearn's accuracy_score and f1_score (macro, present-or-predicted
labels) per resample; the naive loop runs on fewer resamples and is scaled linearly to R. Prints
seconds and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.evaluation.metrics import bootstrap_ci  # noqa: E402


def synthetic(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and ~80%-correct predictions with unbalanced classes."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 2.0, size=k)
    y = rng.choice(k, size=n, p=weights / weights.sum())
    pred = np.where(rng.random(n) < 0.8, y, rng.integers(0, k, size=n))
    return y, pred


def naive_ci(y: np.ndarray, pred: np.ndarray, resamples: int, seed: int = 0) -> dict[str, tuple[float, float]]:
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(seed)
    accs, f1s = [], []
    for _ in range(resamples):
        idx = rng.integers(0, len(y), size=len(y))
        yt, yp = y[idx], pred[idx]
        labels = np.union1d(yt, yp)
        accs.append(accuracy_score(yt, yp))
        f1s.append(f1_score(yt, yp, labels=labels, average="macro", zero_division=0))
    return {"accuracy": tuple(np.percentile(accs, [2.5, 97.5])), "macro_f1": tuple(np.percentile(f1s, [2.5, 97.5]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=9)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=100, help="resamples actually run by the naive loop")
    args = parser.parse_args()

    y, pred = synthetic(args.n, args.classes)
    bootstrap_ci(y, pred, args.classes, resamples=10)  # warm up
    times = []
    for _ in range(3):
        start = time.perf_counter()
        ci = bootstrap_ci(y, pred, args.classes, resamples=args.resamples, seed=0)
        times.append(time.perf_counter() - start)
    fast = min(times)

    naive_ci(y, pred, 2)  # warm up (sklearn import)
    start = time.perf_counter()
    naive = naive_ci(y, pred, args.naive)
    naive_measured = time.perf_counter() - start
    naive_scaled = naive_measured * args.resamples / args.naive

    print(f"bootstrap CI, {args.n:,} predictions x {args.resamples:,} resamples, {args.classes} classes")
    print(f"  vectorised bootstrap_ci   {fast:8.3f} s  (best of 3: {', '.join(f'{t:.3f}' for t in times)})")
    print(f"  naive loop + sklearn      {naive_scaled:8.3f} s  (measured {naive_measured:.3f} s on "
          f"{args.naive} resamples, scaled x{args.resamples / args.naive:g})")
    print(f"  speed-up                  {naive_scaled / fast:8.1f} x")
    print(f"  accuracy CI  {ci['accuracy'][0]:.4f}-{ci['accuracy'][1]:.4f}  "
          f"(naive, {args.naive} resamples: {naive['accuracy'][0]:.4f}-{naive['accuracy'][1]:.4f})")
    print(f"  macro-F1 CI  {ci['macro_f1'][0]:.4f}-{ci['macro_f1'][1]:.4f}  "
          f"(naive, {args.naive} resamples: {naive['macro_f1'][0]:.4f}-{naive['macro_f1'][1]:.4f})")


if __name__ == "__main__":
    main()
