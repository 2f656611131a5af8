"""The model registry: every successful training is version N of a named model.

Artifacts live in `<workspace>/models/<name>/v<N>/` (no pickle: JSON, LightGBM text,
safetensors). A version is registered by moving its finished folder into place and inserting its
row in one transaction, so a killed training never leaves a registered half-model. One version of
a name is active; every activation is kept in a history (when, from which version, why), which is
what `rollback` follows.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from engine.io import write_atomically, write_json_atomically
from engine.errors import GatesFailed, InputError, NotFound
from engine.features.spec import FeatureSpec
from engine.taxonomy import check_name

VERSION_COLUMNS = ("model_id, name, version, task, kind, artifact_dir, feature_spec, label_set, label_counts, "
                   "hyperparams, metrics, dataset_fingerprint, job_id, is_active, created_at, meta, "
                   "last_gate_report_id, reject_threshold")
JSON_FIELDS = ("feature_spec", "label_set", "label_counts", "hyperparams", "metrics", "meta")


@dataclass(frozen=True)
class ModelVersion:
    model_id: int
    name: str
    version: int
    task: str
    kind: str
    artifact_dir: str
    feature_spec: dict
    label_set: list[str]
    label_counts: dict
    hyperparams: dict
    metrics: dict
    dataset_fingerprint: str | None
    job_id: str | None
    is_active: bool
    created_at: datetime
    meta: dict
    last_gate_report_id: int | None
    reject_threshold: float | None = None  # open-set: `predict` answers "unknown" below it (meta["open_set"])

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(self.feature_spec["kind"], self.feature_spec.get("model"), self.feature_spec.get("params", {}))

    def task_taxonomy(self, workspace) -> str | None:
        """The version's task when it is a taxonomy of the workspace (else labels are read as written)."""
        return self.task if self.task in workspace.taxonomies.names() else None

    def headline(self, split: str = "test") -> dict:
        """Accuracy and macro-F1 with their confidence intervals on one split."""
        chosen = self.metrics.get(split) or {}
        return {key: chosen.get(key) for key in ("accuracy", "macro_f1", "ci", "n")}

    def to_dict(self) -> dict:
        return {"ref": self.ref, "model_id": self.model_id, "name": self.name, "version": self.version,
                "task": self.task, "kind": self.kind, "artifact_dir": self.artifact_dir,
                "features": str(self.spec), "feature_spec": self.feature_spec, "classes": self.label_set,
                "label_counts": self.label_counts, "hyperparams": self.hyperparams, "metrics": self.metrics,
                "dataset_fingerprint": self.dataset_fingerprint, "job_id": self.job_id, "active": self.is_active,
                "created_at": self.created_at.isoformat(), "meta": self.meta,
                "last_gate_report_id": self.last_gate_report_id, "reject_threshold": self.reject_threshold}


