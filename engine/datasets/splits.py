"""Train/val/test splits stratified by class, with groups kept whole.

A group (a clip, or a source/pack with `--split group`) always lands in one split, so no pack
is heard both in training and in testing. Groups are placed largest first into the split that
most lacks their classes, which keeps each class close to the asked fractions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from engine.concepts import Split
from engine.errors import InputError

SPLITS = (Split.TRAIN, Split.VAL, Split.TEST)


def assign_splits(labels: Sequence[str], groups: Sequence[str], fixed: Sequence[Split | None] | None = None, *,
                  val: float = 0.15, test: float = 0.15, seed: int = 0) -> list[Split]:
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise InputError(f"split fractions must be between 0 and 1 and leave room for training (val={val}, test={test})")
    fixed = fixed or [None] * len(labels)
    fractions = {Split.TRAIN: 1.0 - val - test, Split.VAL: val, Split.TEST: test}
    members: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    totals = Counter(labels)
    placed: dict[Split, Counter] = {split: Counter() for split in SPLITS}
    chosen: dict[str, Split] = {}
    for group, indices in members.items():
        pinned = next((fixed[i] for i in indices if fixed[i] is not None), None)
        if pinned is not None:
            chosen[group] = pinned
            placed[pinned].update(labels[i] for i in indices)
    free = [g for g in members if g not in chosen]
    order = np.random.default_rng(seed).permutation(len(free))
    free = sorted((free[i] for i in order), key=lambda g: -len(members[g]))
    for group in free:
        counts = Counter(labels[i] for i in members[group])

        def shortfall(split: Split) -> float:
            return sum(n * (fractions[split] * totals[c] - placed[split][c]) / totals[c] for c, n in counts.items())

        best = max(SPLITS, key=shortfall)  # ties go to train, the first
        chosen[group] = best
        placed[best].update(counts)
    _give_each_split_a_group(chosen, members, fractions, free)
    return [chosen[group] for group in groups]


def _give_each_split_a_group(chosen: dict[str, Split], members: dict[str, list[int]],
                             fractions: dict[Split, float], movable: list[str]) -> None:
    """With few large groups the greedy pass can leave val or test empty (3 packs: 2 to train,
    1 to val); move the smallest movable training group into each empty split that was asked for,
    as long as training keeps at least one group."""
    for split in (Split.TEST, Split.VAL):
        if fractions[split] == 0 or split in chosen.values():
            continue
        in_train = [g for g in movable if chosen[g] == Split.TRAIN]
        if len([g for g in chosen if chosen[g] == Split.TRAIN]) < 2 or not in_train:
            return
        chosen[min(in_train, key=lambda g: len(members[g]))] = split


def grouped_folds(labels: Sequence[str], groups: Sequence[str], folds: int, *, seed: int = 0) -> np.ndarray:
    """The fold (0..folds-1) of each row for cross-validation: every group in one fold, each fold's
    classes close to the whole's (scikit-learn's StratifiedGroupKFold, shuffled by `seed`)."""
    from sklearn.model_selection import StratifiedGroupKFold

    count = len(set(groups))
    if folds < 2 or count < folds:
        raise InputError(f"cross-validation needs at least 2 folds and a group per fold: asked for {folds} folds "
                         f"over {count} groups (sources)")
    fold_of = np.zeros(len(labels), dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), list(labels), list(groups))):
        fold_of[held_out] = fold
    return fold_of
