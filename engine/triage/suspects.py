"""Triage: the segments a person should listen to first, most suspicious first.

Suspects come from the same computations as the dataset gates (so a list and a failing gate
always agree), ordered by kind, then by score within a kind:

1. conflicting duplicate: near-identical audio carrying two different labels (one is wrong);
   score = cosine similarity;
2. likely mislabel: confident learning on out-of-fold probabilities; score = p(suggested) - p(given);
3. leaked duplicate: near-identical audio (same label) in two of train/val/test; score = similarity;
4. near duplicate: near-identical audio, same label and split (redundant); score = similarity.

A pair is listed once, under its first segment, with the other segment in `other`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.gates.core import default_settings
from engine.gates.dataset_context import DatasetContext

KINDS = ("conflicting_duplicate", "likely_mislabel", "leaked_duplicate", "near_duplicate")


@dataclass(frozen=True)
class Suspect:
    kind: str  # one of KINDS
    score: float
    clip_id: str
    path: str
    label: str
    source: str
    segment: str
    split: str | None
    suggested: str | None = None  # a label to consider instead (mislabels, conflicting duplicates)
    other: dict | None = None  # the other segment of a duplicate pair
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _pair_suspects(context: DatasetContext, similarity: float) -> list[Suspect]:
    _, rows = context.featurised
    pairs = context.near_duplicates(similarity)
    found = []
    for first, second, score in zip(pairs.first, pairs.second, pairs.similarity):
        a, b = context.describe(int(rows[first])), context.describe(int(rows[second]))  # of two clips
        if a["label"] != b["label"]:
            kind, suggested = "conflicting_duplicate", b["label"]
        elif a["split"] and b["split"] and a["split"] != b["split"]:
            kind, suggested = "leaked_duplicate", None
        else:
            kind, suggested = "near_duplicate", None
        found.append(Suspect(kind, round(float(score), 5), a["clip_id"], a["path"], a["label"], a["source"],
                             a["segment"], a["split"], suggested, b, f"cosine {score:.4f} to {b['path']}"))
    return found


def _mislabel_suspects(context: DatasetContext, folds: int, group_by: str) -> list[Suspect]:
    if len(context.class_counts) < 2:
        return []
    search = context.mislabels(folds, group_by)
    found = []
    for row, suggested, margin in zip(search.found.rows, search.found.suggested, search.found.margin):
        item = context.describe(int(search.rows[row]))
        given = search.classes.index(item["label"])
        probabilities = search.out_of_fold.probabilities[row]
        found.append(Suspect("likely_mislabel", round(float(margin), 4), item["clip_id"], item["path"], item["label"],
                             item["source"], item["segment"], item["split"], search.classes[suggested],
                             detail=f"p({search.classes[suggested]}) {probabilities[suggested]:.2f} vs "
                                    f"p({item['label']}) {probabilities[given]:.2f}"))
    return found


def suspects(context: DatasetContext, settings: dict | None = None, limit: int | None = None) -> list[Suspect]:
    """Likely mislabels and near-duplicate pairs of the context's dataset, most suspicious first.
    `settings` are gate settings (`load_settings`): the near-duplicate similarity and the
    mislabel folds and grouping are the gates' own."""
    settings = settings or default_settings()
    near = settings["dataset.near_duplicates"]
    mislabel = settings["dataset.likely_mislabels"]
    found = _pair_suspects(context, near["similarity"]) + _mislabel_suspects(context, mislabel["folds"],
                                                                             mislabel["group_by"])
    rank = {kind: n for n, kind in enumerate(KINDS)}
    order = np.lexsort(([-s.score for s in found], [rank[s.kind] for s in found])) if found else []
    ordered = [found[n] for n in order]
    return ordered[:limit] if limit else ordered
