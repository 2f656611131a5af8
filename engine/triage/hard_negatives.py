"""Hard negatives: clips a model predicts confidently as a label they are not.

A labelled clip (or window, for a section model) whose label differs from a confident prediction,
and any clip of an OOD folder (sounds outside the label set) predicted confidently at all, is a
hard negative for the predicted label: training on it teaches the model where that label ends.
They are listed most confident first, at most `max_per_label` per predicted label.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.io import write_bytes_atomically
from engine.concepts import LabelledSegment, Rejection, Segment
from engine.datasets.export import window_items, workspace_items
from engine.errors import InputError
from engine.features.extract import Target
from engine.progress import CancelToken, Reporter
from engine.models.registry import ModelVersion


@dataclass(frozen=True)
class HardNegative:
    path: str
    clip_id: str
    start_s: float | None
    end_s: float | None
    label: str | None  # what a person labelled it; None for a clip of an OOD folder
    predicted: str
    confidence: float
    origin: str  # "labelled" | "ood"


def _labelled_items(workspace, version: ModelVersion, dataset: Path | None, workers, reporter,
                    cancel) -> tuple[list[LabelledSegment], list[Rejection]]:
    """The labelled clips the model is checked against: a curated folder if given, else the
    workspace's labels of its taxonomy, else the curated folder it was trained on."""
    from engine.datasets.source import curated_items, is_export

    taxonomy = version.task_taxonomy(workspace)
    trained_on = Path(version.meta["dataset"]) if version.meta.get("dataset") else None
    folder = dataset or (None if taxonomy else trained_on)
    if folder is None:
        if taxonomy is None:
            raise InputError(f"{version.ref} was not trained on a workspace taxonomy; pass a labelled folder (--dataset)")
        return window_items(workspace_items(workspace, taxonomy), version.meta.get("window_s")), []
    folder = Path(folder).expanduser().resolve()
    if is_export(folder):
        raise InputError(f"{folder} is an export (features only); pass a curated folder of audio")
    tax = workspace.taxonomy(taxonomy) if taxonomy else None
    return curated_items(folder, tax, workspace, workers=workers, reporter=reporter, cancel=cancel)


def _ood_items(workspace, folder: Path, workers, reporter, cancel) -> tuple[list[LabelledSegment], list[Rejection]]:
    from engine.library.clips import identify_files
    from engine.library.scan import find_audio_files

    files, _ = find_audio_files(Path(folder).expanduser().resolve())
    probed, rejections = identify_files(workspace, [str(f) for f in files], workers=workers, reporter=reporter,
                                        cancel=cancel)
    return [LabelledSegment(info.clip_id, path, info.size_bytes, "ood", Segment.whole(), None)
            for path, info in sorted(probed.items())], rejections


def rank_hard_negatives(candidates: list[HardNegative], min_confidence: float, max_per_label: int) -> list[HardNegative]:
    """The confident mistakes, most confident first (then by path), at most `max_per_label` per predicted label."""
    chosen, per_label = [], {}
    for candidate in sorted(candidates, key=lambda c: (-c.confidence, c.path, c.start_s or 0.0)):
        if candidate.confidence < min_confidence or candidate.predicted == candidate.label:
            continue
        if per_label.get(candidate.predicted, 0) >= max_per_label:
            continue
        per_label[candidate.predicted] = per_label.get(candidate.predicted, 0) + 1
        chosen.append(candidate)
    return chosen


def hard_negatives(workspace, ref: str, *, min_confidence: float = 0.7, max_per_label: int = 150,
                   ood_folder: Path | None = None, dataset: Path | None = None, workers: int | None = None,
                   reporter: Reporter | None = None, cancel: CancelToken | None = None
                   ) -> tuple[ModelVersion, list[HardNegative], list[Rejection]]:
    from engine.inference import load

    if not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"--min-confidence must be within [0, 1], got {min_confidence:g}")
    if max_per_label < 1:
        raise InputError(f"--max-per-label must be at least 1, got {max_per_label}")
    model = load(workspace, ref)
    items, rejections = _labelled_items(workspace, model.version, dataset, workers, reporter, cancel)
    origins = ["labelled"] * len(items)
    if ood_folder is not None:
        extra, failed = _ood_items(workspace, ood_folder, workers, reporter, cancel)
        items, origins, rejections = items + extra, origins + ["ood"] * len(extra), rejections + failed
    if not items:
        raise InputError("nothing to look through: no labelled clips (and no OOD folder)")
    probabilities, kept, failed = model.probabilities(workspace, [Target.of(i) for i in items], workers=workers,
                                                      reporter=reporter, cancel=cancel)
    classes = model.version.label_set
    best = probabilities.argmax(axis=1) if len(kept) else np.zeros(0, dtype=int)
    candidates = [HardNegative(items[k].path, items[k].clip_id, items[k].segment.start_s, items[k].segment.end_s,
                               items[k].label, classes[b], round(float(probabilities[n, b]), 6), origins[k])
                  for n, (k, b) in enumerate(zip(kept, best))]
    return model.version, rank_hard_negatives(candidates, min_confidence, max_per_label), rejections + failed


def write_jsonl(negatives: list[HardNegative], out: Path, model: str) -> Path:
    lines = [json.dumps({"model": model, **asdict(n)}) + "\n" for n in negatives]
    return write_bytes_atomically(Path(out).expanduser(), "".join(lines).encode())
