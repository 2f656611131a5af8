"""Groups for splitting when the packs are unknown.

A curated folder without pack subfolders (ROOT/<class>/*.wav) is one source, and a split by clip
puts velocity layers, gain-scaled copies and the other hits of one kit on both sides: validation,
early stopping and the test score then hear the kits being trained on. So within each known source
the clips are grouped by what can be known from the files:

- near-identical audio: rows whose dsp features point the same way (`similarity.near_duplicate_pairs`,
  cosine >= 0.999; a copy at another gain scores 1.0),
- runs of files sharing a name prefix once trailing numbers are dropped (`Kick_Acoustic_01..05`);
  a run that holds more than half of its class names the class, not a kit, and is ignored.

Rows joined by either rule, directly or through others, form one group.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.datasets.similarity import DEFAULT_SIMILARITY, near_duplicate_pairs

# trailing numbering: "_01", "-2", " 3", "_v2", "_vel127", "_take3", repeated ("_01_v2")
_NUMBERING = re.compile(r"(?:[\s_.\-]*(?:v|vel|velocity|take|layer|rr)?\d+)+$", re.IGNORECASE)
MAX_RUN_SHARE = 0.5  # a prefix run with more than this share of its class is the class's name


def name_prefix(path: str) -> str:
    """A file's name without its extension and trailing numbering, case-folded; '' when nothing is left."""
    return _NUMBERING.sub("", Path(path).stem).strip(" _-.").casefold()


def infer_groups(paths: Sequence[str], labels: Sequence[str], sources: Sequence[str], features: np.ndarray, *,
                 threshold: float = DEFAULT_SIMILARITY) -> list[str]:
    """One group name per row: rows of one source joined by near-identical features or by a run of
    file names sharing a prefix. A group's name is its source and its first member's prefix (or stem)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    count = len(paths)
    if count == 0:
        return []
    pairs = near_duplicate_pairs(features, threshold)
    first, second = list(pairs.first), list(pairs.second)
    prefixes = [name_prefix(p) for p in paths]
    class_sizes = Counter(zip(sources, labels))
    run_sizes = Counter(zip(sources, prefixes))
    naming_a_class = {(source, prefix) for (source, prefix, label), n in Counter(zip(sources, prefixes, labels)).items()
                      if n > MAX_RUN_SHARE * class_sizes[(source, label)]}
    first_of_run: dict[tuple[str, str], int] = {}
    for row in range(count):
        key = (sources[row], prefixes[row])
        if not key[1] or run_sizes[key] < 2 or key in naming_a_class:
            continue
        first.append(first_of_run.setdefault(key, row))
        second.append(row)
    for row in range(count):  # rows of different sources never join
        first.append(row)
        second.append(row)
    keep = [k for k in range(len(first)) if sources[first[k]] == sources[second[k]]]
    graph = coo_matrix((np.ones(len(keep)), ([first[k] for k in keep], [second[k] for k in keep])),
                       shape=(count, count))
    _, component = connected_components(graph, directed=False)
    names: dict[int, str] = {}
    for row in range(count):
        if component[row] not in names:
            names[component[row]] = f"{sources[row]}/{prefixes[row] or Path(paths[row]).stem}#{component[row]}"
    return [names[component[row]] for row in range(count)]
