"""What `train --model auto` costs and what it picks, on 300 clips (6 drum classes x 5 synthetic
packs x 10 clips), against one training of a fixed kind measured in the same run.

    python bench/bench_automl.py [--work DIR] [--clips 10] [--packs 5]

Everything runs in this process, through `run_training` (the job's own code): first `--model mlp`
on dsp (the old default without the embedding; its features are then cached), then `--model auto`
(the bounded search: every SEARCH entry on its feature sets, at most AUTO_FOLDS grouped folds each,
then the winner's training). Printed: each candidate's cross-validated macro-F1 and seconds (its
own feature extraction included: the mel patches of the CNN are extracted there), the wall time of
each training, their ratio, and the test score of each (the split holds whole packs out).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench_generalisation.py: a shared CPU
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.audio.synth import DEMO_PACKS, write_curated_library  # noqa: E402
from engine.jobs.log import JobLog  # noqa: E402
from engine.models.registry import resolve  # noqa: E402
from engine.progress import CancelToken  # noqa: E402
from engine.training.run import TrainRequest, run_training  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

CLASSES = ("kick", "snare", "hihat_closed", "hihat_open", "tom", "clap")


def train(workspace: Workspace, name: str, **fields) -> tuple[float, object]:
    params = TrainRequest(name=name, **fields).__dict__
    started = time.perf_counter()
    run_training(workspace, JobLog(workspace, "train", params, state="pending"), params, CancelToken())
    return time.perf_counter() - started, resolve(workspace, f"{name}@1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/workbench-bench-automl"))
    parser.add_argument("--clips", type=int, default=10, help="clips per class per pack")
    parser.add_argument("--packs", type=int, default=5)
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    library = args.work / "curated"
    paths = write_curated_library(library, args.clips, CLASSES, DEMO_PACKS[:args.packs])
    workspace = Workspace.open(args.work / "ws")
    print(f"{len(paths)} clips, {len(CLASSES)} classes, {args.packs} packs, {os.cpu_count()} CPUs")

    fixed_s, fixed = train(workspace, "fixed", model="mlp", features="dsp", dataset=str(library))
    auto_s, chosen = train(workspace, "auto", dataset=str(library))
    search = chosen.meta["auto"]
    print(f"\n{'candidate':<44} {'folds':>5} {'macro-F1 (95% interval)':>26} {'s':>7}")
    for row in search["table"]:
        label = f"{'*' if row['chosen'] else ' '} {row['kind']} {row['features']} {row['hyperparams']}"
        m = row.get("metrics", {}).get("macro_f1")
        score = f"{m['mean']:.3f} ({m['low']:.3f}-{m['high']:.3f})" if m else row.get("error", "")
        print(f"{label:<44} {row.get('folds', '-'):>5} {score:>26} {row['seconds']:>7.1f}")
    print(f"\nmlp on dsp (features extracted, one training): {fixed_s:7.1f} s, "
          f"test macro-F1 {fixed.metrics['test']['macro_f1']:.3f}")
    print(f"auto (search + winner {chosen.kind} on {chosen.spec}):  {auto_s:7.1f} s, "
          f"test macro-F1 {chosen.metrics['test']['macro_f1']:.3f}")
    print(f"auto / fixed time: {auto_s / fixed_s:.1f}x")


if __name__ == "__main__":
    main()
