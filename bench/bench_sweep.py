"""Sweep benchmarks on the cached dsp features of a synthetic curated library (9 classes, 5 packs).

    python bench/bench_sweep.py                       # both, on 2,025 clips
    python bench/bench_sweep.py overhead              # one: overhead, tpe
    python bench/bench_sweep.py --per-pack 10 tpe     # a smaller library (450 clips)

overhead  the sweep machinery per trial: grids of 4 and of 12 trials, each run by a sweep worker
          (journal storage, each trial a training job with its epochs in its events, the worker's
          cancel token its job's, as in its process) and as the same fits called directly (make_model
          + fit + validation macro-F1) on the same training data, read from the same cache once in
          each; both warm, taken in turns, each side's best of --repeat (3). The per-trial figure (the
          target: ≤ 10%) is what the 8 trials of the long sweep beyond the short one cost beyond their
          fits; each sweep's whole overhead is printed too, with its fixed start and end. Reported for
          mlp (20 epochs, patience 20) and logreg: wall time, the process's CPU time (steadier on a
          busy machine, blind to waits on fsync), and the workspace transactions and journal appends
          the worker made (its threads' included).
tpe       60 TPE trials over model=categorical(logreg,mlp,lgbm) with each kind's main knob
          (C, lr, learning_rate) and the median pruner; wall time and trials per minute.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.audio.synth import write_curated_library  # noqa: E402
from engine.concepts import Split  # noqa: E402
from engine.features.service import extract_workspace  # noqa: E402
from engine.features.spec import FeatureSpec  # noqa: E402
from engine.jobs.log import JobCancelToken, JobLog  # noqa: E402
from engine.library.importer import import_folder  # noqa: E402
from engine.models.kinds import make_model  # noqa: E402
from engine.progress import CancelToken  # noqa: E402
from engine.sweeps import study as sweeps  # noqa: E402
from engine.sweeps.launch import prepare_study  # noqa: E402
from engine.sweeps.run import run_sweep_worker, trial_request  # noqa: E402
from engine.sweeps.space import grid_points, parse_grid, parse_space  # noqa: E402
from engine.sweeps.summary import summarise  # noqa: E402
from engine.training.run import TrainRequest, prepare_data, validation_metrics  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

REQUEST = dict(features="dsp", taxonomy="drums")


def library(scratch: Path, per_pack: int) -> Workspace:
    paths = write_curated_library(scratch / "lib", clips_per_class_per_pack=per_pack)
    workspace = Workspace.open(scratch / "ws")
    import_folder(workspace, scratch / "lib", curated=True, taxonomy="drums")
    extract_workspace(workspace, FeatureSpec.parse("dsp"), taxonomy="drums", labelled_only=True)
    print(f"library: {len(paths)} clips, dsp features cached")
    return workspace


def run_worker(workspace: Workspace, name: str) -> None:
    """One sweep worker, in this process, as its job's process runs it (services/worker.py)."""
    params = {"name": name, "storage": None}
    job = JobLog(workspace, "sweep", params)
    run_sweep_worker(workspace, job, params, JobCancelToken(job))


@contextmanager
def counted(owner, name: str):
    """Counts the calls of `owner.name` (an object's method, or a class's for all its objects) in the block."""
    original, calls = getattr(owner, name), [0]

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(owner, name, counting)
    try:
        yield calls
    finally:
        setattr(owner, name, original)


GRIDS = {  # model: (its hyperparameters, the 4 points of the short sweep, the 8 more of the long one)
    "mlp": ({"epochs": 20, "patience": 20}, "lr", "3e-3,1e-3,5e-4,2e-4", "2.5e-3,1.5e-3,1.2e-3,8e-4,7e-4,6e-4,4e-4,3e-4"),
    "logreg": ({}, "C", "0.1,0.3,1,3", "0.05,0.2,0.5,0.7,1.5,2,5,10"),
}


