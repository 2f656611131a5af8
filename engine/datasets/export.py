"""Exporting a labelled feature dataset: arrays per split plus a manifest, written atomically.

    <out>/manifest.json          classes, counts per split, extractor, fingerprint, split method
    <out>/<split>_features.npy   float32, one row per segment
    <out>/<split>_labels.npy     int32 indices into manifest["classes"]
    <out>/<split>_items.jsonl    clip id, path, source, label, segment of each row, and the lead time
                                 of the label it came from (seconds a person took to make it, or null)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from engine.audio.augment import random_augmentation
from engine.concepts import LabelledSegment, Rejection, Segment, Split
from engine.datasets.splits import SPLITS, assign_splits
from engine.errors import InputError
from engine.features.extract import Target, extract_features, load_features
from engine.features.spec import FeatureSpec
from engine.io import write_folder_atomically
from engine.progress import CancelToken, Reporter
from engine.store.labels import labelled_segments

FORMAT = "workbench-dataset"
FORMAT_VERSION = 1


@dataclass
class ExportReport:
    out: str
    manifest: dict = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"out": self.out, "manifest": self.manifest, "rejected": len(self.rejections),
                "rejections": [r.to_dict() for r in self.rejections], "notes": self.notes,
                "cancelled": self.cancelled, "seconds": round(self.seconds, 3)}


def workspace_items(workspace, taxonomy: str, min_confidence: float = 0.0) -> list[LabelledSegment]:
    """The labelled segments of a taxonomy with at least `min_confidence`: what train, the gates and
    exports read."""
    with workspace.db.transaction(read_only=True) as con:
        return labelled_segments(con, taxonomy, min_confidence=min_confidence)


def fingerprint(rows: list[dict], spec: FeatureSpec, code_versions: list[str]) -> str:
    digest = hashlib.sha256(json.dumps([spec.to_dict(), code_versions], sort_keys=True).encode())
    for row in sorted(json.dumps(r, sort_keys=True) for r in rows):
        digest.update(row.encode())
    return digest.hexdigest()[:16]


def _write_atomically(out: Path, files: dict[str, bytes | np.ndarray]) -> None:
    """Write every file into a fresh folder beside `out`, then swap it into place."""
    def fill(staging: Path) -> None:
        for name, content in files.items():
            if isinstance(content, np.ndarray):
                np.save(staging / name, content, allow_pickle=False)
            else:
                (staging / name).write_bytes(content)

    write_folder_atomically(out, fill)


@dataclass
class Assembled:
    """Labelled features of items, split, with augmented training copies appended."""

    items: list[LabelledSegment]  # the rows of `features`, in order
    targets: list[Target]  # what each row was featurised from: its item's segment, or an augmented copy
    splits: list[Split]
    features: np.ndarray
    extractors: list
    rejections: list[Rejection] = field(default_factory=list)
    cancelled: bool = False
    groups: list[str] = field(default_factory=list)  # the group each row's split kept whole

    @property
    def labels(self) -> list[str]:
        return [item.label for item in self.items]


def window_items(items: list[LabelledSegment], window_s: float | None) -> list[LabelledSegment]:
    """Cut every segment longer than 1.5 windows into back-to-back windows of `window_s`, each
    carrying the segment's label (a long DJ section becomes many training examples)."""
    if not window_s:
        return items
    windowed = []
    for item in items:
        start, end = item.segment.start_s, item.segment.end_s
        if start is None or end - start < 1.5 * window_s:
            windowed.append(item)
            continue
        windowed += [replace(item, segment=Segment.window(start + index * window_s, window_s))
                     for index in range(int((end - start) // window_s))]
    return windowed


def fixed_splits(items: list[LabelledSegment]) -> list[Split | None]:
    """The split each item must land in, with its whole group, or None: its own (from a manifest),
    else train for an item that answers a suggestion (the clips a model was unsure of are what it
    should learn, and as a test set they would lean towards its mistakes), unless no item would be
    left free to split."""
    free = any(i.split is None and not i.asked for i in items)
    return [i.split or (Split.TRAIN if i.asked and free else None) for i in items]


def split_items(items: list[LabelledSegment], *, split_by: str, val: float, test: float, seed: int,
                groups: list[str] | None = None) -> list[Split]:
    """Each item's split, stratified by label, keeping each clip (or each source with
    split_by="group") in one split; `fixed_splits` are kept."""
    if split_by not in ("clip", "group"):
        raise InputError(f"--split must be 'group' (by source) or 'clip', not {split_by!r}")
    if groups is None:
        groups = [i.source if split_by == "group" else i.clip_id for i in items]
    return assign_splits([i.label for i in items], groups, fixed_splits(items), val=val, test=test, seed=seed)


def assemble(workspace, items: list[LabelledSegment], spec: FeatureSpec, *, split_by: str = "clip", val: float = 0.15,
             test: float = 0.15, seed: int = 0, augment: int = 0, workers: int | None = None,
             reporter: Reporter | None = None, cancel: CancelToken | None = None,
             groups: list[str] | None = None) -> Assembled:
    """Split the items (each clip, or each source with split_by="group", or each of the given
    `groups`, kept in one split), add `augment` augmented copies of each training item, and
    featurise everything through the cache."""
    if groups is None:
        groups = [i.source if split_by == "group" else i.clip_id for i in items]
    splits = split_items(items, split_by=split_by, val=val, test=test, seed=seed, groups=groups)
    extractors = spec.extractors(workspace.embeddings_dir)
    rng = np.random.default_rng(seed)
    augmented = [(n, Target.of(i, random_augmentation(rng)))
                 for n, (i, split) in enumerate(zip(items, splits)) if split == Split.TRAIN for _ in range(augment)]
    all_items = items + [items[n] for n, _ in augmented]
    all_targets = [Target.of(i) for i in items] + [target for _, target in augmented]
    all_splits = splits + [Split.TRAIN] * len(augmented)
    all_groups = list(groups) + [groups[n] for n, _ in augmented]
    extraction = extract_features(workspace.cache, all_targets, spec, extractors,
                                  workers=workers, reporter=reporter, cancel=cancel)
    if extraction.cancelled:
        return Assembled([], [], [], np.zeros((0,), np.float32), extractors, extraction.rejections, cancelled=True)
    features, kept = load_features(workspace.cache, all_targets, extractors)
    if not kept:
        raise InputError("no segment could be featurised; see the rejected files")
    return Assembled([all_items[k] for k in kept], [all_targets[k] for k in kept], [all_splits[k] for k in kept],
                     features, extractors, extraction.rejections, groups=[all_groups[k] for k in kept])


def export_dataset(workspace, out: Path, spec: FeatureSpec, *, taxonomy: str | None = None, split_by: str = "clip",
                   val: float = 0.15, test: float = 0.15, seed: int = 0, augment: int = 0,
                   min_confidence: float = 0.0, workers: int | None = None, reporter: Reporter | None = None,
                   cancel: CancelToken | None = None) -> ExportReport:
    """Extract (through the cache) and write the labelled segments of a taxonomy as a dataset.

    `split_by="group"` keeps each source/pack in a single split; "clip" keeps each clip in one.
    `augment` bakes that many augmented copies of every training segment into the train split."""
    started = time.perf_counter()
    out = Path(out).expanduser()
    tax = workspace.taxonomy(taxonomy)
    items = workspace_items(workspace, tax.name, min_confidence)
    if not items:
        raise InputError(f"no labelled segments in taxonomy {tax.name} to export")
    report = ExportReport(str(out))
    assembled = assemble(workspace, items, spec, split_by=split_by, val=val, test=test, seed=seed, augment=augment,
                         workers=workers, reporter=reporter, cancel=cancel)
    report.rejections = assembled.rejections
    if assembled.cancelled:
        report.cancelled = True
        report.seconds = time.perf_counter() - started
        return report
    features, extractors = assembled.features, assembled.extractors
    classes = sorted(set(assembled.labels))
    class_index = {name: n for n, name in enumerate(classes)}
    files: dict[str, bytes | np.ndarray] = {}
    counts: dict[str, dict[str, int]] = {}
    sources: dict[str, list[str]] = {}
    rows_for_fingerprint = []
    for split in SPLITS:
        positions = [p for p, s in enumerate(assembled.splits) if s == split]
        chosen = [assembled.items[p] for p in positions]
        files[f"{split}_features.npy"] = (features[positions] if positions
                                          else np.zeros((0, *features.shape[1:]), np.float32))
        files[f"{split}_labels.npy"] = np.array([class_index[i.label] for i in chosen], dtype=np.int32)
        lines = [{"clip_id": i.clip_id, "path": i.path, "source": i.source, "label": i.label,
                  "segment": i.segment.key, "start_s": i.segment.start_s, "end_s": i.segment.end_s,
                  "augmented": bool(assembled.targets[p].augment)} for p, i in zip(positions, chosen)]
        with_lead_times = [{**line, "lead_time_s": i.lead_time_s} for line, i in zip(lines, chosen)]
        files[f"{split}_items.jsonl"] = "".join(json.dumps(line) + "\n" for line in with_lead_times).encode()
        counts[str(split)] = dict(sorted(Counter(i.label for i in chosen).items()))
        sources[str(split)] = sorted({i.source for i in chosen})
        rows_for_fingerprint += [{**line, "split": str(split)} for line in lines]
        if not positions and split != Split.TRAIN and (val if split == Split.VAL else test) > 0:
            report.notes.append(f"the {split} split is empty (too few {'sources' if split_by == 'group' else 'clips'})")
    code_versions = [e.cache_prefix for e in extractors]
    report.manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "taxonomy": tax.name, "classes": classes, "counts": counts, "sources": sources,
        "splits": {str(s): sum(counts[str(s)].values()) for s in SPLITS},
        "split_by": "source" if split_by == "group" else "clip", "val": val, "test": test, "seed": seed,
        "augment_copies": augment, "extractor": spec.to_dict(), "extractor_versions": code_versions,
        "feature_shape": list(features.shape[1:]),
        "fingerprint": fingerprint(rows_for_fingerprint, spec, code_versions),
    }
    files["manifest.json"] = json.dumps(report.manifest, indent=2).encode()
    _write_atomically(out, files)
    report.seconds = time.perf_counter() - started
    return report
