"""Per-group sampling weights, so a pack (source) or a recording session with many clips of a class
does not drown out the others of that class in training.

Within each class, the clips of a group weigh the inverse of the group's count, normalised so the
class's rarest group weighs 1 (a group ten times larger weighs 0.1), then clamped to [lo, hi]:
the floor keeps a big group from being silenced, the ceiling bounds any one clip's pull. Training
rescales the weights of its training rows to mean 1, so only their ratios matter.

Groups: `source` is the clip's pack; `session` is the folder the clip's file lies in.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from engine.concepts import Split
from engine.datasets.export import workspace_items
from engine.errors import InputError
from engine.io import read_json_file, write_json_atomically

FORMAT = "workbench-weights"
GROUPINGS = ("source", "session")


def group_of(grouping: str, source: str, path: str) -> str:
    if grouping == "source":
        return source
    if grouping == "session":
        return str(Path(path).parent)
    raise InputError(f"--group must be one of {', '.join(GROUPINGS)}, not {grouping!r}")


def _check_clamp(low: float, high: float) -> None:
    if not 0.0 < low <= high:
        raise InputError(f"--clamp LO HI needs 0 < LO <= HI, got {low:g} {high:g}")


def group_weights(labels: list[str], groups: list[str], low: float, high: float) -> dict[str, dict[str, float]]:
    """{label: {group: weight}} from one (label, group) pair per clip or segment."""
    _check_clamp(low, high)
    counts = Counter(zip(labels, groups))
    rarest: dict[str, int] = {}
    for (label, _), n in counts.items():
        rarest[label] = min(rarest.get(label, n), n)
    weights: dict[str, dict[str, float]] = {}
    for (label, group), n in sorted(counts.items()):
        weights.setdefault(label, {})[group] = float(np.clip(rarest[label] / n, low, high))
    return weights


def derive_weights(workspace, *, grouping: str = "source", clamp: tuple[float, float] = (0.05, 0.5),
                   taxonomy: str | None = None, min_confidence: float = 0.0) -> dict:
    """The weights of the labelled segments of a taxonomy of the workspace, as the JSON document
    `write_weights` stores and `train --weights` reads."""
    tax = workspace.taxonomy(taxonomy)
    items = workspace_items(workspace, tax.name, min_confidence)
    if not items:
        raise InputError(f"no labelled segments in taxonomy {tax.name} to weigh")
    labels = [item.label for item in items]
    groups = [group_of(grouping, item.source, item.path) for item in items]
    counts: dict[str, dict[str, int]] = {}
    for (label, group), n in sorted(Counter(zip(labels, groups)).items()):
        counts.setdefault(label, {})[group] = n
    return {"format": FORMAT, "taxonomy": tax.name, "group": grouping, "clamp": [float(clamp[0]), float(clamp[1])],
            "weights": group_weights(labels, groups, *clamp), "counts": counts}


def write_weights(document: dict, out: Path) -> Path:
    return write_json_atomically(out, document)


def read_weights(path: Path) -> dict:
    path = Path(path).expanduser()
    document = read_json_file(path, "weights file")
    if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("group") not in GROUPINGS:
        raise InputError(f"{path}: not a workbench weights file (write one with `weights derive`)")
    return document


def training_row_weights(path: Path, data) -> tuple[np.ndarray, list[str]]:
    """One weight per training row of `data` (a TrainingData), rescaled to mean 1, and notes.
    A (class, group) the file does not know (a pack added since) gets the clamp's ceiling."""
    document = read_weights(path)
    grouping, table = document["group"], document["weights"]
    high = float(document["clamp"][1])
    train = np.flatnonzero(data.splits == str(Split.TRAIN))
    if grouping == "session" and not data.targets:
        raise InputError("session weights need clip paths; an exported dataset has none (use --group source)")
    weights = np.empty(len(train))
    unknown = 0
    for n, row in enumerate(train):
        label = data.classes[data.y[row]]
        group = group_of(grouping, data.groups[row], data.targets[row].path if data.targets else "")
        weight = table.get(label, {}).get(group)
        if weight is None:
            unknown += 1
            weight = high
        weights[n] = float(weight)
    notes = [f"sample weights from {Path(path).name} (by {grouping})"]
    if unknown:
        notes.append(f"{unknown} training rows from groups the weights file does not know got weight {high:g}")
    if weights.sum() <= 0:
        raise InputError(f"{path}: every training row weighs 0")
    return weights / weights.mean(), notes
