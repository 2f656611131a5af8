"""Evaluating a registered model version on any labelled dataset: a curated folder or an export.

The dataset is featurised with the version's own feature spec (through the cache); rows whose
label the model does not know are left out and counted in a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.concepts import Rejection
from engine.datasets.source import LabelledFeatures, open_dataset
from engine.errors import InputError
from engine.evaluation.metrics import Evaluation, evaluate
from engine.progress import CancelToken, Reporter
from engine.models.registry import ModelVersion, load_classifier, resolve


@dataclass
class DatasetEvaluation:
    version: ModelVersion
    dataset: str
    evaluation: Evaluation
    notes: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"model": self.version.ref, "dataset": self.dataset, "metrics": self.evaluation.to_dict(),
                "notes": self.notes, "rejections": [r.to_dict() for r in self.rejections]}


def known_rows(version: ModelVersion, data: LabelledFeatures) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Which rows of a labelled dataset carry a class of the version, their class indices, and a
    note on the rows left out."""
    classes = version.label_set
    known = np.array([label in classes for label in data.labels], dtype=bool)
    notes = []
    if not known.all():
        unknown = sorted({label for label in data.labels if label not in classes})
        notes.append(f"left out {int((~known).sum())} rows with labels the model does not know: {', '.join(unknown)}")
    if not known.any():
        raise InputError(f"{data.path}: none of its labels ({', '.join(data.classes)}) are classes of {version.ref}")
    return known, np.array([classes.index(label) for label, keep in zip(data.labels, known) if keep]), notes


def evaluate_on_dataset(workspace, ref: str, dataset: Path, *, taxonomy: str | None = None, seed: int = 0,
                        workers: int | None = None, reporter: Reporter | None = None,
                        cancel: CancelToken | None = None) -> DatasetEvaluation:
    version = resolve(workspace, ref)
    data = open_dataset(dataset, workspace, spec=version.spec, taxonomy=taxonomy or version.task_taxonomy(workspace),
                        workers=workers, reporter=reporter, cancel=cancel)
    classes = version.label_set
    known, y, notes = known_rows(version, data)
    probabilities = load_classifier(version).predict_proba(data.features[known])
    return DatasetEvaluation(version, data.path, evaluate(y, probabilities, classes, seed=seed), notes,
                             data.rejections)
