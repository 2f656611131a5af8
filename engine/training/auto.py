"""`--model auto`: choose the kind, features and main hyperparameters by grouped cross-validation
over the training and validation rows (packs, or the inferred groups, held out whole; the test
split is never seen), then train the winner the ordinary way.

The search is bounded: every entry of SEARCH on every feature set its input fits (dsp and, when
the embedding is installed, hybrid:aisfx for vector kinds; mel for patch kinds), at most
AUTO_FOLDS folds each, nothing else. Adding a kind to the search is one line in SEARCH.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.errors import Cancelled, InputError, WorkbenchError
from engine.progress import CancelToken
from engine.training.crossval import cross_validate, cv_groups
from engine.training.data import TrainingData

AUTO = "auto"
AUTO_FOLDS = 5
SCORE = "macro_f1"  # what the winner is chosen by: the mean over folds
PREFERRED_EMBEDDING = "aisfx"
# kind -> the hyperparameter sets tried (each on top of the kind's defaults); simplest kinds first
# (and the most regularised setting of a kind first), so a tie goes to the simpler model. logreg's
# C 0.01: on packs never heard it beat C 1 on dsp and on hybrid:aisfx in bench/bench_generalisation.py
# (README, under `--model auto`).
SEARCH: dict[str, tuple[dict, ...]] = {
    "logreg": ({"C": 0.01}, {"C": 0.1}, {"C": 1.0}),
    "lgbm": ({"num_leaves": 15},),
    "mlp": ({"hidden": 64, "dropout": 0.5}, {"hidden": 256}),
    "cnn": ({"epochs": 15},),  # the costliest candidate by far (mel extraction, convolutions): fewer epochs
}


@dataclass
class Candidate:
    kind: str
    features: str
    hyperparams: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "features": self.features, "hyperparams": dict(self.hyperparams)}


def feature_sets(workspace, input_rank: int) -> list[str]:
    """The feature sets a kind with this input rank is tried on."""
    if input_rank == 2:
        return ["mel"]
    installed = (workspace.embeddings_dir / f"{PREFERRED_EMBEDDING}.onnx").is_file()
    return ["dsp", *([f"hybrid:{PREFERRED_EMBEDDING}"] if installed else [])]


def ensure_embedding(workspace) -> str | None:
    """Convert the bundled aiSFX embedding into a workspace that lacks it (`embeddings.aisfx.ensure_installed`),
    so that the default search tries hybrid:aisfx on a fresh install too: across packs it beat dsp
    for every kind in bench/bench_generalisation.py (README). None, or why it could not be
    converted (the search then goes on with dsp)."""
    from engine.embeddings.aisfx import ensure_installed

    try:
        ensure_installed(workspace, f"hybrid:{PREFERRED_EMBEDDING}")
    except WorkbenchError as error:
        return (f"the {PREFERRED_EMBEDDING} embedding could not be installed, the search left "
                f"hybrid:{PREFERRED_EMBEDDING} out: {error}")
    return None


def features_rank(features: str) -> int:
    """The input rank a feature set gives: 2 for mel patches, 1 for vectors."""
    from engine.features.spec import FeatureSpec

    return 2 if FeatureSpec.parse(features).kind == "mel" else 1


def candidates(workspace, features: str | None = None, given: dict | None = None, *,
               rank: int | None = None) -> list[Candidate]:
    """Every candidate of the search; with `features`, only that feature set (and the kinds its
    rank fits: `rank`, else what the set gives). `given` hyperparameters (from the command line)
    override each kind's that takes them."""
    from engine.models.kinds import MODEL_KINDS

    found = []
    for kind, grid in SEARCH.items():
        kind_class = MODEL_KINDS[kind]
        sets = [features] if features else feature_sets(workspace, kind_class.input_rank)
        for feature_set in sets:
            if (rank if rank is not None and features else features_rank(feature_set)) != kind_class.input_rank:
                continue
            for params in grid:
                taken = {k: v for k, v in (given or {}).items() if k in kind_class.defaults}
                found.append(Candidate(kind, feature_set, {**params, **taken}))
    return found


def search(candidate_list: list[Candidate], data_for: Callable[[str], TrainingData], *, seed: int = 0,
           cancel: CancelToken | None = None, on_result: Callable[[dict, int, int], None] | None = None
           ) -> tuple[Candidate, list[dict]]:
    """Cross-validate every candidate; the winner (best mean macro-F1) and the table, one row per
    candidate in search order: candidate, folds, each metric's mean and interval, seconds, or its error."""
    table: list[dict] = []
    best: tuple[float, int] | None = None
    for index, candidate in enumerate(candidate_list):
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled during the model search")
        started = time.monotonic()
        row = candidate.to_dict()
        try:
            data = data_for(candidate.features)
            folds = min(AUTO_FOLDS, cv_groups(data))
            row.update(cross_validate(data, candidate.kind, candidate.hyperparams, folds, seed=seed, cancel=cancel))
            score = row["metrics"][SCORE]["mean"]
            if best is None or score > best[0]:
                best = (score, index)
        except Cancelled:
            raise
        except WorkbenchError as error:
            row.update({"error": str(error), "seconds": round(time.monotonic() - started, 3)})
        table.append(row)
        if on_result is not None:
            on_result(row, index + 1, len(candidate_list))
    if best is None:
        raise InputError("no candidate of the model search could be cross-validated: "
                         + "; ".join(f"{r['kind']} on {r['features']}: {r['error']}" for r in table))
    for index, row in enumerate(table):
        row["chosen"] = index == best[1]
    return candidate_list[best[1]], table
