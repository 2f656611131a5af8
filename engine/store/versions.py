"""Model versions and their activation history (`model_versions`, `activations`).

A version's row keeps its artifact folder relative to the workspace; the registry
(`engine.models.registry`) gives it back as a `ModelVersion` with the folder made absolute.
Version numbers of a name count up and are never reused, even after a delete: the last one handed
out is kept in `settings` under `last_model_version:<name>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from engine.store.settings import set_setting

COLUMNS = ("model_id, name, version, task, kind, artifact_dir, feature_spec, label_set, label_counts, "
           "hyperparams, metrics, dataset_fingerprint, job_id, is_active, created_at, meta, "
           "last_gate_report_id, reject_threshold")
JSON_FIELDS = ("feature_spec", "label_set", "label_counts", "hyperparams", "metrics", "meta")


@dataclass(frozen=True)
class StoredVersion:
    """A model version as stored: JSON columns decoded, the artifact folder relative to the workspace."""

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


@dataclass(frozen=True)
class Activation:
    """One entry of a name's activation history: which version became active, replacing which, why."""

    version: int
    previous_version: int | None
    reason: str | None
    forced: bool  # activated past a failed gate report
    activated_at: datetime

    def to_dict(self) -> dict:
        return {"version": self.version, "previous_version": self.previous_version, "reason": self.reason,
                "forced": self.forced, "at": self.activated_at.isoformat()}


def _version_from_row(row) -> StoredVersion:
    values = dict(zip([c.strip() for c in COLUMNS.split(",")], row))
    for key in JSON_FIELDS:
        values[key] = json.loads(values[key]) if values[key] else ({} if key != "label_set" else [])
    return StoredVersion(**values)


def list_versions(con, name: str | None = None) -> list[StoredVersion]:
    """Every version (of `name` when given), by name and version."""
    where, args = ("WHERE name = ?", [name]) if name else ("", [])
    rows = con.execute(f"SELECT {COLUMNS} FROM model_versions {where} ORDER BY name, version", args).fetchall()
    return [_version_from_row(row) for row in rows]


def versions_stamp(con) -> tuple:
    """A millisecond summary of the versions: it changes when one is registered, deleted,
    activated or gated."""
    return con.execute(
        "SELECT count(*), max(model_id), list(model_id ORDER BY model_id) FILTER (WHERE is_active), "
        "max(last_gate_report_id) FROM model_versions").fetchone()


def _counter(name: str) -> str:
    return f"last_model_version:{name}"


def next_version_number(con, name: str) -> int:
    """The number the next version of `name` gets: one past any it ever had."""
    last = con.execute("SELECT max(v) FROM (SELECT max(version) AS v FROM model_versions WHERE name = ? "
                       "UNION ALL SELECT CAST(value AS INTEGER) FROM settings WHERE key = ?)",
                       [name, _counter(name)]).fetchone()[0]
    return (last or 0) + 1


def insert_version(con, *, name: str, version: int, task: str, kind: str, artifact_dir: str, feature_spec: dict,
                   label_set: list[str], label_counts: dict, hyperparams: dict, metrics: dict,
                   dataset_fingerprint: str | None, job_id: str | None, meta: dict) -> None:
    """Store a new version (its artifact folder relative to the workspace) and use up its number."""
    con.execute(
        "INSERT INTO model_versions (name, version, task, kind, artifact_dir, feature_spec, label_set, "
        "label_counts, hyperparams, metrics, dataset_fingerprint, job_id, meta) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [name, version, task, kind, artifact_dir, json.dumps(feature_spec), json.dumps(label_set),
         json.dumps(label_counts), json.dumps(hyperparams, default=str), json.dumps(metrics, default=str),
         dataset_fingerprint, job_id, json.dumps(meta, default=str)],
    )
    set_setting(con, _counter(name), str(version))


def set_open_set(con, model_id: int, threshold: float, meta: dict) -> None:
    """Store a version's open-set reject threshold and its meta (which describes how it was chosen)."""
    con.execute("UPDATE model_versions SET reject_threshold = ?, meta = ? WHERE model_id = ?",
                [threshold, json.dumps(meta, default=str), model_id])


def set_last_gate_report(con, model_id: int, report_id: int) -> None:
    con.execute("UPDATE model_versions SET last_gate_report_id = ? WHERE model_id = ?", [report_id, model_id])


def active_version(con, name: str) -> int | None:
    """The version number of `name` that is active, if any."""
    row = con.execute("SELECT version FROM model_versions WHERE name = ? AND is_active", [name]).fetchone()
    return row[0] if row else None


def activate_version(con, name: str, version: int, *, reason: str | None, forced: bool) -> int | None:
    """Make `version` the one active version of `name` and record it in the history; returns the
    version it replaced."""
    previous = active_version(con, name)
    con.execute("UPDATE model_versions SET is_active = (version = ?) WHERE name = ?", [version, name])
    con.execute("INSERT INTO activations (name, version, previous_version, reason, forced) VALUES (?, ?, ?, ?, ?)",
                [name, version, previous, reason, forced])
    return previous


def version_before(con, name: str, current: int) -> int | None:
    """The still registered version that `current` replaced when it was last activated."""
    row = con.execute(
        "SELECT previous_version FROM activations WHERE name = ? AND version = ? AND previous_version IS NOT NULL "
        "AND previous_version != ? AND previous_version IN (SELECT version FROM model_versions WHERE name = ?) "
        "ORDER BY activation_id DESC LIMIT 1", [name, current, current, name]).fetchone()
    return row[0] if row else None


def delete_version(con, model_id: int) -> None:
    con.execute("DELETE FROM model_versions WHERE model_id = ?", [model_id])


def activation_history(con, name: str) -> list[Activation]:
    """Every activation of `name`, oldest first."""
    rows = con.execute("SELECT version, previous_version, reason, forced, activated_at FROM activations "
                       "WHERE name = ? ORDER BY activation_id", [name]).fetchall()
    return [Activation(*row) for row in rows]
