"""Training data: labelled features split into train / val / test, from any of three places.

- the workspace's labels (whole clips, time ranges, beat ranges; long sections become windows),
- a curated folder root (ROOT/<class>/[<pack>/]...), featurised through the cache,
- an exported dataset (its splits are kept).
Splits are stratified and grouped by source, so a pack is never heard in both training and test;
classes below `min_class_samples` are left out with a note.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.concepts import LabelledSegment, Rejection, Split
from engine.datasets.export import assemble, fingerprint, fixed_splits, window_items, workspace_items
from engine.datasets.source import curated_items, is_export, open_dataset
from engine.errors import InputError
from engine.features.spec import FeatureSpec
from engine.progress import CancelToken, Reporter

MIN_GROUPS_FOR_GROUP_SPLIT = 3
GROUPINGS = {
    "source": "by source (pack)",
    "inferred": "by groups of near-identical audio and file-name runs (the packs are unknown)",
    "clip": "by clip",
    "export": "as the exported dataset's splits",
}
UNTRUSTED_TEST = ("the test score cannot be trusted: clips of one kit may be on both sides of the split; "
                  "evaluate on other packs (`eval --dataset`) or put each pack in a subfolder")


@dataclass
class TrainingData:
    spec: FeatureSpec
    task: str  # the taxonomy, or the dataset's name
    classes: list[str]
    features: np.ndarray
    y: np.ndarray  # class indices
    splits: np.ndarray  # "train" | "val" | "test" per row
    groups: list[str]
    fingerprint: str
    label_counts: dict[str, int]  # real (not augmented) examples per class
    left_out: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    cancelled: bool = False
    targets: list = field(default_factory=list)  # the Target (clip, segment) of each row; empty for an export
    split_groups: list[str] = field(default_factory=list)  # the group each row's split kept whole
    grouping: str = "source"  # what the splits kept whole: source, inferred (GROUPINGS), clip, or export

    def __post_init__(self) -> None:
        if not self.split_groups:
            self.split_groups = list(self.groups)

    def part(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        chosen = self.splits == str(split)
        return self.features[chosen], self.y[chosen]

    def sizes(self) -> dict[str, int]:
        return {str(split): int((self.splits == str(split)).sum()) for split in (Split.TRAIN, Split.VAL, Split.TEST)}


def _rare_classes(labels: list[str], min_class_samples: int) -> dict[str, int]:
    """The classes with fewer than `min_class_samples` examples, and their counts."""
    return {label: n for label, n in sorted(Counter(labels).items()) if n < min_class_samples}


def training_items(items: list[LabelledSegment], min_class_samples: int,
                   split_by: str) -> tuple[list[LabelledSegment], dict[str, int], str]:
    """What `train` does with labelled items before splitting: the items it keeps, the classes it
    leaves out (fewer than `min_class_samples`, with their counts), and how it splits them
    (by source needs MIN_GROUPS_FOR_GROUP_SPLIT sources, else by clip)."""
    left_out = _rare_classes([item.label for item in items], min_class_samples)
    kept = [item for item in items if item.label not in left_out]
    if split_by == "group" and len({item.source for item in kept}) < MIN_GROUPS_FOR_GROUP_SPLIT:
        split_by = "clip"
    return kept, left_out, split_by


def _from_items(workspace, items: list[LabelledSegment], spec: FeatureSpec, task: str, *, min_class_samples: int,
                split_by: str, val: float, test: float, seed: int, augment: int, workers, reporter, cancel,
                rejections: list[Rejection]) -> TrainingData:
    items, left_out, chosen_split = training_items(items, min_class_samples, split_by)
    notes = [f"left out {label} ({n} < {min_class_samples} examples)" for label, n in left_out.items()]
    if len({item.label for item in items}) < 2:
        raise InputError(f"need at least 2 classes with {min_class_samples}+ examples to train; "
                         f"have {dict(Counter(item.label for item in items))} (lower --min-class-samples?)")
    groups, grouping, split_by, grouping_notes = split_groups(workspace, items, split_by, chosen_split,
                                                              workers=workers, reporter=reporter, cancel=cancel)
    notes += grouping_notes
    if asked := sum(item.asked and item.split is None and fixed == Split.TRAIN
                    for item, fixed in zip(items, fixed_splits(items))):
        notes.append(f"{asked} label{'s' if asked > 1 else ''} answering suggestions train, with the rest of "
                     f"their groups ({grouping}): clips picked for a model's doubts would bias the test")
    assembled = assemble(workspace, items, spec, split_by=split_by, val=val, test=test, seed=seed, augment=augment,
                         workers=workers, reporter=reporter, cancel=cancel, groups=groups)
    rejections = rejections + assembled.rejections
    classes = sorted(set(assembled.labels))
    index = {name: n for n, name in enumerate(classes)}
    rows = [{"clip": t.clip_id, "region": t.region_key, "label": i.label, "split": str(s)}
            for i, t, s in zip(assembled.items, assembled.targets, assembled.splits)]
    return TrainingData(
        spec=spec, task=task, classes=classes, features=assembled.features,
        y=np.array([index[label] for label in assembled.labels], dtype=np.int64),
        splits=np.array([str(s) for s in assembled.splits]), groups=[i.source for i in assembled.items],
        fingerprint=fingerprint(rows, spec, [e.cache_prefix for e in assembled.extractors]),
        label_counts=dict(sorted(Counter(i.label for i, t in zip(assembled.items, assembled.targets)
                                         if not t.augment).items())),
        left_out=left_out, notes=notes, rejections=rejections, cancelled=assembled.cancelled,
        targets=assembled.targets, split_groups=assembled.groups, grouping=grouping,
    )


def split_groups(workspace, items: list[LabelledSegment], asked: str, chosen: str, *, workers=None, reporter=None,
                 cancel=None) -> tuple[list[str] | None, str, str, list[str]]:
    """What the split keeps whole, given the split asked for and the one `training_items` chose:
    (groups, or None for the plain split_by; the grouping's name, see GROUPINGS; split_by; notes).
    With fewer than MIN_GROUPS_FOR_GROUP_SPLIT sources, groups inferred from the files, else clips."""
    if chosen == asked:
        return None, "source" if asked == "group" else "clip", asked, []
    groups = _inferred_groups(workspace, items, workers, reporter, cancel)
    count = len(set(groups))
    if count >= MIN_GROUPS_FOR_GROUP_SPLIT:
        return groups, "inferred", asked, [
            f"fewer than {MIN_GROUPS_FOR_GROUP_SPLIT} sources: split {GROUPINGS['inferred']}, {count} groups; "
            "the test score may still be optimistic (clips of one kit can differ)"]
    return None, "clip", chosen, [f"fewer than {MIN_GROUPS_FOR_GROUP_SPLIT} sources and groups: split by clip; "
                                  f"{UNTRUSTED_TEST}"]


def _inferred_groups(workspace, items: list[LabelledSegment], workers, reporter, cancel) -> list[str]:
    """Groups of near-identical audio (on dsp features, through the cache) and file-name runs within
    each source (`datasets.grouping`); an item that cannot be featurised is a group of its own."""
    from engine.datasets.grouping import infer_groups
    from engine.features.extract import Target, extract_features, load_features

    spec = FeatureSpec.parse("dsp")
    extractors = spec.extractors(workspace.embeddings_dir)
    targets = [Target.of(item) for item in items]
    extract_features(workspace.cache, targets, spec, extractors, workers=workers, reporter=reporter, cancel=cancel)
    features, kept = load_features(workspace.cache, targets, extractors)
    groups = [item.clip_id for item in items]
    if kept:
        chosen = [items[k] for k in kept]
        inferred = infer_groups([i.path for i in chosen], [i.label for i in chosen], [i.source for i in chosen], features)
        for k, group in zip(kept, inferred):
            groups[k] = group
    return groups


def _from_export(path: Path, spec: FeatureSpec | None, workspace, min_class_samples: int) -> TrainingData:
    dataset = open_dataset(path, workspace, spec=spec)
    left_out = _rare_classes(dataset.labels, min_class_samples)
    keep = np.array([label not in left_out for label in dataset.labels])
    classes = sorted(set(dataset.labels) - set(left_out))
    index = {name: n for n, name in enumerate(classes)}
    labels = [label for label, kept in zip(dataset.labels, keep) if kept]
    manifest_fingerprint = fingerprint([{"dataset": str(path), "labels": labels}], dataset.spec, [])
    return TrainingData(
        spec=dataset.spec, task=path.name, classes=classes, features=dataset.features[keep],
        y=np.array([index[label] for label in labels], dtype=np.int64),
        splits=np.array([str(s) for s, kept in zip(dataset.splits, keep) if kept]),
        groups=[g for g, kept in zip(dataset.groups, keep) if kept], fingerprint=manifest_fingerprint,
        label_counts=dict(sorted(Counter(labels).items())), left_out=left_out,
        notes=[f"left out {label} ({n} < {min_class_samples} examples)" for label, n in left_out.items()],
        grouping="export",
    )


def training_data(workspace, spec: FeatureSpec | None, *, dataset: Path | None = None, taxonomy: str | None = None,
                  window_s: float | None = None, min_class_samples: int = 10, min_confidence: float = 0.0,
                  split_by: str = "group", val: float = 0.15, test: float = 0.15, seed: int = 0, augment: int = 0,
                  workers: int | None = None, reporter: Reporter | None = None,
                  cancel: CancelToken | None = None) -> TrainingData:
    """Labelled, split features for training, from the workspace's labels or a dataset path."""
    if dataset is not None:
        dataset = Path(dataset).expanduser().resolve()
        if is_export(dataset):
            return _from_export(dataset, spec, workspace, min_class_samples)
        tax = workspace.taxonomy(taxonomy) if taxonomy else None
        items, rejections = curated_items(dataset, tax, workspace, workers=workers, reporter=reporter, cancel=cancel)
        return _from_items(workspace, items, spec or FeatureSpec.parse("dsp"), tax.name if tax else dataset.name,
                           min_class_samples=min_class_samples, split_by=split_by, val=val, test=test, seed=seed,
                           augment=augment, workers=workers, reporter=reporter, cancel=cancel, rejections=rejections)
    tax = workspace.taxonomy(taxonomy)
    items = window_items(workspace_items(workspace, tax.name, min_confidence), window_s)
    if not items:
        raise InputError(f"no labelled segments in taxonomy {tax.name}; label some clips first")
    return _from_items(workspace, items, spec or FeatureSpec.parse("dsp"), tax.name,
                       min_class_samples=min_class_samples, split_by=split_by, val=val, test=test, seed=seed,
                       augment=augment, workers=workers, reporter=reporter, cancel=cancel, rejections=[])
