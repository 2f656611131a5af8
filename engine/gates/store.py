"""Gate reports kept in the workspace: each run is stored with its scope, the dataset fingerprint
and, for a model run, the model version, whose `last_gate_report_id` then points at it. The TUI's
Gates screen reads `latest_report`; the activation service asks `engine.store.gate_reports.report_passed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.errors import NotFound
from engine.gates.core import GateReport
from engine.store import gate_reports
from engine.store.gate_reports import GateReportRow


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

    @classmethod
    def from_row(cls, row: GateReportRow) -> StoredReport:
        return cls(row.report_id, row.scope, row.model_id, row.dataset_fingerprint, row.passed,
                   GateReport.from_dict(row.report, f"gate report {row.report_id}"), row.path, row.created_at)

    def to_dict(self) -> dict:
        return {"report_id": self.report_id, "scope": self.scope, "model_id": self.model_id,
                "dataset_fingerprint": self.dataset_fingerprint, "passed": self.passed, "path": self.path,
                "created_at": self.created_at.isoformat(), "report": self.report.to_dict()}


def save_report(workspace, report: GateReport, *, model_id: int | None = None, path: str | None = None) -> int:
    """Store a report (and make it the model version's last report); returns its id."""
    with workspace.db.transaction() as con:
        return gate_reports.insert_report(con, report.to_dict(), passed=report.passed,
                                          dataset_fingerprint=report.subject.get("dataset_fingerprint"),
                                          model_id=model_id, path=path)


def latest_report(workspace, model_id: int | None = None, *, scope: str | None = None) -> StoredReport | None:
    """The newest stored report: of a model version when `model_id` is given, else of any run
    (or of the given `scope`: "dataset" for runs without a model)."""
    with workspace.db.transaction(read_only=True) as con:
        row = gate_reports.latest_report(con, model_id, scope=scope)
    return StoredReport.from_row(row) if row else None


def get_report(workspace, report_id: int) -> StoredReport:
    with workspace.db.transaction(read_only=True) as con:
        row = gate_reports.get_report(con, report_id)
    if row is None:
        raise NotFound(f"no gate report {report_id}")
    return StoredReport.from_row(row)
