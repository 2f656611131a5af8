"""Reading a labelled dataset from a path: an export folder (manifest.json) or a curated folder
root (ROOT/<class>/...). Anything that accepts a dataset accepts either.

A curated folder is featurised through the workspace's cache (clips are known by content hash),
so it is not imported into the library, and a second read decodes nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.concepts import LabelledSegment, Reason, Rejection, Segment, Split
from engine.datasets.export import FORMAT
from engine.errors import InputError
from engine.features.extract import Target, extract_features, load_features
from engine.features.spec import FeatureSpec
from engine.library.clips import identify_files
from engine.library.scan import find_audio_files, folder_roles
from engine.progress import CancelToken, Reporter
from engine.taxonomy import Taxonomy, normalise_label


@dataclass
class LabelledFeatures:
    kind: str  # "export" or "curated"
    path: str
    spec: FeatureSpec
    features: np.ndarray
    labels: list[str]
    groups: list[str]  # the source/pack of each row
    splits: list[Split | None]  # an export's splits; None for a curated folder
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))

    def summary(self) -> dict:
        counts = Counter(self.labels)
        return {"kind": self.kind, "path": self.path, "extractor": str(self.spec), "rows": len(self.labels),
                "feature_shape": list(self.features.shape[1:]), "classes": self.classes,
                "counts": dict(sorted(counts.items())), "sources": sorted(set(self.groups)),
                "rejected": len(self.rejections), "rejections": [r.to_dict() for r in self.rejections]}


def is_export(path: Path) -> bool:
    return (path / "manifest.json").is_file()


def _read_export(path: Path, spec: FeatureSpec | None) -> LabelledFeatures:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path / 'manifest.json'}: cannot read the dataset manifest ({error})") from error
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path / 'manifest.json'}: not a workbench dataset (format {manifest.get('format')!r})")
    exported = FeatureSpec(manifest["extractor"]["kind"], manifest["extractor"]["model"], manifest["extractor"]["params"])
    if spec is not None and (spec.kind, spec.model, spec.params) != (exported.kind, exported.model, exported.params):
        raise InputError(f"{path} holds {exported} features, not {spec}; export it again with --extractor {spec}")
    blocks, labels, groups, splits = [], [], [], []
    for split in (Split.TRAIN, Split.VAL, Split.TEST):
        try:
            features = np.load(path / f"{split}_features.npy", allow_pickle=False)
            indices = np.load(path / f"{split}_labels.npy", allow_pickle=False)
            items = [json.loads(line) for line in (path / f"{split}_items.jsonl").read_text().splitlines() if line]
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: the {split} split is missing or damaged ({error})") from error
        if not (len(features) == len(indices) == len(items)):
            raise InputError(f"{path}: the {split} split's arrays and items disagree in length")
        blocks.append(features)
        labels += [manifest["classes"][i] for i in indices]
        groups += [item["source"] for item in items]
        splits += [split] * len(items)
    return LabelledFeatures("export", str(path), exported, np.concatenate(blocks), labels, groups, splits)


def curated_items(path: Path, taxonomy: Taxonomy | None, workspace, *, workers: int | None = None,
                  reporter: Reporter | None = None,
                  cancel: CancelToken | None = None) -> tuple[list[LabelledSegment], list[Rejection]]:
    """The labelled clips of a curated folder root (ROOT/<class>/[<pack>/]...), identified by content
    hash (files the workspace already knows unchanged are not read again) but not imported."""
    found, _ = find_audio_files(path)
    roles = {str(f): folder_roles(path, f, curated=True) for f in found}
    roles = {file: role for file, role in roles.items() if role[0] is not None}
    if not roles:
        raise InputError(f"{path}: neither a dataset export (no manifest.json) nor a curated folder (<class>/<audio>)")
    probed, rejections = identify_files(workspace, list(roles), workers=workers, reporter=reporter, cancel=cancel)
    items: list[LabelledSegment] = []
    for file in sorted(probed):
        class_folder, pack = roles[file]
        label = taxonomy.resolve(class_folder) if taxonomy else normalise_label(class_folder)
        if label is None:
            rejections.append(Rejection(file, Reason.UNKNOWN_LABEL, f"folder {class_folder!r} is not in {taxonomy.name}"))
            continue
        items.append(LabelledSegment(probed[file].clip_id, file, probed[file].size_bytes, pack or path.name,
                                     Segment.whole(), label))
    return items, rejections


def _read_curated(path: Path, spec: FeatureSpec, workspace, taxonomy: Taxonomy | None, workers: int | None,
                  reporter: Reporter | None, cancel: CancelToken | None) -> LabelledFeatures:
    items, rejections = curated_items(path, taxonomy, workspace, workers=workers, reporter=reporter, cancel=cancel)
    extractors = spec.extractors(workspace.embeddings_dir)
    targets = [Target.of(i) for i in items]
    report = extract_features(workspace.cache, targets, spec, extractors, workers=workers, reporter=reporter,
                              cancel=cancel)
    rejections += report.rejections
    features, kept = load_features(workspace.cache, targets, extractors)
    return LabelledFeatures("curated", str(path), spec, features, [items[k].label for k in kept],
                            [items[k].source for k in kept], [None] * len(kept), rejections)


def open_dataset(path: Path, workspace, *, spec: FeatureSpec | None = None, taxonomy: str | None = None,
                 workers: int | None = None, reporter: Reporter | None = None,
                 cancel: CancelToken | None = None) -> LabelledFeatures:
    """The labelled features of an export folder or of a curated folder root."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise InputError(f"{path}: no such dataset folder")
    if is_export(path):
        return _read_export(path, spec)
    tax = workspace.taxonomy(taxonomy) if taxonomy else None
    return _read_curated(path, spec or FeatureSpec.parse("dsp"), workspace, tax, workers, reporter, cancel)
