"""How fast the labeling loop makes a kit never heard come right: suggestions against random picks.

    python bench/bench_labeling_loop.py [--work DIR] [--kind logreg] [--features hybrid:aisfx]
        [--params KEY=VALUE ...] [--budgets 0,5,10,20] [--step 5] [--min-clips 20] [--seeds 3]
        [--resamples 1000] [--onto-real] [--json OUT]

A user imports a kit their model never heard. The model pre-labels it (`suggest`); they confirm or
correct the suggestions, the most informative first, and train again. This bench plays that loop on
Debian's Hydrogen drum kits (`apt-get install hydrogen-drumkits`; the kits, classes and mapping of
`bench_generalisation.py` (d)), one held-out kit at a time:

1. Train on every other kit (`--kind` on `--features`; logreg with C 0.01 on hybrid:aisfx by
   default, the best fixed combination of (d)) and predict the held-out kit.
2. Take `--step` of its clips the person has not labelled yet, by one of two strategies:
   - suggest: the order of `workbench suggest` at its defaults (`engine.triage.suggestions`):
     margin uncertainty, skipping a near-duplicate of a clip already taken in that round and
     putting a clip alike to one (cosine 0.9) after the unlike ones;
   - random: a random order (seeded; the figure is the mean over `--seeds` orders).
   The person gives each its true label (accept when the model's top label was right, else correct).
3. Train again on the other kits plus every clip of the kit labelled so far; repeat up to the
   largest budget (clips labelled per kit; a kit smaller than a budget is labelled whole).

At each budget it reports, pooled over the held-out kits (every kit's clips scored together, with
the engine's `evaluate`, as in bench_generalisation's "pooled"):
- the kit's labels: macro-F1 of the person's labels where given and the model's elsewhere, i.e. how
  right the kit's labels are after that much effort, with a 95% bootstrap interval;
- the model on the rest: macro-F1 of the model on the clips still unlabelled (what its suggestions
  for the rest of the kit are worth);
- acceptance: the share of the labelled clips whose suggestion was right.

Kits with fewer than `--min-clips` mapped clips are left out of the table (they are labelled whole
after one or two rounds and say nothing about the order), but stay in every training set.

With `--onto-real` the held-out kits are instead the two Debian packages of bench_generalisation.py
(b) (`apt-get install lmms-common sonic-pi-samples`), with every Hydrogen kit as the training set:
its (e), another source.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_generalisation as generalisation  # noqa: E402

from engine.evaluation.metrics import bootstrap_resamples, percentile_interval  # noqa: E402
from engine.features.spec import parse_param_value  # noqa: E402
from engine.models.kinds import make_model  # noqa: E402
from engine.triage.suggestions import DEFAULT_ALIKE, pick_diverse, uncertainty  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

STRATEGIES = ("suggest", "random")


@dataclass
class KitRound:
    """One held-out kit after `budget` clips were labelled."""

    budget: int
    truth: list[str]  # every clip of the kit
    after: list[str]  # the person's label where given, else the model's
    rest_truth: list[str]  # the clips still unlabelled
    rest_predicted: list[str]
    accepted: int  # of the labelled clips, how many suggestions were right
    labelled: int


@dataclass
class LoopResult:
    strategy: str
    kit: str
    seed: int
    rounds: list[KitRound] = field(default_factory=list)


def fit_predict(kind: str, hyperparams: dict, x_train: np.ndarray, y_train: list[str], x_test: np.ndarray,
                seed: int) -> tuple[list[str], np.ndarray]:
    """The model's top label per test row and its class probabilities (columns: the training classes, sorted)."""
    classes = sorted(set(y_train))
    index = {name: n for n, name in enumerate(classes)}
    model = make_model(kind, **{**hyperparams, "seed": seed})
    model.fit(x_train, np.array([index[label] for label in y_train]), n_classes=len(classes))
    probabilities = model.predict_proba(x_test)
    return [classes[k] for k in probabilities.argmax(axis=1)], probabilities


def next_picks(strategy: str, probabilities: np.ndarray, features: np.ndarray, step: int,
               rng: np.random.Generator) -> list[int]:
    """Which of the unlabelled rows (indices into them) the person labels next."""
    if strategy == "suggest":
        return pick_diverse(uncertainty(probabilities), features, step, alike=DEFAULT_ALIKE)
    return [int(i) for i in rng.permutation(len(probabilities))[:step]]


