"""Kit-randomising augmentation: seeded, and each effect does what its name says (the filters'
magnitudes checked against scipy's analog Butterworth design)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from engine.audio.augment import apply_augmentation, eq_curve_db, random_augmentation
from engine.audio.synth import DEMO_PACKS, synthesize_hit

SR = 44100


def snare() -> np.ndarray:
    pack = DEMO_PACKS[0]
    from engine.audio.decode import resample

    return resample(synthesize_hit("snare", pack, np.random.default_rng(1)), pack.sample_rate, SR)


def band_db(samples: np.ndarray, low: float, high: float) -> float:
    freqs, power = signal.welch(samples, SR, nperseg=2048)
    return float(10 * np.log10(power[(freqs >= low) & (freqs < high)].sum()))


def test_same_seed_same_audio_and_another_seed_other_audio():
    hit = snare()
    assert random_augmentation(np.random.default_rng(7)) == random_augmentation(np.random.default_rng(7))
    augmentation = random_augmentation(np.random.default_rng(7))
    names = {name for name, _ in augmentation}
    assert {"semitones", "stretch", "attack_db", "drive_db", "tilt_db_oct", "highpass_hz", "lowpass_hz",
            "room_rt60_s", "noise_snr_db", "gain_db"} <= names
    first = apply_augmentation(hit, SR, augmentation, seed=3)
    np.testing.assert_array_equal(first, apply_augmentation(hit, SR, augmentation, seed=3))
    other = apply_augmentation(hit, SR, augmentation, seed=4)
    assert first.shape == other.shape and not np.array_equal(first, other)
    assert first.dtype == np.float32 and np.all(np.isfinite(first))
    assert random_augmentation(np.random.default_rng(7), "basic")[0][0] == "gain_db"
    with pytest.raises(ValueError, match="profile"):
        random_augmentation(np.random.default_rng(7), "loud")


def test_filter_magnitudes_match_scipy_butterworth():
    freqs = np.geomspace(20, 20000, 200)
    for name, btype in (("lowpass_hz", "low"), ("highpass_hz", "high")):
        b, a = signal.butter(2, 2 * np.pi * 1000.0, btype=btype, analog=True)
        _, response = signal.freqs(b, a, worN=2 * np.pi * freqs)
        np.testing.assert_allclose(eq_curve_db(freqs, {name: 1000.0}), 20 * np.log10(np.abs(response)), atol=1e-6)
    tilt = eq_curve_db(np.array([500.0, 1000.0, 4000.0]), {"tilt_db_oct": -3.0})
    np.testing.assert_allclose(tilt, [3.0, 0.0, -6.0])


def test_eq_tilt_and_lowpass_move_the_spectrum():
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    low = apply_augmentation(noise, SR, (("lowpass_hz", 2000.0),), seed=0)
    assert band_db(noise, 8000, 16000) - band_db(low, 8000, 16000) > 20
    assert abs(band_db(noise, 100, 500) - band_db(low, 100, 500)) < 0.5
    dark = apply_augmentation(noise, SR, (("tilt_db_oct", -3.0),), seed=0)
    assert band_db(dark, 8000, 16000) - band_db(noise, 8000, 16000) == pytest.approx(-10.5, abs=1.5)


def test_transient_saturation_pitch_and_time():
    hit = snare()
    peak = np.abs(hit).max()
    punchy = apply_augmentation(hit, SR, (("attack_db", 6.0),), seed=0)
    assert np.abs(punchy).max() / peak == pytest.approx(2.0, rel=0.01)
    tight = apply_augmentation(hit, SR, (("decay_per_s", 20.0),), seed=0)
    assert band_db(tight[SR // 10:], 50, 20000) < band_db(hit[SR // 10:], 50, 20000) - 10
    driven = apply_augmentation(hit, SR, (("drive_db", 12.0),), seed=0)
    assert np.abs(driven).max() == pytest.approx(peak, rel=1e-5)
    rms = lambda x: np.sqrt(np.mean(x.astype(np.float64) ** 2))  # noqa: E731
    assert rms(driven) > 1.3 * rms(hit)  # a lower crest factor
    assert len(apply_augmentation(hit, SR, (("semitones", 12.0),), seed=0)) == pytest.approx(len(hit) / 2, abs=2)
    assert len(apply_augmentation(hit, SR, (("stretch", 1.1),), seed=0)) == pytest.approx(1.1 * len(hit), rel=0.02)


def test_room_and_noise_floor():
    hit = snare()
    roomy = apply_augmentation(hit, SR, (("room_rt60_s", 0.5), ("room_wet_db", -10.0)), seed=0)
    assert len(roomy) == len(hit) + int(0.5 * SR) - 1
    wet = roomy[:len(hit)] - hit
    assert 20 * np.log10(np.sqrt(np.mean(wet ** 2)) / np.sqrt(np.mean(hit ** 2))) == pytest.approx(-10.0, abs=0.1)
    noisy = apply_augmentation(hit, SR, (("noise_snr_db", 30.0), ("noise_slope", -1.0)), seed=0)
    noise = noisy - hit
    snr = 20 * np.log10(np.sqrt(np.mean(hit ** 2)) / np.sqrt(np.mean(noise ** 2)))
    assert snr == pytest.approx(30.0, abs=0.1)
    assert abs(band_db(noise, 200, 400) - band_db(noise, 6400, 12800)) < 3  # pink: the same power per octave


def test_stretch_works_at_any_length_and_factor():
    noise = np.random.default_rng(0).standard_normal(13000).astype(np.float32)
    # 3000 samples at 1.12 and 12600 at 1.09: where numpy's float arange of the read positions once
    # overshot the last frame
    for size, factor in ((3000, 1.12), (12600, 1.09), (12600, 1.12), (500, 0.88)):
        out = apply_augmentation(noise[:size], SR, (("stretch", factor),), seed=0)
        assert len(out) == round(size * factor) and np.all(np.isfinite(out))
