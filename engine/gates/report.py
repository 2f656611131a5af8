"""Gate reports on disk: JSON (`GateReport.to_dict()`, with `gating_results`) and one
self-contained HTML page (inline CSS, tables, confusion matrices as inline SVG), both written
atomically; and `compare`, which tells whether a newer report regressed from a baseline.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.io import read_json_file, write_bytes_atomically, write_json_atomically
from engine.errors import InputError
from engine.gates.core import GateReport, GateResult

HTML_ITEM_ROWS = 50
STATUS_COLOURS = {"PASS": "#15803d", "FAIL": "#b91c1c", "SKIP": "#6b7280"}


# -- files ----------------------------------------------------------------------------------------

def report_stem(report: GateReport) -> str:
    """gates-20250101T120000 (from the report's creation time): the name of its files in reports/."""
    stamp = "".join(ch for ch in report.created_at[:19] if ch.isalnum())
    return f"gates-{stamp}"


def write_json(report: GateReport, path: Path) -> Path:
    return write_json_atomically(path, report.to_dict(), default=str)


def write_html(report: GateReport, path: Path) -> Path:
    return write_bytes_atomically(Path(path).expanduser(), render_html(report).encode())


def write_to_workspace(workspace, report: GateReport) -> tuple[Path, Path]:
    """The report's JSON and HTML in `<workspace>/reports/`, named by its creation time (with -2, -3 …
    after it when a report of the same second is there already)."""
    stem = workspace.reports_dir / report_stem(report)
    for copy in range(2, 1000):
        if not stem.with_suffix(".json").exists():
            break
        stem = workspace.reports_dir / f"{report_stem(report)}-{copy}"
    return write_json(report, stem.with_suffix(".json")), write_html(report, stem.with_suffix(".html"))


def load_report(path: Path) -> GateReport:
    path = Path(path).expanduser()
    data = read_json_file(path, "gate report")
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a workbench gate report (a JSON object with gating_results)")
    return GateReport.from_dict(data, str(path))


# -- compare ----------------------------------------------------------------------------------------

@dataclass
class Comparison:
    max_drop_pct: float
    classes: list[dict] = field(default_factory=list)  # label, base, new, change_pct, dropped
    newly_failing: list[str] = field(default_factory=list)
    newly_passing: list[str] = field(default_factory=list)
    unknown_before: int = 0
    unknown_after: int = 0
    techniques: list[dict] = field(default_factory=list)  # technique, base, new, change

    @property
    def dropped(self) -> list[dict]:
        return [c for c in self.classes if c["dropped"]]

    @property
    def unknown_rose(self) -> bool:
        return self.unknown_after > self.unknown_before

    @property
    def passed(self) -> bool:
        return not self.dropped and not self.newly_failing and not self.unknown_rose

    def reasons(self) -> list[str]:
        reasons = [f"{c['label']} fell {-c['change_pct']:.1f}% ({c['base']} → {c['new']}), beyond {self.max_drop_pct:g}%"
                   for c in self.dropped]
        reasons += [f"{gate_id} now fails" for gate_id in self.newly_failing]
        if self.unknown_rose:
            reasons.append(f"labels outside the taxonomy rose from {self.unknown_before} to {self.unknown_after}")
        return reasons

    def to_dict(self) -> dict:
        return {"passed": self.passed, "max_drop_pct": self.max_drop_pct, "classes": self.classes,
                "newly_failing": self.newly_failing, "newly_passing": self.newly_passing,
                "unknown_labels": {"base": self.unknown_before, "new": self.unknown_after, "rose": self.unknown_rose},
                "techniques": self.techniques,
                "reasons": self.reasons()}


def _unknown_total(report: GateReport) -> int:
    return int(sum((report.subject.get("unknown_labels") or {}).values()))


def compare_reports(base: GateReport, new: GateReport, max_drop_pct: float) -> Comparison:
    """Per-class totals that fell by more than `max_drop_pct` percent (a class that vanished fell
    100%), gates that pass (or were skipped) in `base` and fail in `new`, and whether the count of
    labels outside the taxonomy rose."""
    if not 0 <= max_drop_pct <= 100:
        raise InputError(f"--max-drop must be a percentage between 0 and 100, not {max_drop_pct:g}")
    comparison = Comparison(max_drop_pct, unknown_before=_unknown_total(base), unknown_after=_unknown_total(new))
    base_counts = base.subject.get("class_counts") or {}
    new_counts = new.subject.get("class_counts") or {}
    for label in sorted(set(base_counts) | set(new_counts)):
        before, after = int(base_counts.get(label, 0)), int(new_counts.get(label, 0))
        change = 100.0 * (after - before) / before if before else 0.0
        comparison.classes.append({"label": label, "base": before, "new": after, "change_pct": round(change, 2),
                                   "dropped": before > 0 and -change > max_drop_pct})
    base_techniques = base.subject.get("technique_counts") or {}
    new_techniques = new.subject.get("technique_counts") or {}
    for name in sorted(set(base_techniques) | set(new_techniques)):
        before, after = int(base_techniques.get(name, 0)), int(new_techniques.get(name, 0))
        comparison.techniques.append({"technique": name, "base": before, "new": after, "change": after - before})
    before_status = {r.gate: r.passed for r in base.results}
    for result in new.results:
        was = before_status.get(result.gate)
        if result.passed is False and was is not False:
            comparison.newly_failing.append(result.gate)
        elif result.passed is True and was is False:
            comparison.newly_passing.append(result.gate)
    return comparison


# -- HTML -------------------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #111827; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #d1d5db; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
.status { color: white; font-weight: bold; text-align: center; }
.verdict { font-size: 1.4em; font-weight: bold; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def _status_cell(status: str) -> str:
    return f'<td class="status" style="background:{STATUS_COLOURS[status]}">{status}</td>'


def _flatten(item: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in item.items():
        if isinstance(value, dict) and key != "confusion":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _items_table(items: list[dict]) -> str:
    rows = [_flatten(item) for item in items[:HTML_ITEM_ROWS] if isinstance(item, dict)]
    rows = [{k: v for k, v in row.items() if k != "confusion"} for row in rows]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if not columns:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_text(row.get(c)))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    more = f"<p>… and {len(items) - HTML_ITEM_ROWS} more (see the JSON report)</p>" if len(items) > HTML_ITEM_ROWS else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def confusion_svg(matrix: list[list[float]], classes: list[str] | None = None, cell: int = 34) -> str:
    """A confusion matrix (rows = true, columns = predicted) as an inline SVG heat map with counts;
    cells are shaded by their share of the row."""
    size = len(matrix)
    classes = [str(c) for c in (classes or range(size))]
    margin = 8 + 7 * max((len(c) for c in classes), default=1)
    width = height = margin + cell * size + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11" role="img" aria-label="confusion matrix">']
    for row, values in enumerate(matrix):
        total = sum(values) or 1
        parts.append(f'<text x="{margin - 4}" y="{margin + row * cell + cell / 2 + 4}" text-anchor="end">'
                     f"{html.escape(classes[row])}</text>")
        for column, value in enumerate(values):
            share = value / total
            x, y = margin + column * cell, margin + row * cell
            parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb({int(255 - 200 * share)},'
                         f'{int(255 - 130 * share)},255)" stroke="#d1d5db"><title>true {html.escape(classes[row])}, '
                         f"predicted {html.escape(classes[column])}: {_text(value)}</title></rect>")
            parts.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle">{_text(value)}</text>')
    for column, name in enumerate(classes):
        x = margin + column * cell + cell / 2
        parts.append(f'<text x="{x}" y="{margin - 4}" text-anchor="start" transform="rotate(-60 {x} {margin - 4})">'
                     f"{html.escape(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _confusions(result: GateResult) -> list[tuple[list, list | None]]:
    """Every confusion matrix a result carries, in its value or its items ({"confusion": [[...]],
    "classes": [...]}, "labels" also accepted)."""
    found = []
    for holder in ([result.value] if isinstance(result.value, dict) else []) + list(result.items):
        if isinstance(holder, dict) and isinstance(holder.get("confusion"), list) and holder["confusion"]:
            found.append((holder["confusion"], holder.get("classes") or holder.get("labels")))
    return found


def render_html(report: GateReport) -> str:
    data = report.to_dict()
    verdict = "PASS" if report.passed else "FAIL"
    summary = ", ".join(f"{n} {status}" for status, n in data["summary"].items())
    subject_rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>"
                           for k, v in report.subject.items() if k != "class_counts")
    counts = report.subject.get("class_counts") or {}
    count_rows = "".join(f'<tr><td>{html.escape(label)}</td><td class="num">{n}</td></tr>' for label, n in counts.items())
    result_rows = "".join(
        f'<tr><td><a href="#{html.escape(r.gate)}">{html.escape(r.gate)}</a></td><td>{html.escape(r.title)}</td>'
        f'{_status_cell(r.status)}<td class="num">{html.escape(r.value_text)}</td>'
        f"<td>{html.escape(r.threshold)}</td><td>{html.escape(r.detail)}</td></tr>" for r in report.results)
    sections = []
    for result in report.results:
        pictures = "".join(confusion_svg(matrix, classes) for matrix, classes in _confusions(result))
        listed = _items_table(result.items) if result.passed is False or pictures else ""
        if listed or pictures:
            sections.append(f'<h3 id="{html.escape(result.gate)}">{html.escape(result.title)} '
                            f"({result.status})</h3>{pictures}{listed}")
    halted = "<p>Stopped at the first failure; later gates did not run.</p>" if report.halted else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>workbench gate report {html.escape(report.created_at)}</title>
<style>{CSS}</style></head><body>
<h1>Gate report</h1>
<p class="verdict" style="color:{STATUS_COLOURS[verdict]}">{verdict}</p>
<p>{html.escape(summary)} · {html.escape(report.created_at)}</p>{halted}
<table>{subject_rows}</table>
<h2>Gates</h2>
<table id="results"><tr><th>gate</th><th>check</th><th>status</th><th>value</th><th>threshold</th><th>detail</th></tr>
{result_rows}</table>
{"<h2>Examples per class</h2><table><tr><th>label</th><th>count</th></tr>" + count_rows + "</table>" if counts else ""}
{"<h2>Details</h2>" + "".join(sections) if sections else ""}
</body></html>
"""
