"""What a sweep has done: one row per trial (parameters, validation score, epochs, time, state) and
the parameters' importances (Optuna's default evaluator, once two trials completed)."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

from engine.sweeps import study as sweeps


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str  # complete, pruned, failed, cancelled, running, waiting
    params: dict
    val_macro_f1: float | None
    val_accuracy: float | None
    epochs: int | None
    seconds: float | None
    job_id: str | None
    grid_point: str | None
    note: str | None  # why it failed, or which trial it retried

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SweepSummary:
    name: str
    sampler: str
    trials: list[TrialRow]
    best: int | None  # the number of the trial with the best validation macro-F1
    importances: dict[str, float]
    grid_points: int | None  # a grid's size
    promoted: list[dict]

    def count(self, state: str) -> int:
        return sum(1 for t in self.trials if t.state == state)

    def to_dict(self) -> dict:
        return {"name": self.name, "sampler": self.sampler, "trials": [t.to_dict() for t in self.trials],
                "best": self.best, "importances": self.importances, "grid_points": self.grid_points,
                "promoted": self.promoted,
                "counts": {s: self.count(s) for s in ("complete", "pruned", "failed", "cancelled", "running", "waiting")}}


def best_so_far(trials: list[TrialRow]) -> list[tuple[int, float]]:
    """(trial number, the best validation macro-F1 of the complete trials up to it), one per complete trial."""
    curve: list[tuple[int, float]] = []
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state == "complete" and trial.val_macro_f1 is not None:
            curve.append((trial.number, max(trial.val_macro_f1, curve[-1][1] if curve else trial.val_macro_f1)))
    return curve


def _state(trial) -> str:
    outcome = str(trial.user_attrs.get(sweeps.OUTCOME, ""))
    if trial.state.name == "FAIL":
        return "cancelled" if outcome == "cancelled" else "failed"
    return {"COMPLETE": "complete", "PRUNED": "pruned", "RUNNING": "running", "WAITING": "waiting"}[trial.state.name]


def _note(trial) -> str | None:
    notes = []
    if trial.user_attrs.get(sweeps.OUTCOME) not in (None, "cancelled"):
        notes.append(str(trial.user_attrs[sweeps.OUTCOME]))
    if trial.state.name == "PRUNED":
        last = max(trial.intermediate_values, default=None)
        notes.append(f"pruned at epoch {last}" if last is not None else "pruned")
    if "failed_trial" in trial.system_attrs:
        notes.append(f"retry of trial {trial.system_attrs['failed_trial']}")
    return "; ".join(notes) or None


def best_trial(study):
    """The complete trial with the highest validation macro-F1 (the lower number on a tie), or None."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and t.value is not None]
    return max(complete, key=lambda t: (t.value, -t.number), default=None)


def importances(study) -> dict[str, float]:
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "importances will be equal" when every trial scored the same
            return {k: round(float(v), 4) for k, v in optuna.importance.get_param_importances(study).items()}
    except (ValueError, RuntimeError):  # e.g. every complete trial has the same parameters
        return {}


def summarise(workspace, study, config: sweeps.SweepConfig) -> SweepSummary:
    sweeps.reap_dead_trials(study, workspace)  # a trial whose worker died is shown failed, never running
    rows = []
    for trial in study.get_trials(deepcopy=False):
        result = sweeps.trial_result(trial)
        val = result.get("val") or {}
        params = trial.params or trial.system_attrs.get("fixed_params", {})
        rows.append(TrialRow(trial.number, _state(trial), dict(params), val.get("macro_f1"), val.get("accuracy"),
                             result.get("epochs"), result.get("seconds"), sweeps.trial_job_id(trial),
                             trial.user_attrs.get(sweeps.GRID_POINT), _note(trial)))
    best = best_trial(study)
    size = None
    if config.sampler == "grid":
        size = 1
        for values in config.grid.values():
            size *= len(values)
    return SweepSummary(config.name, config.sampler, rows, best.number if best else None, importances(study),
                        size, list(study.user_attrs.get("promoted", [])))
