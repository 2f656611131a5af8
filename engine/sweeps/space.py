"""What a sweep searches: a grid (`--grid lr=1e-3,5e-4`, every combination) or a space for a
sampler (`--space 'lr=loguniform(1e-4,1e-2)'`).

A parameter is `model` (the model kind), `features`, or a hyperparameter of the trial's model kind.
A grid point has one canonical key (`batch_size=32,lr=0.001`: names sorted, values spelled by
`format_value`), which is how the same point is recognised after a resume, across workers, and in
`--rerun`.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

from engine.errors import InputError

REQUEST_PARAMS = ("model", "features")  # parameters of the training request; the rest are hyperparameters
_DISTRIBUTION = re.compile(r"^\s*(categorical|uniform|loguniform|int|logint)\s*\((.*)\)\s*$")


def parse_value(text: str) -> int | float | str | bool:
    """'32' → 32, '1e-3' → 0.001, 'true' → True, anything else stays text."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        if kind is float and not math.isfinite(value):
            raise InputError(f"{text!r} is not a finite number")
        return value
    return text


def format_value(value) -> str:
    """One spelling per value: 0.001 and 1e-3 both give '0.001'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _name_and_text(option: str, spec: str) -> tuple[str, str]:
    name, sep, text = spec.partition("=")
    name = name.strip()
    if not sep or not name or not text.strip():
        raise InputError(f"{option} {spec!r} must look like NAME=VALUES (e.g. {option} lr=1e-3,5e-4)")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise InputError(f"{option} {spec!r}: {name!r} is not a parameter name")
    return name, text


def parse_grid(specs: list[str]) -> dict[str, list]:
    """`--grid` options → {name: [values]}, in the order given."""
    grid: dict[str, list] = {}
    for spec in specs:
        name, text = _name_and_text("--grid", spec)
        if name in grid:
            raise InputError(f"--grid {name} is given twice")
        values = [parse_value(part) for part in text.split(",") if part.strip()]
        if len(set(map(format_value, values))) != len(values):
            raise InputError(f"--grid {spec!r} repeats a value")
        grid[name] = values
    return grid


def point_key(params: dict) -> str:
    """The canonical key of a grid point (or of any set of parameters)."""
    return ",".join(f"{name}={format_value(params[name])}" for name in sorted(params))


def parse_point(text: str, grid: dict[str, list]) -> dict:
    """`--rerun 'lr=1e-3,batch_size=64'` → the grid values it names (some or all grid parameters):
    every grid point with those values is meant."""
    point = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            raise InputError(f"--rerun {text!r} must look like NAME=VALUE,NAME=VALUE")
        point[name.strip()] = parse_value(value)
    for name, value in point.items():
        if name not in grid:
            raise InputError(f"--rerun {text!r}: {name} is not a grid parameter ({', '.join(grid)})")
        if format_value(value) not in {format_value(v) for v in grid[name]}:
            raise InputError(f"--rerun {text!r}: {name}={format_value(value)} is not a value of the grid "
                             f"({', '.join(map(format_value, grid[name]))})")
    return {name: next(v for v in grid[name] if format_value(v) == format_value(point[name])) for name in point}


def matches(point: dict, partial: dict) -> bool:
    """Whether a grid point has every value of a partial one."""
    return all(format_value(point[name]) == format_value(value) for name, value in partial.items())


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination, the first parameter varying slowest."""
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[name] for name in names))]


@dataclass(frozen=True)
class Dimension:
    """One parameter of a sampler's space."""

    name: str
    kind: str  # categorical | uniform | loguniform | int | logint
    args: tuple

    def suggest(self, trial):
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.args))
        low, high = self.args
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.name, int(low), int(high), log=self.kind == "logint")
        return trial.suggest_float(self.name, float(low), float(high), log=self.kind == "loguniform")

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "args": list(self.args)}

    @classmethod
    def from_dict(cls, data: dict) -> Dimension:
        return cls(data["name"], data["kind"], tuple(data["args"]))


def parse_space(specs: list[str]) -> list[Dimension]:
    """`--space 'lr=loguniform(1e-4,1e-2)'` options → dimensions."""
    dimensions: list[Dimension] = []
    for spec in specs:
        name, text = _name_and_text("--space", spec)
        match = _DISTRIBUTION.match(text)
        if match is None:
            raise InputError(f"--space {spec!r}: say categorical(a,b,…), uniform(low,high), loguniform(low,high), "
                             "int(low,high) or logint(low,high)")
        kind, args = match.group(1), tuple(parse_value(a) for a in match.group(2).split(",") if a.strip())
        if any(d.name == name for d in dimensions):
            raise InputError(f"--space {name} is given twice")
        if kind == "categorical":
            if not args:
                raise InputError(f"--space {spec!r}: categorical needs at least one choice")
        else:
            if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
                raise InputError(f"--space {spec!r}: {kind} takes two numbers, low and high")
            if not args[0] < args[1]:
                raise InputError(f"--space {spec!r}: low must be below high")
            if kind.startswith("log") and args[0] <= 0:
                raise InputError(f"--space {spec!r}: a log scale needs low > 0")
        dimensions.append(Dimension(name, kind, args))
    return dimensions


_SEARCH_ITEM = re.compile(r"[^\s(]+\([^)]*\)|\S+")


def split_search(text: str) -> tuple[list[str], list[str]]:
    """One line of search items, as the TUI's sweep form takes them, → (grid specs, space specs):
    `lr=1e-3,1e-2 epochs=5` is a grid, `lr=loguniform(1e-4, 1e-2)` a space dimension."""
    items = _SEARCH_ITEM.findall(text)
    return [i for i in items if not _DISTRIBUTION.match(i.partition("=")[2])], \
        [i for i in items if _DISTRIBUTION.match(i.partition("=")[2])]
