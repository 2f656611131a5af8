"""Gate reports (`gate_reports`): each gate run with its scope, the dataset fingerprint and, for a
model run, the model version, whose `last_gate_report_id` then points at it.

The report itself is kept as the JSON document `GateReport.to_dict` writes; `engine.gates.store`
reads it back as a `GateReport`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from engine.store.versions import set_last_gate_report

COLUMNS = "report_id, scope, model_id, dataset_fingerprint, passed, report, path, created_at"


@dataclass(frozen=True)
class GateReportRow:
    report_id: int
    scope: str  # dataset | model
    model_id: int | None
    dataset_fingerprint: str | None
    passed: bool
    report: dict  # the report's JSON document
    path: str | None  # the JSON file written for it, if any
    created_at: datetime


def _from_row(row) -> GateReportRow:
    report_id, scope, model_id, fingerprint, passed, report, path, created_at = row
    return GateReportRow(report_id, scope, model_id, fingerprint, passed, json.loads(report), path, created_at)


def insert_report(con, report: dict, *, passed: bool, dataset_fingerprint: str | None, model_id: int | None = None,
                  path: str | None = None) -> int:
    """Store a report (and make it the model version's last report); returns its id."""
    report_id = con.execute(
        "INSERT INTO gate_reports (scope, model_id, dataset_fingerprint, passed, report, path) "
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING report_id",
        ["model" if model_id is not None else "dataset", model_id, dataset_fingerprint, passed,
         json.dumps(report, default=str), path]).fetchone()[0]
    if model_id is not None:
        set_last_gate_report(con, model_id, report_id)
    return report_id


def latest_report(con, model_id: int | None = None, *, scope: str | None = None) -> GateReportRow | None:
    """The newest report: of a model version when `model_id` is given, else of any run (or of the
    given `scope`: "dataset" for runs without a model)."""
    conditions, args = [], []
    if model_id is not None:
        conditions, args = ["model_id = ?"], [model_id]
    if scope is not None:
        conditions, args = [*conditions, "scope = ?"], [*args, scope]
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    row = con.execute(f"SELECT {COLUMNS} FROM gate_reports {where} ORDER BY report_id DESC LIMIT 1", args).fetchone()
    return _from_row(row) if row else None


def get_report(con, report_id: int) -> GateReportRow | None:
    row = con.execute(f"SELECT {COLUMNS} FROM gate_reports WHERE report_id = ?", [report_id]).fetchone()
    return _from_row(row) if row else None


def report_passed(con, report_id: int | None) -> bool | None:
    """Whether a stored report passed; None when there is none."""
    if report_id is None:
        return None
    row = con.execute("SELECT passed FROM gate_reports WHERE report_id = ?", [report_id]).fetchone()
    return None if row is None else bool(row[0])
