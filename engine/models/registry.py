"""The model registry: every successful training is version N of a named model.

Artifacts live in `<workspace>/models/<name>/v<N>/` (no pickle: JSON, LightGBM text,
safetensors). A version is registered by moving its finished folder into place and inserting its
row in one transaction, so a killed training never leaves a registered half-model. One version of
a name is active; every activation is kept in a history (when, from which version, why), which is
what `rollback` follows.

Registration records the size and SHA-256 of every artifact file in the version's meta (`"files"`);
loading checks each file against them before parsing it, and `verify` checks a version's files
without using it. Versions registered before hashes were kept load unchecked ("no hashes recorded").

The registry is a plain store of versions: it knows nothing of gates. The rule that a version whose
last gate report failed is only activated when forced lives in `engine.services.activation`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.io import write_bytes_atomically, write_json_atomically
from engine.errors import InputError, NotFound
from engine.features.spec import FeatureSpec
from engine.models.artifacts import ModelFiles, ModelFilesDamaged, file_hashes
from engine.store import predictions, versions
from engine.models.orphans import set_aside
from engine.store.versions import StoredVersion
from engine.taxonomy import check_name


@dataclass(frozen=True)
class ModelVersion(StoredVersion):
    """A registered version as the engine uses it: its artifact folder is an absolute path."""

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


FILES_KEY = "files"  # meta: {relative path: {"sha256", "bytes"}} of the artifact files, recorded at registration


def _version(stored: StoredVersion, root: Path) -> ModelVersion:
    """A version as stored, its artifact folder (kept relative to the workspace, so a moved or
    copied workspace keeps working) given back as an absolute path."""
    return ModelVersion(**{**vars(stored), "artifact_dir": str(root / stored.artifact_dir)})


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'drums@3' → ('drums', 3); 'drums' → ('drums', None)."""
    name, at, version = ref.strip().partition("@")
    if at and not version.isdigit():
        raise InputError(f"model reference {ref!r} must look like NAME or NAME@VERSION (e.g. drums@3)")
    return name, int(version) if at else None


def list_versions(workspace, name: str | None = None, *, con=None) -> list[ModelVersion]:
    """The versions (of `name`), read in `con` when the caller has a transaction open."""
    if con is None:
        with workspace.db.transaction() as con:
            return list_versions(workspace, name, con=con)
    return [_version(version, workspace.root) for version in versions.list_versions(con, name)]


def versions_stamp(workspace) -> tuple:
    """What changes when the list of versions does (see store.versions.versions_stamp)."""
    with workspace.db.transaction(read_only=True) as con:
        return versions.versions_stamp(con)


def resolve(workspace, ref: str, *, con=None) -> ModelVersion:
    """NAME@N, or NAME for its active version (else its newest); read in `con` when given."""
    name, version = parse_ref(ref)
    candidates = list_versions(workspace, name, con=con)
    if not candidates:
        known = sorted({v.name for v in list_versions(workspace, con=con)})
        raise NotFound(f"no model named {name!r} (models: {', '.join(known) or 'none yet; train one'})")
    if version is None:
        return next((v for v in candidates if v.is_active), candidates[-1])
    for candidate in candidates:
        if candidate.version == version:
            return candidate
    raise NotFound(f"{name} has no version {version} (versions: {', '.join(str(v.version) for v in candidates)})")


def register(workspace, *, name: str, task: str, kind: str, artifact_dir: Path, feature_spec: FeatureSpec,
             classes: list[str], label_counts: dict, hyperparams: dict, metrics: dict, dataset_fingerprint: str,
             job_id: str | None, meta: dict | None = None) -> ModelVersion:
    """Move a finished artifact folder into the registry as the next version of `name`, recording
    the size and SHA-256 of each of its files (meta["files"])."""
    check_name(name, "model name")
    meta = {**(meta or {}), FILES_KEY: file_hashes(artifact_dir)}
    home = workspace.models_dir / name
    home.mkdir(parents=True, exist_ok=True)
    with workspace.db.transaction() as con:
        version = versions.next_version_number(con, name)
        destination = home / f"v{version}"
        if destination.exists():  # left by a registration that did not commit: kept, never deleted
            set_aside(workspace, destination, f"it was in the way of registering {name}@{version}")
        os.replace(artifact_dir, destination)
        try:
            versions.insert_version(con, name=name, version=version, task=task, kind=kind,
                                    artifact_dir=str(destination.relative_to(workspace.root)),
                                    feature_spec=feature_spec.to_dict(), label_set=classes, label_counts=label_counts,
                                    hyperparams=hyperparams, metrics=metrics, dataset_fingerprint=dataset_fingerprint,
                                    job_id=job_id, meta=meta)
        except BaseException:
            os.replace(destination, artifact_dir)
            raise
    return resolve(workspace, f"{name}@{version}")


def record_open_set(workspace, version: ModelVersion, open_set: dict) -> ModelVersion:
    """Store an open-set reject threshold with a version: the column and meta["open_set"] (the
    score method, threshold and how it was chosen), in one transaction."""
    meta = {**version.meta, "open_set": open_set}
    with workspace.db.transaction() as con:
        versions.set_open_set(con, version.model_id, float(open_set["threshold"]), meta)
    return resolve(workspace, version.ref)


