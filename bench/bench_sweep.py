"""Sweep benchmarks on the cached dsp features of a synthetic curated library (9 classes, 5 packs).

    python bench/bench_sweep.py                       # both, on 2,025 clips
    python bench/bench_sweep.py overhead              # one: overhead, tpe
    python bench/bench_sweep.py --per-pack 10 tpe     # a smaller library (450 clips)

overhead  the sweep machinery per trial: a grid of 4 trials run by a sweep worker (journal storage,
          each trial a training job with its epochs in its events, the worker's cancel token its
          job's, as in its process) against the same 4 fits called directly (make_model + fit +
          validation macro-F1) on the same training data, read from the same cache once in each;
          both warm, taken in turns, each side's best of --repeat (3). Reported for mlp (20 epochs,
          patience 20) and logreg: wall time (the target: ≤ 10%), the process's CPU time (steadier
          on a busy machine, blind to waits on fsync), and the workspace transactions and journal
          appends the worker made (its threads' included).
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


def bench_overhead(workspace: Workspace, repeat: int) -> None:
    from optuna.storages.journal import JournalFileBackend

    for model, grid, hyperparams in (("mlp", ["lr=3e-3,1e-3,5e-4,2e-4"], {"epochs": 20, "patience": 20}),
                                     ("logreg", ["C=0.1,0.3,1,3"], {})):
        config = sweeps.SweepConfig(name=f"overhead-{model}", grid=parse_grid(grid),
                                    request=TrainRequest(name="bench", model=model, hyperparams=hyperparams,
                                                         **REQUEST).__dict__)
        points = grid_points(config.grid)
        warm = prepare_data(workspace, trial_request(config, points[0]).with_task_defaults(workspace), CancelToken())
        make_model(model, **{**hyperparams, **({"epochs": 1} if "epochs" in hyperparams else {})}).fit(
            *warm.part(Split.TRAIN), n_classes=len(warm.classes))  # imports and caches warm, for both sides
        directs, swepts, direct_cpu, swept_cpu = [], [], [], []
        for _ in range(repeat):  # each side's best of `repeat`, taken in turns (a busy machine slows either)
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
            with counted(workspace.db, "transaction") as transactions, \
                    counted(JournalFileBackend, "append_logs") as appends:
                started, cpu = time.perf_counter(), time.process_time()
                run_worker(workspace, config.name)
                swepts.append(time.perf_counter() - started)
                swept_cpu.append(time.process_time() - cpu)
            study, _ = sweeps.open_sweep(workspace, config.name, None)
            scores = [t.value for t in study.get_trials(deepcopy=False)]
            assert len(scores) == len(points) and all(s is not None for s in scores)
        direct, swept, n = min(directs), min(swepts), len(points)
        print(f"overhead {model}: {n} trials in {swept:.2f} s by a sweep worker vs {direct:.2f} s of direct fits "
              f"(best of {repeat}) → {100 * (swept / direct - 1):+.1f}% ({(swept - direct) / n:.3f} s per trial; "
              f"target ≤ 10%); CPU time {100 * (min(swept_cpu) / min(direct_cpu) - 1):+.1f}% (all threads); "
              f"the worker wrote {transactions[0]} workspace transactions and {appends[0]} journal appends; "
              f"val macro-F1 {max(scores):.3f} (direct {max(direct_scores):.3f})")


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
