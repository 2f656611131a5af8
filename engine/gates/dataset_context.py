"""What the dataset gates look at, computed once per run and only when a gate asks for it.

The labelled segments of one taxonomy in the workspace (the same rows `train` reads), the clips
behind them with the levels measured at import, every path a clip's bytes were seen at, beat
grids, the train/val/test split `train` would assign with its defaults, and feature vectors
from the feature cache (missing ones are extracted on the way).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.audio.beatgrid import BeatGrid
from engine.concepts import Clip, LabelledSegment, Split
from engine.datasets.export import fingerprint, split_items, workspace_items
from engine.datasets.mislabels import Mislabels, OutOfFold, confident_learning, out_of_fold_probabilities
from engine.datasets.similarity import NearDuplicates, near_duplicate_pairs
from engine.errors import Cancelled, InputError
from engine.features.extract import Target, extract_features, load_features
from engine.features.spec import FeatureSpec
from engine.progress import CancelToken, Reporter
from engine.store.clips import clips_by_ids
from engine.store.grids import grids_by_clip
from engine.store.labels import labelled_clip_paths, technique_counts
from engine.training.data import split_groups, training_items


@dataclass(frozen=True)
class SplitPlan:
    """How `train` splits by default (see TrainRequest); the leakage gate checks this split."""

    split_by: str = "group"
    val: float = 0.15
    test: float = 0.15
    seed: int = 0
    min_class_samples: int = 10


@dataclass(frozen=True)
class MislabelSearch:
    out_of_fold: OutOfFold
    found: Mislabels
    rows: np.ndarray  # item index of each row the search ran over
    classes: list[str]


class DatasetContext:
    def __init__(self, workspace, taxonomy: str | None = None, features: str | FeatureSpec = "dsp",
                 reporter: Reporter | None = None, cancel: CancelToken | None = None, *,
                 workers: int | None = None, plan: SplitPlan = SplitPlan()) -> None:
        self.workspace = workspace
        self.taxonomy = workspace.taxonomy(taxonomy)
        self.spec = features if isinstance(features, FeatureSpec) else FeatureSpec.parse(features)
        self.reporter = reporter
        self.cancel = cancel
        self.workers = workers
        self.plan = plan
        self._near: dict[float, NearDuplicates] = {}
        self._mislabels: dict[tuple, MislabelSearch] = {}

    # -- labels and clips --------------------------------------------------------------------
    @cached_property
    def items(self) -> list[LabelledSegment]:
        """Every labelled segment of the taxonomy, as `train` reads them."""
        return workspace_items(self.workspace, self.taxonomy.name)

    @cached_property
    def known(self) -> np.ndarray:
        """Indices of the items whose label belongs to the taxonomy."""
        names = set(self.taxonomy.names)
        return np.array([n for n, item in enumerate(self.items) if item.label in names], dtype=np.int64)

    @cached_property
    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.items[n].label for n in self.known).items()))

    @cached_property
    def unknown_counts(self) -> dict[str, int]:
        names = set(self.taxonomy.names)
        return dict(sorted(Counter(i.label for i in self.items if i.label not in names).items()))

    @cached_property
    def technique_counts(self) -> dict[str, dict[str, int]]:
        """Labelled segments carrying each technique, by technique, then label."""
        with self.workspace.db.transaction(read_only=True) as con:
            return technique_counts(con, self.taxonomy.name)

    @cached_property
    def clips(self) -> dict[str, Clip]:
        with self.workspace.db.transaction(read_only=True) as con:
            return clips_by_ids(con, sorted({item.clip_id for item in self.items}))

    @cached_property
    def clip_paths(self) -> dict[str, list[str]]:
        """Every path each labelled clip's bytes were seen at."""
        with self.workspace.db.transaction(read_only=True) as con:
            return labelled_clip_paths(con, self.taxonomy.name)

    @cached_property
    def grids(self) -> dict[str, BeatGrid]:
        with self.workspace.db.transaction(read_only=True) as con:
            return grids_by_clip(con)

    @cached_property
    def beat_labels(self) -> list[LabelledSegment]:
        """The items labelled on a beat range."""
        return [item for item in self.items if item.segment.is_beat_range]

    # -- the split train would use -------------------------------------------------------------
    @cached_property
    def _training(self) -> tuple[list[LabelledSegment], str, list[str] | None, str]:
        """The items `train` keeps under its defaults, whether it splits them by 'group' or 'clip',
        the groups it keeps whole (None: by source or clip) and the grouping's name."""
        kept, _, chosen = training_items(self.items, self.plan.min_class_samples, self.plan.split_by)
        groups, grouping, split_by, _ = split_groups(self.workspace, kept, self.plan.split_by, chosen,
                                                     workers=self.workers, reporter=self.reporter, cancel=self.cancel)
        return kept, split_by, groups, grouping

    @property
    def split_by(self) -> str:
        return self._training[1]

    @property
    def grouping(self) -> str:
        """What the split keeps whole: source, inferred or clip (training.data.GROUPINGS)."""
        return self._training[3]

    @cached_property
    def splits(self) -> list[Split | None]:
        """Each item's split under `train`'s defaults; None for items of classes it leaves out."""
        kept, split_by, groups, _ = self._training
        assigned = split_items(kept, split_by=split_by, val=self.plan.val, test=self.plan.test, seed=self.plan.seed,
                               groups=groups)
        split_of = {id(item): split for item, split in zip(kept, assigned)}
        return [split_of.get(id(item)) for item in self.items]

    # -- features ------------------------------------------------------------------------------
    @cached_property
    def featurised(self) -> tuple[np.ndarray, np.ndarray]:
        """(features, item indices) of the known-label items whose features could be made."""
        targets = [Target.of(self.items[n]) for n in self.known]
        if not targets:
            return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64)
        extractors = self.spec.extractors(self.workspace.embeddings_dir)
        report = extract_features(self.workspace.cache, targets, self.spec, extractors, workers=self.workers,
                                  reporter=self.reporter, cancel=self.cancel)
        if report.cancelled:
            raise Cancelled("feature extraction for the dataset gates was cancelled; extracted features were kept")
        features, kept = load_features(self.workspace.cache, targets, extractors)
        if not kept:
            raise InputError(f"no labelled segment of {self.taxonomy.name} could be featurised with {self.spec}")
        return features.reshape(len(kept), -1), self.known[np.asarray(kept, dtype=np.int64)]

    def near_duplicates(self, threshold: float) -> NearDuplicates:
        """Near-duplicate pairs of segments of different clips (two regions of one clip, e.g. repeated
        sections, are not duplicates) over the featurised rows (row indices into `featurised`)."""
        if threshold not in self._near:
            features, rows = self.featurised
            clips = [self.items[n].clip_id for n in rows]
            self._near[threshold] = near_duplicate_pairs(features, threshold, groups=clips)
        return self._near[threshold]

    def mislabels(self, folds: int, group_by: str, seed: int = 0) -> MislabelSearch:
        """Confident-learning suspects over the featurised rows of classes with at least two rows."""
        key = (folds, group_by, seed)
        if key not in self._mislabels:
            features, rows = self.featurised
            labels = [self.items[n].label for n in rows]
            counts = Counter(labels)
            usable = np.array([counts[label] >= 2 for label in labels], dtype=bool)
            classes = sorted({label for label in labels if counts[label] >= 2})
            if len(classes) < 2:
                raise InputError("likely mislabels need at least two classes with two or more featurised segments")
            index = {name: n for n, name in enumerate(classes)}
            y = np.array([index[label] for label, keep in zip(labels, usable) if keep], dtype=np.int64)
            chosen = rows[usable]
            groups = [self.items[n].source if group_by == "source" else self.items[n].clip_id for n in chosen]
            out_of_fold = out_of_fold_probabilities(features[usable], y, groups, len(classes), folds=folds, seed=seed,
                                                    cancel=self.cancel)
            self._mislabels[key] = MislabelSearch(out_of_fold, confident_learning(out_of_fold.probabilities, y),
                                                  chosen, classes)
        return self._mislabels[key]

    # -- what the report is about --------------------------------------------------------------
    @cached_property
    def fingerprint(self) -> str:
        """The fingerprint `train` gives this data with its defaults (when every segment featurises)."""
        rows = [{"clip": item.clip_id, "region": item.segment.region_key, "label": item.label,
                 "split": str(split)} for item, split in zip(self.items, self.splits) if split is not None]
        code_versions = [e.cache_prefix for e in self.spec.extractors(self.workspace.embeddings_dir)]
        return fingerprint(rows, self.spec, code_versions)

    def describe(self, index: int) -> dict:
        """An item as a report names it: clip, path, label, source, segment, split."""
        item = self.items[index]
        split = self.splits[index]
        return {"clip_id": item.clip_id, "path": item.path, "label": item.label,
                "source": item.source, "segment": item.segment.key, "split": str(split) if split else None}

    def subject(self) -> dict:
        return {"scope": "dataset", "workspace": str(self.workspace.root), "taxonomy": self.taxonomy.name,
                "features": str(self.spec), "segments": len(self.items),
                "clips": len({i.clip_id for i in self.items}),
                "sources": len({i.source for i in self.items}), "split_by": self.split_by,
                "class_counts": self.class_counts, "unknown_labels": self.unknown_counts,
                "technique_counts": {name: sum(by_label.values()) for name, by_label in self.technique_counts.items()},
                "dataset_fingerprint": self.fingerprint}
