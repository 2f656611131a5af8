"""Promoting a sweep's winner, with evidence.

The winner is chosen on validation only (the complete trial with the best validation macro-F1).
Only then is the test split used: the winner's saved model (checked against the hashes recorded
when its trial saved it) predicts the test examples, and, when its model name has an active
version, that version predicts the same examples. A paired bootstrap of the macro-F1 difference
(`engine.evaluation.metrics.paired_bootstrap_macro_f1`) says whether the winner is better: with
`if_better`, it is registered only when the 95% interval lies above zero. A registered version
records its sweep and trial (meta["sweep"]) and the comparison; gates apply to it as to any version
(activation is the activation service's, which the faces call after this).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.concepts import Split
from engine.errors import InputError
from engine.progress import CancelToken
from engine.sweeps import study as sweeps
from engine.sweeps.run import trial_model_dir, trial_request
from engine.sweeps.summary import best_trial


@dataclass
class Promotion:
    sweep: str
    trial: int
    params: dict
    val_macro_f1: float
    test: dict  # the winner's test evaluation
    against: str | None  # the active version it was compared with
    comparison: dict | None  # paired bootstrap: difference (winner − active), ci, a, b, n
    registered: str | None  # NAME@N, or None
    reason: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _test_rows(data):
    chosen = data.splits == str(Split.TEST)
    keys = [(t.clip_id, t.segment.start_s, t.segment.end_s, t.segment.start_beat, t.segment.end_beat)
            for t, keep in zip(data.targets, chosen) if keep and not t.augment] if data.targets else None
    return data.features[chosen], data.y[chosen], keys


def _active_predictions(workspace, active, request, data, keys) -> np.ndarray:
    """The active version's predicted class indices (in `data.classes`) on the winner's test examples."""
    from dataclasses import replace

    from engine.models.registry import load_classifier
    from engine.training.run import prepare_data

    if sorted(active.label_set) != sorted(data.classes):
        raise InputError(f"cannot compare with {active.ref}: its classes ({', '.join(active.label_set)}) are not "
                         f"the winner's ({', '.join(data.classes)}); promote without --if-better")
    if active.spec == data.spec:
        features = data.features[data.splits == str(Split.TEST)]
    else:
        other = prepare_data(workspace, replace(request, features=str(active.spec), feature_params=[]), CancelToken())
        x, _, other_keys = _test_rows(other)
        if keys is None or other_keys is None or sorted(other_keys) != sorted(keys):
            raise InputError(f"cannot compare with {active.ref}: its features ({active.spec}) give other test "
                             "examples than the winner's")
        position = {key: n for n, key in enumerate(other_keys)}
        features = x[[position[key] for key in keys]]
    predicted = load_classifier(active).predict_proba(features).argmax(axis=1)
    index = {name: data.classes.index(name) for name in active.label_set}
    return np.array([index[active.label_set[p]] for p in predicted], dtype=np.int64)


def promote(workspace, name: str, storage_url: str | None, *, if_better: bool = False, seed: int = 0,
            storage_options: dict | None = None) -> Promotion:
    from engine.evaluation.metrics import evaluate, paired_bootstrap_macro_f1
    from engine.models.kinds import load_model, save_model
    from engine.models.registry import list_versions
    from engine.training.run import calibrate, prepare_data, register_trained

    study, config = sweeps.open_sweep(workspace, name, storage_url, **(storage_options or {}))
    best = best_trial(study)
    if best is None:
        raise InputError(f"sweep {name} has no complete trial yet")
    job_id, result = sweeps.trial_job_id(best), sweeps.trial_result(best)
    folder = trial_model_dir(workspace, job_id)
    if not folder.is_dir():
        raise InputError(f"trial {best.number}'s model is not in this workspace ({folder}); it ran on another "
                         "box: promote there")
    model = load_model(folder, hashes=result.get("files"), kind=trial_request(config, best.params).model)
    request = trial_request(config, best.params).with_task_defaults(workspace)
    data = prepare_data(workspace, request, CancelToken())
    test_x, test_y, keys = _test_rows(data)
    if len(test_y) == 0:
        raise InputError("the data has no test split to promote on (raise --test)")
    calibration = calibrate(model, data)  # on validation, as `train` does: the test split stays unseen until now
    probabilities = model.predict_proba(test_x)
    test = evaluate(test_y, probabilities, data.classes, seed=seed).to_dict()
    active = next((v for v in list_versions(workspace, request.name) if v.is_active), None)
    comparison = None
    if active is not None and if_better:
        active_pred = _active_predictions(workspace, active, request, data, keys)
        comparison = {**paired_bootstrap_macro_f1(test_y, active_pred, probabilities.argmax(axis=1),
                                                  len(data.classes), seed=seed), "n": int(len(test_y))}
    if not if_better:
        register, reason = True, "registered without a comparison (no --if-better)"
    elif active is None:
        register, reason = True, f"{request.name} has no active version to beat: registered"
    else:
        lo, hi = comparison["ci"]
        register = lo > 0
        said = (f"macro-F1 {comparison['b']:.3f} vs {comparison['a']:.3f} of {active.ref} on the same "
                f"{comparison['n']} test examples: difference {comparison['difference']:+.3f}, 95% CI "
                f"[{lo:+.3f}, {hi:+.3f}]")
        reason = f"{said}; " + ("above zero: registered" if register else "not above zero: not registered")
    registered = None
    if register:
        artifact = workspace.runs_dir / job_id / f"promoted-{len(study.user_attrs.get('promoted', []))}"
        if artifact.exists():
            shutil.rmtree(artifact)
        artifact.mkdir(parents=True)
        save_model(model, artifact)  # the trial's model with its temperature
        metrics = {"val": {**result.get("val", {})}, "test": test, "sizes": data.sizes(),
                   "calibration": calibration}
        version = register_trained(workspace, request, data, model, metrics, Path(artifact), job_id,
                                   meta={"sweep": {"name": name, "trial": best.number, "params": best.params,
                                                   "storage": storage_url or "journal", "comparison": comparison}})
        registered = version.ref
    record = {"trial": best.number, "registered": registered, "reason": reason}
    study.set_user_attr("promoted", [*study.user_attrs.get("promoted", []), record])
    return Promotion(name, best.number, dict(best.params), float(best.value), test,
                     active.ref if active is not None else None, comparison, registered, reason)