def play_kit(features: np.ndarray, labels: np.ndarray, train: np.ndarray, kit: np.ndarray, strategy: str,
             budgets: list[int], step: int, kind: str, hyperparams: dict, seed: int) -> list[KitRound]:
    """The loop on one held-out kit (rows `kit`), training on rows `train` plus what is labelled so far."""
    rng = np.random.default_rng(seed)
    labelled: list[int] = []  # rows of the kit, in the order the person labelled them
    accepted = 0
    rounds = []

    def train_and_predict() -> tuple[np.ndarray, list[str], np.ndarray]:
        rest = np.setdiff1d(kit, labelled)
        rows = np.concatenate([train, np.array(labelled, dtype=np.int64)])
        return (rest, *fit_predict(kind, hyperparams, features[rows], list(labels[rows]), features[rest], seed))

    rest, predicted, probabilities = train_and_predict()
    for budget in budgets:
        while len(labelled) < min(budget, len(kit)):
            picks = next_picks(strategy, probabilities, features[rest], min(step, budget - len(labelled)), rng)
            accepted += sum(predicted[i] == labels[rest[i]] for i in picks)
            labelled += [int(rest[i]) for i in picks]
            rest, predicted, probabilities = train_and_predict()
        model_says = dict(zip(rest.tolist(), predicted))
        after = [model_says.get(int(row), labels[row]) for row in kit]
        rounds.append(KitRound(budget, list(labels[kit]), after, list(labels[rest]), predicted, accepted,
                               len(labelled)))
    return rounds


def pooled(rounds: list[KitRound], truth_of, predicted_of, resamples: int) -> tuple[float, np.ndarray]:
    """bench_generalisation's pooled macro-F1 of the kits' rows taken together, and its bootstrap resamples."""
    truth = [c for k in rounds for c in truth_of(k)]
    predicted = [c for k in rounds for c in predicted_of(k)]
    if not truth:
        return float("nan"), np.full(max(resamples, 1), np.nan)
    classes = sorted(set(truth) | set(predicted))
    _, resampled = bootstrap_resamples(np.array([classes.index(c) for c in truth], dtype=np.int64),
                                       np.array([classes.index(c) for c in predicted], dtype=np.int64),
                                       len(classes), resamples=resamples)
    return generalisation.pooled_macro_f1([truth], [[predicted]]), resampled


def summarise(results: list[LoopResult], budgets: list[int], resamples: int) -> list[dict]:
    """One row per strategy and budget; each figure is the mean over seeds, the interval from the
    seeds' bootstrap resamples averaged (paired: the same rows resampled alike)."""
    rows = []
    for strategy in STRATEGIES:
        mine = [r for r in results if r.strategy == strategy]
        seeds = sorted({r.seed for r in mine})
        for position, budget in enumerate(budgets):
            kit_labels, kit_resampled, rest_scores, acceptance, labelled = [], [], [], [], []
            for seed in seeds:
                rounds = [r.rounds[position] for r in mine if r.seed == seed]
                score, resampled = pooled(rounds, lambda k: k.truth, lambda k: k.after, resamples)
                kit_labels.append(score)
                kit_resampled.append(resampled)
                rest_scores.append(pooled(rounds, lambda k: k.rest_truth, lambda k: k.rest_predicted, 1)[0])
                decided = sum(k.labelled for k in rounds)
                acceptance.append(sum(k.accepted for k in rounds) / decided if decided else float("nan"))
                labelled.append(decided / len(rounds))
            low, high = percentile_interval(np.mean(kit_resampled, axis=0))
            rows.append({"strategy": strategy, "budget": budget, "labelled_per_kit": float(np.mean(labelled)),
                         "kit_labels_macro_f1": float(np.mean(kit_labels)), "kit_labels_low": low,
                         "kit_labels_high": high, "model_on_rest_macro_f1": float(np.mean(rest_scores)),
                         "acceptance": float(np.nanmean(acceptance)) if any(labelled) else float("nan"),
                         "seeds": len(seeds)})
    return rows


