"""Gate reports kept in the workspace (`gate_reports`): each run is stored with its scope, the
dataset fingerprint and, for a model run, the model version, whose `last_gate_report_id` then
points at it. The TUI's Gates screen reads `latest_report`; activation reads `report_passed`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from engine.errors import NotFound
from engine.gates.core import GateReport

COLUMNS = "report_id, scope, model_id, dataset_fingerprint, passed, report, path, created_at"


@dataclass(frozen=True)
class StoredReport:
    report_id: int
    scope: str  # dataset | model
    model_id: int | None
    dataset_fingerprint: str | None
    passed: bool
    report: GateReport
    path: str | None  # the JSON file written for it, if any
    created_at: datetime

    def to_dict(self) -> dict:
        return {"report_id": self.report_id, "scope": self.scope, "model_id": self.model_id,
                "dataset_fingerprint": self.dataset_fingerprint, "passed": self.passed, "path": self.path,
                "created_at": self.created_at.isoformat(), "report": self.report.to_dict()}


def _from_row(row) -> StoredReport:
    report_id, scope, model_id, fingerprint, passed, report, path, created_at = row
    return StoredReport(report_id, scope, model_id, fingerprint, passed,
                        GateReport.from_dict(json.loads(report), f"gate report {report_id}"), path, created_at)


def save_report(workspace, report: GateReport, *, model_id: int | None = None, path: str | None = None) -> int:
    """Store a report (and make it the model version's last report); returns its id."""
    scope = "model" if model_id is not None else "dataset"
    with workspace.db.transaction() as con:
        report_id = con.execute(
            "INSERT INTO gate_reports (scope, model_id, dataset_fingerprint, passed, report, path) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING report_id",
            [scope, model_id, report.subject.get("dataset_fingerprint"), report.passed,
             json.dumps(report.to_dict(), default=str), path]).fetchone()[0]
        if model_id is not None:
            con.execute("UPDATE model_versions SET last_gate_report_id = ? WHERE model_id = ?", [report_id, model_id])
    return report_id


def latest_report(workspace, model_id: int | None = None, *, scope: str | None = None) -> StoredReport | None:
    """The newest stored report: of a model version when `model_id` is given, else of any run
    (or of the given `scope`: "dataset" for runs without a model)."""
    where, args = ("WHERE model_id = ?", [model_id]) if model_id is not None else ("", [])
    if scope is not None:
        where, args = (f"{where} AND scope = ?" if where else "WHERE scope = ?"), [*args, scope]
    with workspace.db.transaction(read_only=True) as con:
        row = con.execute(f"SELECT {COLUMNS} FROM gate_reports {where} ORDER BY report_id DESC LIMIT 1",
                          args).fetchone()
    return _from_row(row) if row else None


def get_report(workspace, report_id: int) -> StoredReport:
    with workspace.db.transaction(read_only=True) as con:
        row = con.execute(f"SELECT {COLUMNS} FROM gate_reports WHERE report_id = ?", [report_id]).fetchone()
    if row is None:
        raise NotFound(f"no gate report {report_id}")
    return _from_row(row)


def report_passed(con, report_id: int | None) -> bool | None:
    """Whether a stored report passed; None when there is none (inside the caller's transaction)."""
    if report_id is None:
        return None
    row = con.execute("SELECT passed FROM gate_reports WHERE report_id = ?", [report_id]).fetchone()
    return None if row is None else bool(row[0])