def _version_from_row(row, root: Path) -> ModelVersion:
    """A version as stored; its artifact folder is kept relative to the workspace (so a moved or
    copied workspace keeps working) and given back as an absolute path."""
    values = dict(zip([c.strip() for c in VERSION_COLUMNS.split(",")], row))
    for key in JSON_FIELDS:
        values[key] = json.loads(values[key]) if values[key] else ({} if key != "label_set" else [])
    values["artifact_dir"] = str(root / values["artifact_dir"])
    return ModelVersion(**values)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'drums@3' → ('drums', 3); 'drums' → ('drums', None)."""
    name, at, version = ref.strip().partition("@")
    if at and not version.isdigit():
        raise InputError(f"model reference {ref!r} must look like NAME or NAME@VERSION (e.g. drums@3)")
    return name, int(version) if at else None


def list_versions(workspace, name: str | None = None) -> list[ModelVersion]:
    with workspace.db.transaction() as con:
        rows = con.execute(
            f"SELECT {VERSION_COLUMNS} FROM model_versions {'WHERE name = ?' if name else ''} ORDER BY name, version",
            [name] if name else [],
        ).fetchall()
    return [_version_from_row(row, workspace.root) for row in rows]


def resolve(workspace, ref: str) -> ModelVersion:
    """NAME@N, or NAME for its active version (else its newest)."""
    name, version = parse_ref(ref)
    versions = list_versions(workspace, name)
    if not versions:
        known = sorted({v.name for v in list_versions(workspace)})
        raise NotFound(f"no model named {name!r} (models: {', '.join(known) or 'none yet; train one'})")
    if version is None:
        return next((v for v in versions if v.is_active), versions[-1])
    for candidate in versions:
        if candidate.version == version:
            return candidate
    raise NotFound(f"{name} has no version {version} (versions: {', '.join(str(v.version) for v in versions)})")


def register(workspace, *, name: str, task: str, kind: str, artifact_dir: Path, feature_spec: FeatureSpec,
             classes: list[str], label_counts: dict, hyperparams: dict, metrics: dict, dataset_fingerprint: str,
             job_id: str | None, meta: dict | None = None) -> ModelVersion:
    """Move a finished artifact folder into the registry as the next version of `name`."""
    check_name(name, "model name")
    home = workspace.models_dir / name
    home.mkdir(parents=True, exist_ok=True)
    counter = f"last_model_version:{name}"  # version numbers are never reused, even after a delete
    with workspace.db.transaction() as con:
        last = con.execute("SELECT max(v) FROM (SELECT max(version) AS v FROM model_versions WHERE name = ? "
                           "UNION ALL SELECT CAST(value AS INTEGER) FROM settings WHERE key = ?)",
                           [name, counter]).fetchone()[0]
        version = (last or 0) + 1
        destination = home / f"v{version}"
        if destination.exists():  # left by a registration whose transaction did not commit
            shutil.rmtree(destination)
        os.replace(artifact_dir, destination)
        try:
            con.execute(
                "INSERT INTO model_versions (name, version, task, kind, artifact_dir, feature_spec, label_set, "
                "label_counts, hyperparams, metrics, dataset_fingerprint, job_id, meta) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, version, task, kind, str(destination.relative_to(workspace.root)),
                 json.dumps(feature_spec.to_dict()), json.dumps(classes),
                 json.dumps(label_counts), json.dumps(hyperparams, default=str), json.dumps(metrics, default=str),
                 dataset_fingerprint, job_id, json.dumps(meta or {}, default=str)],
            )
            con.execute("INSERT INTO settings VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [counter, str(version)])
        except BaseException:
            os.replace(destination, artifact_dir)
            raise
    return resolve(workspace, f"{name}@{version}")


def record_open_set(workspace, version: ModelVersion, open_set: dict) -> ModelVersion:
    """Store an open-set reject threshold with a version: the column and meta["open_set"] (the
    score method, threshold and how it was chosen), in one transaction."""
    meta = {**version.meta, "open_set": open_set}
    with workspace.db.transaction() as con:
        con.execute("UPDATE model_versions SET reject_threshold = ?, meta = ? WHERE model_id = ?",
                    [float(open_set["threshold"]), json.dumps(meta, default=str), version.model_id])
    return resolve(workspace, version.ref)


def _active_version(con, name: str) -> int | None:
    row = con.execute("SELECT version FROM model_versions WHERE name = ? AND is_active", [name]).fetchone()
    return row[0] if row else None


def _gates_refusal(con, target: ModelVersion) -> GatesFailed | None:
    """The refusal to activate a version whose last gate report failed (inside the caller's transaction)."""
    from engine.gates.store import report_passed

    if report_passed(con, target.last_gate_report_id) is not False:
        return None
    return GatesFailed(f"{target.ref} failed its last gate report ({target.last_gate_report_id}); "
                       "activate it anyway with --force --reason '...'")


def check_activatable(workspace, ref: str) -> ModelVersion:
    """The version, or GatesFailed when its last gate report failed (activating it then needs
    `forced` and a reason): asked before an activation job is started, so the person can decide."""
    target = resolve(workspace, ref)
    with workspace.db.transaction() as con:
        refusal = _gates_refusal(con, target)
    if refusal is not None:
        raise refusal
    return target


def activate(workspace, ref: str, *, reason: str | None = None, forced: bool = False,
             check_gates: bool = True) -> tuple[ModelVersion, int | None]:
    """Make a version the active one of its name; returns it and the version it replaced.

    A version whose last gate report failed is only activated with `forced` (else GatesFailed);
    the history then records forced=True and the reason (rollback skips the check: it returns to a
    version that was already trusted once)."""
    target = resolve(workspace, ref)
    with workspace.db.transaction() as con:
        refusal = _gates_refusal(con, target) if check_gates else None
        if refusal is not None and not forced:
            raise refusal
        forced = bool(refusal is not None and forced)
        if forced:
            reason = f"{reason or 'no reason given'} (forced past failed gate report {target.last_gate_report_id})"
        previous = _active_version(con, target.name)
        con.execute("UPDATE model_versions SET is_active = (version = ?) WHERE name = ?", [target.version, target.name])
        con.execute("INSERT INTO activations (name, version, previous_version, reason, forced) VALUES (?, ?, ?, ?, ?)",
                    [target.name, target.version, previous, reason, forced])
    return resolve(workspace, target.ref), previous


def rollback(workspace, name: str, *, reason: str | None = None) -> tuple[ModelVersion, int | None]:
    """Activate the version that was active before the current one."""
    with workspace.db.transaction() as con:
        current = _active_version(con, name)
        if current is None:
            raise InputError(f"{name} has no active version to roll back from")
        rows = con.execute(
            "SELECT previous_version FROM activations WHERE name = ? AND version = ? AND previous_version IS NOT NULL "
            "AND previous_version != ? AND previous_version IN (SELECT version FROM model_versions WHERE name = ?) "
            "ORDER BY activation_id DESC LIMIT 1", [name, current, current, name]).fetchall()
    if not rows:
        raise InputError(f"{name}@{current} has no earlier active version to roll back to")
    return activate(workspace, f"{name}@{rows[0][0]}", reason=reason or f"rollback from {current}", check_gates=False)


def check_deletable(version: ModelVersion) -> None:
    """Raise InputError for the active version: it cannot be deleted."""
    if version.is_active:
        raise InputError(f"{version.ref} is active; activate another version (or roll back) before deleting it")


def delete(workspace, ref: str) -> ModelVersion:
    """Delete a version and its files; the active version cannot be deleted."""
    target = resolve(workspace, ref)
    if parse_ref(ref)[1] is None:
        raise InputError(f"say which version to delete, e.g. {target.name}@{target.version}")
    check_deletable(target)
    with workspace.db.transaction() as con:
        con.execute("DELETE FROM predictions WHERE model_id = ?", [target.model_id])
        con.execute("DELETE FROM model_versions WHERE model_id = ?", [target.model_id])
    shutil.rmtree(target.artifact_dir, ignore_errors=True)
    return target


def activation_history(workspace, name: str) -> list[dict]:
    with workspace.db.transaction() as con:
        rows = con.execute("SELECT version, previous_version, reason, forced, activated_at FROM activations "
                           "WHERE name = ? ORDER BY activation_id", [name]).fetchall()
    return [{"version": v, "previous_version": p, "reason": r, "forced": f, "at": a.isoformat()}
            for v, p, r, f, a in rows]


def load_classifier(version: ModelVersion):
    from engine.models.kinds import load_model

    return load_model(Path(version.artifact_dir))


def export(workspace, ref: str, out: Path, fmt: str = "onnx") -> Path:
    """Write a version as ONNX (input 'features', output 'probabilities'), atomically; a JSON
    sidecar next to it names the classes and the features the model expects."""
    if fmt != "onnx":
        raise InputError(f"unknown export format {fmt!r}; supported: onnx")
    version = resolve(workspace, ref)
    out = Path(out).expanduser().resolve()
    write_atomically(out, load_classifier(version).export_onnx)
    sidecar = {"model": version.ref, "kind": version.kind, "classes": version.label_set,
               "features": version.feature_spec, "meta": version.meta}
    write_json_atomically(out.with_suffix(".json"), sidecar)
    return out