def print_rows(rows: list[dict], kits: list[str]) -> None:
    print(f"\nThe labeling loop on {len(kits)} kits never heard ({', '.join(kits)}), pooled over kits")
    print(f"{'strategy':<9} {'budget':>6} {'labelled/kit':>12} {'kit labels macro-F1 [95% CI]':>30} "
          f"{'model on the rest':>17} {'acceptance':>10}")
    for row in rows:
        interval = f"[{row['kit_labels_low']:.3f}, {row['kit_labels_high']:.3f}]"
        print(f"{row['strategy']:<9} {row['budget']:>6} {row['labelled_per_kit']:>12.1f} "
              f"{row['kit_labels_macro_f1']:>12.3f} {interval:>17} {row['model_on_rest_macro_f1']:>17.3f} "
              f"{row['acceptance']:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/workbench-bench-generalisation"),
                        help="the folder bench_generalisation.py uses (its feature cache is shared)")
    parser.add_argument("--kind", default="logreg")
    parser.add_argument("--features", default="hybrid:aisfx")
    parser.add_argument("--params", action="append", default=None, metavar="KEY=VALUE",
                        help="a hyperparameter of --kind (default for logreg: C=0.01)")
    parser.add_argument("--budgets", default="0,5,10,20", help="clips labelled per kit at which to score")
    parser.add_argument("--step", type=int, default=5, help="clips labelled between two trainings")
    parser.add_argument("--min-clips", type=int, default=20, help="kits smaller than this are not held out")
    parser.add_argument("--onto-real", action="store_true",
                        help="train on every Hydrogen kit and play the loop on each real package of "
                             "bench_generalisation.py (b) instead (its (e))")
    parser.add_argument("--seeds", type=int, default=3, help="random orders (and model seeds) to average")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    params = args.params if args.params is not None else (["C=0.01"] if args.kind == "logreg" else [])
    hyperparams = {key: parse_param_value(value) for key, value in (p.split("=", 1) for p in params)}
    budgets = sorted({int(b) for b in args.budgets.split(",")})

    work = args.work.resolve()
    workspace = Workspace.open(work / "ws")
    if generalisation.build_hydrogen_root(work / "hydrogen") is None:
        sys.exit(1)
    if args.features.startswith(("onnx:", "hybrid:")) and (problem := generalisation.ensure_aisfx(workspace)):
        sys.exit(f"the {args.features} embedding could not be installed: {problem}")
    corpus = generalisation.load_corpus("hydrogen", work / "hydrogen", workspace)
    generalisation.featurise(corpus, args.features, workspace, args.workers)
    if args.onto_real:
        if generalisation.build_real_root(work / "real") is None:
            sys.exit(1)
        real = generalisation.load_corpus("real", work / "real", workspace)
        generalisation.featurise(real, args.features, workspace, args.workers)
        corpus = generalisation.join("hydrogen+real", corpus, real, [args.features])
    features, labels, groups = corpus.features[args.features], corpus.labels, corpus.groups
    real_packages = list(generalisation.REAL_PACKAGES)
    kits = real_packages if args.onto_real else [kit for kit in sorted(set(groups))
                                                  if np.sum(groups == kit) >= args.min_clips]

    results = []
    for kit in kits:
        held_out = np.flatnonzero(groups == kit)
        train = np.flatnonzero(~np.isin(groups, real_packages) if args.onto_real else groups != kit)
        for strategy in STRATEGIES:
            for seed in range(args.seeds if strategy == "random" or args.kind != "logreg" else 1):
                results.append(LoopResult(strategy, kit, seed, play_kit(features, labels, train, held_out, strategy,
                                                                        budgets, args.step, args.kind, hyperparams,
                                                                        seed)))
        generalisation.log(f"  {kit}: {len(held_out)} clips done ({time.perf_counter() - started:.0f} s)")
    rows = summarise(results, budgets, args.resamples)
    print(f"{args.kind} on {args.features} {hyperparams or ''}, a training every {args.step} labels")
    print_rows(rows, kits)
    print(f"\n{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"kind": args.kind, "features": args.features, "hyperparams": hyperparams,
                                         "kits": kits, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
