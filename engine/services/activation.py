"""Activating a model version: the one place of the rule "a version whose last gate report failed
is only activated when forced, with a reason", above the registry (a plain store of versions), the
gate reports and inference. The CLI's `models activate/rollback`, the TUI's Models screen and the
worker's activation jobs all come here.
"""

from __future__ import annotations

import numpy as np

from engine.concepts import JobState
from engine.errors import Cancelled, GatesFailed, InputError
from engine.features.extract import feature_row
from engine.inference import infer_library
from engine.jobs.kinds import job_kind
from engine.jobs.log import JobReporter
from engine.models import registry
from engine.models.artifacts import ModelFilesDamaged
from engine.models.registry import ModelVersion, load_classifier, resolve
from engine.progress import CancelToken, Reporter
from engine.store.gate_reports import report_passed

DAMAGED = "model files damaged"
TRIAL_SECONDS = 1.0  # the length of the sound a one-shot model is tried on (a section model: its window)


def _gates_refusal(workspace, target: ModelVersion) -> GatesFailed | None:
    """The refusal to activate a version whose last gate report failed, else None."""
    with workspace.db.transaction() as con:
        passed = report_passed(con, target.last_gate_report_id)
    if passed is not False:
        return None
    return GatesFailed(f"{target.ref} failed its last gate report ({target.last_gate_report_id}); "
                       "activate it anyway with --force --reason '...'")


def _trial_sound(sample_rate: int, seconds: float) -> np.ndarray:
    """A decaying noise burst: the same every time, loud enough for every extractor."""
    t = np.arange(max(int(sample_rate * seconds), 1)) / sample_rate
    noise = np.random.default_rng(0).standard_normal(t.size)
    return (0.3 * noise * np.exp(-t / 0.2)).astype(np.float32)


def try_version(workspace, version: ModelVersion) -> None:
    """Load a version and run it on one input of the shape its features have (made from a short sound by
    its own extractors): InputError `model files damaged: …` when its files cannot be loaded or do not
    give one finite probability per class. Nothing is changed."""
    extractors = version.spec.extractors(workspace.embeddings_dir)
    seconds = version.meta.get("window_s") or TRIAL_SECONDS
    row = feature_row([extractor.extract(_trial_sound(extractor.sample_rate, seconds)) for extractor in extractors])
    try:
        probabilities = np.asarray(load_classifier(version).predict_proba(row[None].astype(np.float32)))
    except ModelFilesDamaged as error:  # a file changed since registration, missing, or not its kind's
        raise InputError(f"{DAMAGED}: {version.ref}: {error.path.name} ({error.problem})") from error
    except Exception as error:  # whatever else the files make a loader or the model raise
        raise InputError(f"{DAMAGED}: {version.ref} in {version.artifact_dir}: "
                         f"{type(error).__name__}: {error}") from error
    expected = (1, len(version.label_set))
    if probabilities.shape != expected or not np.isfinite(probabilities).all():
        raise InputError(f"{DAMAGED}: {version.ref} in {version.artifact_dir} gives probabilities of shape "
                         f"{probabilities.shape} for one input of {row.size} features (expected {expected}, finite)")


def check_activatable(workspace, ref: str) -> ModelVersion:
    """The version, or GatesFailed when its last gate report failed (activating it then needs
    `forced` and a reason): asked before an activation job is started, so the person can decide."""
    target = resolve(workspace, ref)
    refusal = _gates_refusal(workspace, target)
    if refusal is not None:
        raise refusal
    return target


def activate(workspace, ref: str, *, reason: str | None = None,
             forced: bool = False) -> tuple[ModelVersion, int | None]:
    """Make a version the active one of its name; returns it and the version it replaced.

    A version whose last gate report failed is only activated with `forced` (else GatesFailed);
    the history then records forced=True and the reason. The version is loaded and tried first
    (`try_version`): one whose files are damaged is refused and the active version stays."""
    target = resolve(workspace, ref)
    refusal = _gates_refusal(workspace, target)
    if refusal is not None and not forced:
        raise refusal
    if refusal is not None:
        reason = f"{reason or 'no reason given'} (forced past failed gate report {target.last_gate_report_id})"
    try_version(workspace, target)
    return registry.activate(workspace, target.ref, reason=reason, forced=refusal is not None)


def _activate(workspace, ref: str, *, reason: str | None, rollback: bool,
              forced: bool) -> tuple[ModelVersion, int | None]:
    """Activate a version, or roll its name back (no gate check: it returns to a version that was
    already trusted once; but it is tried first like any activation)."""
    if not rollback:
        return activate(workspace, ref, reason=reason, forced=forced)
    try_version(workspace, registry.rollback_target(workspace, ref)[0])
    return registry.rollback(workspace, ref, reason=reason)


def activate_and_infer(workspace, ref: str, *, reason: str | None = None, rollback: bool = False,
                       infer: bool = True, forced: bool = False, workers: int | None = None,
                       reporter: Reporter | None = None,
                       cancel: CancelToken | None = None) -> tuple[ModelVersion, int | None, int]:
    """Activate a version (or roll its name back) and re-run inference over the library with it.

    Returns the active version, the version it replaced and how many predictions were stored."""
    active, previous = _activate(workspace, ref, reason=reason, rollback=rollback, forced=forced)
    stored = 0
    if infer:
        _, stored, _ = infer_library(workspace, active.ref, workers=workers, reporter=reporter, cancel=cancel)
    return active, previous, stored


@job_kind("activate")
def run_activation_job(workspace, job, params: dict, cancel: CancelToken) -> None:
    """An activation job in its own process (the TUI's Models screen starts these, so neither a
    closed terminal nor the event loop stops it): `params` {ref, reason, forced, rollback}.

    Activates the version (or rolls its name back) in one registry transaction, then re-runs
    inference over the library, reporting through the job and stopping at its cancel token. The
    result holds the active ref, the version it replaced and the predictions stored. A cancel
    before the registry change leaves the registry alone; one after it leaves the new version
    active with the predictions stored so far (`infer --library` stores them all)."""
    ref, rollback = params["ref"], bool(params.get("rollback"))
    job.state(JobState.RUNNING, "changing the registry")
    if cancel.cancelled:
        raise Cancelled(f"cancelled before {'rolling back' if rollback else 'activating'} {ref}; nothing changed")
    active, previous = _activate(workspace, ref, reason=params.get("reason"), rollback=rollback,
                                 forced=bool(params.get("forced")))
    result = {"active": active.ref, "previous_version": previous, "predictions": 0}
    job.event("activated", dict(result))
    job.state(JobState.RUNNING, "now active; predicting the library")
    _, stored, rejections = infer_library(workspace, active.ref, reporter=JobReporter(job), cancel=cancel)
    result.update(predictions=stored, rejected=len(rejections))
    if cancel.cancelled:
        job.finish(JobState.CANCELLED, result=result,
                   error=f"{active.ref} stays active with {stored} predictions stored; "
                         "`workbench --headless infer --library` finishes them")
        return
    job.finish(JobState.COMPLETED, result=result)
