"""The shape every readiness gate shares: a registered check with documented default thresholds,
returning a result (value, threshold, pass/fail, and the items behind a failure) that goes into a
report.

Gate modules register their checks with `@gate(...)` when imported; `all_gates()` imports them.
A check is `check(context, settings) -> GateResult`, where `context` is the dataset or model
context of its scope (built once per run, computing shared things such as features lazily) and
`settings` is its defaults updated by the TOML config. A gate that does not apply (no beat-range
labels, no OOD set given) returns `passed=None`: skipped, with the reason in `detail`.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.errors import Cancelled, InputError

REPORT_SCHEMA = 1
GATE_MODULES = ("engine.gates.dataset", "engine.gates.model")
SCOPES = ("dataset", "model")


def format_value(value) -> str:
    """A measured number as the gates' details write theirs: three decimals for a float (a CI
    bound of 0.99996 reads 1.000, as in "accuracy 0.998 [1.000, 1.000]", never 1), whole numbers
    as they are."""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class GateResult:
    gate: str  # stable id, "<scope>.<name>", e.g. "dataset.min_class_count"
    title: str
    passed: bool | None  # None: skipped (does not apply, or its input was not given)
    value: Any  # a number or short text, what was measured
    threshold: str  # the rule, as text: ">= 30 per class", "<= 0.02"
    detail: str = ""  # one line a person reads: which classes, how many
    items: list[dict] = field(default_factory=list)  # what fails: clips, classes, pairs

    @property
    def scope(self) -> str:
        return self.gate.split(".", 1)[0]

    @property
    def status(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]

    @property
    def value_text(self) -> str:
        """The value for a table cell, as the detail writes its numbers; a dash for none or a structure."""
        return "—" if self.value is None or isinstance(self.value, (dict, list)) else format_value(self.value)

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status}

    @classmethod
    def from_dict(cls, data: dict) -> GateResult:
        return cls(gate=data["gate"], title=data["title"], passed=data["passed"], value=data["value"],
                   threshold=data["threshold"], detail=data.get("detail", ""), items=list(data.get("items", [])))


@dataclass(frozen=True)
class GateReport:
    subject: dict  # what was checked: dataset fingerprint, taxonomy, model ref
    results: list[GateResult]
    settings: dict  # the thresholds in force, per gate id
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    halted: bool = False  # stopped at the first failure; later gates did not run

    @property
    def passed(self) -> bool:
        return all(result.passed is not False for result in self.results)

    @property
    def failures(self) -> list[GateResult]:
        return [result for result in self.results if result.passed is False]

    def to_dict(self) -> dict:
        return {"schema": REPORT_SCHEMA, "created_at": self.created_at, "subject": self.subject,
                "passed": self.passed, "halted": self.halted,
                "summary": {status: sum(r.status == status for r in self.results) for status in ("PASS", "FAIL", "SKIP")},
                "gating_results": [result.to_dict() for result in self.results], "settings": self.settings}

    @classmethod
    def from_dict(cls, data: dict, source: str = "report") -> GateReport:
        if data.get("schema") != REPORT_SCHEMA or "gating_results" not in data:
            raise InputError(f"{source}: not a workbench gate report (schema {REPORT_SCHEMA} with gating_results)")
        return cls(subject=data.get("subject", {}), results=[GateResult.from_dict(r) for r in data["gating_results"]],
                   settings=data.get("settings", {}), created_at=data.get("created_at", ""),
                   halted=bool(data.get("halted", False)))


Check = Callable[[Any, dict], GateResult]


@dataclass(frozen=True)
class Gate:
    id: str
    title: str
    defaults: dict  # threshold name -> default value; the TOML config may override these keys only
    check: Check
    doc: str  # what it measures and why the default is what it is

    @property
    def scope(self) -> str:
        return self.id.split(".", 1)[0]


_REGISTRY: dict[str, Gate] = {}


def gate(gate_id: str, title: str, **defaults) -> Callable[[Check], Check]:
    """Register `check` as the gate `gate_id` ("dataset.x" or "model.x") with default thresholds."""
    scope = gate_id.split(".", 1)[0]
    if scope not in SCOPES or "." not in gate_id:
        raise ValueError(f"gate id {gate_id!r} must be '<dataset|model>.<name>'")

    def register(check: Check) -> Check:
        _REGISTRY[gate_id] = Gate(gate_id, title, dict(defaults), check, (check.__doc__ or "").strip())
        return check
    return register


def all_gates(scope: str | None = None) -> list[Gate]:
    """Every registered gate (in registration order), optionally of one scope."""
    for module in GATE_MODULES:
        importlib.import_module(module)
    return [g for g in _REGISTRY.values() if scope is None or g.scope == scope]


def default_settings() -> dict[str, dict]:
    return {g.id: dict(g.defaults) for g in all_gates()}


def load_settings(path: Path | None) -> dict[str, dict]:
    """The defaults, overridden by a TOML file of `[dataset.min_class_count] floor = 50` tables.
    An unknown gate or threshold name is an error naming the file, so a typo never passes silently."""
    settings = default_settings()
    if path is None:
        return settings
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: gate config not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid TOML ({error})") from None
    for scope, tables in data.items():
        if scope not in SCOPES or not isinstance(tables, dict):
            raise InputError(f"{path}: unknown section [{scope}]; gate sections are [dataset.<gate>] and [model.<gate>]")
        for name, overrides in tables.items():
            gate_id = f"{scope}.{name}"
            if gate_id not in settings:
                known = ", ".join(g.split(".", 1)[1] for g in settings if g.startswith(scope + "."))
                raise InputError(f"{path}: unknown gate [{gate_id}]; known {scope} gates: {known}")
            if not isinstance(overrides, dict):
                raise InputError(f"{path}: [{gate_id}] must be a table of thresholds")
            for key, value in overrides.items():
                if key not in settings[gate_id]:
                    raise InputError(f"{path}: [{gate_id}] has no threshold {key!r}; "
                                     f"it has {', '.join(settings[gate_id]) or 'none'}")
                settings[gate_id][key] = value
    return settings


def run_gates(scope: str, context, settings: dict[str, dict], *, subject: dict, halt_on_first_failure: bool = False,
              only: list[str] | None = None, reporter=None, cancel=None) -> GateReport:
    """Run the gates of `scope` over `context` in order; a check that raises `InputError` fails with
    that message (the rest still run), anything else is a bug and propagates."""
    gates = [g for g in all_gates(scope) if only is None or g.id in only]
    if reporter is not None:
        reporter.start(f"{scope} gates", len(gates))
    results: list[GateResult] = []
    halted = False
    for g in gates:
        if cancel is not None and cancel.cancelled:
            raise Cancelled(f"{scope} gates cancelled after {len(results)} of {len(gates)}")
        try:
            result = g.check(context, settings[g.id])
        except InputError as error:
            result = GateResult(g.id, g.title, False, None, "runs", detail=str(error))
        results.append(result)
        if reporter is not None:
            reporter.advance()
        if halt_on_first_failure and result.passed is False:
            halted = len(results) < len(gates)
            break
    return GateReport(subject=subject, results=results, settings={g.id: settings[g.id] for g in gates}, halted=halted)


def merge_reports(reports: list[GateReport], subject: dict) -> GateReport:
    """One report of several scopes' results (dataset then model), as `gates run` writes it."""
    return GateReport(subject=subject, results=[r for report in reports for r in report.results],
                      settings={k: v for report in reports for k, v in report.settings.items()},
                      halted=any(report.halted for report in reports))
