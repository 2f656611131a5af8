"""Analyses checked against a reference implementation on the same inputs (issue 10, items 17-20):
boundary matching against mir_eval, the capped near-duplicate search against the full similarity
matrix, channel alignment against scipy.signal, and the open-set distance against scipy's
standardised Euclidean distance."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from mir_eval.util import match_events
from scipy.signal import correlate, correlation_lags
from scipy.spatial.distance import cdist

from engine.audio.alignment import channel_lags, lag_seconds
from engine.datasets.similarity import near_duplicate_pairs, unit_rows
from engine.evaluation.boundaries import matched
from engine.evaluation.openset import Centroids

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


# -- 19. alignment ---------------------------------------------------------------------------------

RATE = 8000


def delayed(source: np.ndarray, lag: int) -> np.ndarray:
    """`source` heard `lag` samples later (earlier when negative), padded with silence."""
    return np.roll(source, lag) * (np.arange(len(source)) >= lag) * (np.arange(len(source)) < len(source) + lag)


def scipy_lag(reference: np.ndarray, other: np.ndarray, reach: int) -> int:
    correlation = correlate(other, reference, mode="full")
    lags = correlation_lags(len(other), len(reference), mode="full")
    within = np.abs(lags) <= reach
    return int(lags[within][np.argmax(np.abs(correlation[within]))])


def test_an_inverted_channel_reports_its_true_lag():
    rng = np.random.default_rng(5)
    source = rng.standard_normal(RATE)
    assert lag_seconds(source, -delayed(source, 5), RATE, 0.05) * RATE == pytest.approx(5, abs=0.05)


def test_lags_agree_with_scipy_on_random_channels_of_either_polarity():
    rng = np.random.default_rng(19)
    reach = int(0.01 * RATE)
    for _ in range(200):
        source = np.convolve(rng.standard_normal(2000), rng.uniform(0, 1, 8), mode="same")  # coloured noise
        lag, polarity = int(rng.integers(-reach, reach + 1)), rng.choice([-1.0, 1.0])
        other = polarity * rng.uniform(0.2, 2.0) * delayed(source, lag) + 0.3 * rng.standard_normal(2000)
        measured = lag_seconds(source, other, RATE, 0.01) * RATE
        assert round(measured) == scipy_lag(source, other, reach) == lag


def test_a_silent_channel_has_no_lag(tmp_path):
    rng = np.random.default_rng(6)
    source = 0.5 * rng.standard_normal(RATE)
    noise_floor = 1e-4 * rng.standard_normal(RATE)  # -80 dBFS: a dead microphone's hiss
    path = tmp_path / "four.wav"
    soundfile.write(path, np.stack([source, delayed(source, 16), np.zeros(RATE), noise_floor], axis=1), RATE,
                    subtype="FLOAT")
    channels, lags = channel_lags(path)
    assert channels == 4 and lags[0] * RATE == pytest.approx(16, abs=0.05) and lags[1:] == [None, None]
    silent_first = tmp_path / "silent_first.wav"
    soundfile.write(silent_first, np.stack([np.zeros(RATE), source], axis=1), RATE, subtype="FLOAT")
    assert channel_lags(silent_first) == (2, [None])


# -- 20. open-set distance -------------------------------------------------------------------------

def test_open_set_distance_leaves_out_features_constant_in_training_and_agrees_with_scipy():
    rng = np.random.default_rng(20)
    y = np.repeat(np.arange(3), 30)
    train = rng.normal(size=(90, 5)) + 3 * y[:, None]
    train[:, 2] = 0.25  # a feature that never varies in training
    centroids = Centroids.fit(train, y, 3)
    test = rng.normal(size=(20, 5)) + 3
    test[:, 2] = 0.25 + rng.uniform(-0.1, 0.1, 20)
    varies = [0, 1, 3, 4]
    means = np.stack([train[y == k][:, varies].mean(axis=0) for k in range(3)])
    reference = cdist(test[:, varies], means, "seuclidean", V=train[:, varies].var(axis=0)).min(axis=1)
    assert centroids.nearest_distance(test) == pytest.approx(reference, rel=1e-9)
    assert centroids.nearest_distance(test).max() < 20  # a 0.1 deviation over a 1e-6 floor scored 1e5

    saved = centroids.to_dict()  # a record saved before kept the constant feature at a scale of 1e-6
    saved["scale"][2] = 1e-6
    assert Centroids.from_dict(saved).nearest_distance(test) == pytest.approx(reference, rel=1e-9)