def activate(workspace, ref: str, *, reason: str | None = None,
             forced: bool = False) -> tuple[ModelVersion, int | None]:
    """Make a version the active one of its name; returns it and the version it replaced. The history
    keeps the reason and whether it was `forced` past a failed gate report (the activation service,
    `engine.services.activation`, decides that)."""
    target = resolve(workspace, ref)
    with workspace.db.transaction() as con:
        previous = versions.activate_version(con, target.name, target.version, reason=reason, forced=forced)
    return resolve(workspace, target.ref), previous


def rollback_target(workspace, name: str) -> tuple[ModelVersion, int]:
    """The version a rollback of `name` activates (the one active before the current one), and the current one."""
    with workspace.db.transaction() as con:
        current = versions.active_version(con, name)
        if current is None:
            raise InputError(f"{name} has no active version to roll back from")
        before = versions.version_before(con, name, current)
    if before is None:
        raise InputError(f"{name}@{current} has no earlier active version to roll back to")
    return resolve(workspace, f"{name}@{before}"), current


def rollback(workspace, name: str, *, reason: str | None = None) -> tuple[ModelVersion, int | None]:
    """Activate the version that was active before the current one."""
    target, current = rollback_target(workspace, name)
    return activate(workspace, target.ref, reason=reason or f"rollback from {current}")


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
        predictions.delete_predictions(con, target.model_id)
        versions.delete_version(con, target.model_id)
    shutil.rmtree(target.artifact_dir, ignore_errors=True)
    return target


def activation_history(workspace, name: str) -> list[dict]:
    with workspace.db.transaction() as con:
        history = versions.activation_history(con, name)
    return [activation.to_dict() for activation in history]


def recorded_hashes(version: ModelVersion) -> dict | None:
    """The size and SHA-256 of each artifact file as registered; None for a version registered
    before hashes were kept."""
    hashes = version.meta.get(FILES_KEY)
    if hashes is None:
        return None
    if not isinstance(hashes, dict) or not all(
            isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and type(entry.get("bytes")) is int
            for entry in hashes.values()):
        raise ModelFilesDamaged(Path(version.artifact_dir), "the hashes recorded for its files are unreadable")
    return hashes


def load_classifier(version: ModelVersion):
    """The version's fitted model; raises ModelFilesDamaged, naming the file, when a file differs
    from the one registered or does not fit the version (kind, class count)."""
    from engine.models.kinds import load_model

    return load_model(Path(version.artifact_dir), hashes=recorded_hashes(version), kind=version.kind,
                      n_classes=len(version.label_set))


@dataclass(frozen=True)
class FilesCheck:
    """What `verify` found for one version: status OK, DAMAGED (file and problem) or NO_HASHES."""

    ref: str
    status: str
    file: str | None = None
    problem: str | None = None

    def to_dict(self) -> dict:
        return {"ref": self.ref, "status": self.status, "file": self.file, "problem": self.problem}


OK, DAMAGED, NO_HASHES = "ok", "damaged", "no hashes recorded"


def verify(version: ModelVersion) -> FilesCheck:
    """Check every file recorded for a version against its hash, then load it (which checks that
    its parts fit together). A version registered before hashes were kept is NO_HASHES when it loads."""
    try:
        hashes = recorded_hashes(version)
        ModelFiles(Path(version.artifact_dir), hashes).verify_all()
        load_classifier(version)
    except ModelFilesDamaged as damage:
        return FilesCheck(version.ref, DAMAGED, str(damage.path), damage.problem)
    return FilesCheck(version.ref, NO_HASHES if hashes is None else OK)


def export(workspace, ref: str, out: Path, fmt: str = "onnx",
           check: Callable[[ModelVersion, bytes], None] | None = None) -> Path:
    """Write a version as ONNX (input 'features', output 'probabilities', the version's temperature
    applied in the graph), atomically; a JSON sidecar next to it names the classes, the taxonomy, the
    features the model expects (what `models import` reads) and the temperature. `check(version,
    onnx_bytes)`, when given, runs before anything is written and may refuse by raising."""
    if fmt != "onnx":
        raise InputError(f"unknown export format {fmt!r}; supported: onnx")
    version = resolve(workspace, ref)
    out = Path(out).expanduser().resolve()
    classifier = load_classifier(version)
    with tempfile.TemporaryDirectory() as scratch:
        classifier.export_onnx(Path(scratch) / "model.onnx")
        data = (Path(scratch) / "model.onnx").read_bytes()
    if check is not None:
        check(version, data)
    write_bytes_atomically(out, data)
    sidecar = {"model": version.ref, "kind": version.kind, "classes": version.label_set, "taxonomy": version.task,
               "features": version.feature_spec, "window_s": version.meta.get("window_s"),
               "temperature": classifier.temperature_,  # already inside the graph: its probabilities are calibrated
               "meta": {k: v for k, v in version.meta.items() if k != FILES_KEY}}
    write_json_atomically(out.with_suffix(".json"), sidecar)
    return out