def _run_both(workspace: Workspace, model: str, hyperparams: dict, grid: str, repeat: int) -> dict:
    """One grid by a sweep worker and as direct fits, each side's best of `repeat` taken in turns."""
    config = sweeps.SweepConfig(name=f"overhead-{model}", grid=parse_grid([grid]),
                                request=TrainRequest(name="bench", model=model, hyperparams=hyperparams,
                                                     **REQUEST).__dict__)
    points = grid_points(config.grid)
    directs, swepts, direct_cpu, swept_cpu = [], [], [], []
    for _ in range(repeat):  # a busy machine slows either side: best of each, in turns
        started, cpu = time.perf_counter(), time.process_time()  # direct: read the cached data once, fit each point
        request = trial_request(config, points[0]).with_task_defaults(workspace)
        data = prepare_data(workspace, request, CancelToken())
        train_x, train_y = data.part(Split.TRAIN)
        val_x, val_y = data.part(Split.VAL)
        direct_scores = []
        for point in points:
            request = trial_request(config, point)
            fitted = make_model(model, **{"seed": request.seed, **request.hyperparams})
            fitted.fit(train_x, train_y, X_val=val_x, y_val=val_y, n_classes=len(data.classes))
            direct_scores.append(validation_metrics(fitted, data, request.seed)["macro_f1"])
        directs.append(time.perf_counter() - started)
        direct_cpu.append(time.process_time() - cpu)
        prepare_study(workspace, config, None, reset=True)
        from optuna.storages.journal import JournalFileBackend

        with counted(workspace.db, "transaction") as transactions, \
                counted(JournalFileBackend, "append_logs") as appends:
            started, cpu = time.perf_counter(), time.process_time()
            run_worker(workspace, config.name)
            swepts.append(time.perf_counter() - started)
            swept_cpu.append(time.process_time() - cpu)
        study, _ = sweeps.open_sweep(workspace, config.name, None)
        scores = [t.value for t in study.get_trials(deepcopy=False)]
        assert len(scores) == len(points) and all(s is not None for s in scores)
    return {"n": len(points), "direct": min(directs), "swept": min(swepts), "direct_cpu": min(direct_cpu),
            "swept_cpu": min(swept_cpu), "transactions": transactions[0], "appends": appends[0],
            "val": max(scores), "direct_val": max(direct_scores)}


def bench_overhead(workspace: Workspace, repeat: int) -> None:
    for model, (hyperparams, name, short, more) in GRIDS.items():
        warm = prepare_data(workspace, TrainRequest(name="bench", model=model, **REQUEST).with_task_defaults(workspace),
                            CancelToken())
        make_model(model, **{**hyperparams, **({"epochs": 1} if "epochs" in hyperparams else {})}).fit(
            *warm.part(Split.TRAIN), n_classes=len(warm.classes))  # imports and caches warm, for both sides
        small = _run_both(workspace, model, hyperparams, f"{name}={short}", repeat)
        large = _run_both(workspace, model, hyperparams, f"{name}={short},{more}", repeat)
        extra = large["n"] - small["n"]
        direct_each = (large["direct"] - small["direct"]) / extra
        machinery_each = (large["swept"] - small["swept"]) / extra - direct_each
        fixed = small["swept"] - small["direct"] - small["n"] * machinery_each
        print(f"overhead {model}, per trial: {machinery_each * 1000:+.0f} ms on a {direct_each:.3f} s fit → "
              f"{100 * machinery_each / direct_each:+.1f}% (target ≤ 10%; the {extra} trials a {large['n']}-point sweep "
              f"runs beyond a {small['n']}-point one, against the same {extra} fits called directly)")
        for run in (small, large):
            print(f"  a {run['n']}-point sweep: {run['swept']:.2f} s by a sweep worker vs {run['direct']:.2f} s of direct "
                  f"fits (best of {repeat}) → {100 * (run['swept'] / run['direct'] - 1):+.1f}% wall, CPU time "
                  f"{100 * (run['swept_cpu'] / run['direct_cpu'] - 1):+.1f}% (all threads); {run['transactions']} "
                  f"workspace transactions and {run['appends']} journal appends; val macro-F1 {run['val']:.3f} "
                  f"(direct {run['direct_val']:.3f})")
        print(f"  so the sweep's own start and end cost about {fixed:.2f} s once (its job, the study, its last write)")


def bench_tpe(workspace: Workspace, trials: int = 60) -> None:
    config = sweeps.SweepConfig(
        name="tpe60", sampler="tpe", trials=trials, prune="median",
        space=[d.to_dict() for d in parse_space(["model=categorical(logreg,mlp,lgbm)", "C=loguniform(1e-2,10)",
                                                 "lr=loguniform(1e-4,1e-2)", "learning_rate=loguniform(1e-2,0.3)"])],
        request=TrainRequest(name="bench", **REQUEST).__dict__)
    prepare_study(workspace, config, None, reset=True)
    started = time.perf_counter()
    run_worker(workspace, config.name)
    seconds = time.perf_counter() - started
    summary = summarise(workspace, *sweeps.open_sweep(workspace, config.name, None))
    best = next(t for t in summary.trials if t.number == summary.best)
    kinds = {k: sum(1 for t in summary.trials if t.params.get("model") == k) for k in ("logreg", "mlp", "lgbm")}
    print(f"tpe: {len(summary.trials)} trials ({summary.count('complete')} complete, {summary.count('pruned')} pruned; "
          f"{kinds}) in {seconds:.0f} s on {os.cpu_count()} cores → {60 * len(summary.trials) / seconds:.1f} trials/min; "
          f"best trial {best.number} {best.params} val macro-F1 {best.val_macro_f1:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", nargs="*", default=["overhead", "tpe"])
    parser.add_argument("--per-pack", type=int, default=45, help="clips per class per pack (45 → 2,025 clips)")
    parser.add_argument("--repeat", type=int, default=3, help="overhead: each side's best of this many runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workspace = library(Path(scratch), args.per_pack)
        if "overhead" in args.which:
            bench_overhead(workspace, args.repeat)
        if "tpe" in args.which:
            bench_tpe(workspace)


if __name__ == "__main__":
    main()
