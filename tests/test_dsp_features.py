import pickle
import re

import librosa
import numpy as np
import pytest

from engine.audio import dsp
from engine.audio.regions import PREROLL_S, active_rms, normalize_loudness, onset_region
from engine.features.dsp import DspExtractor
from engine.features.mel import MelExtractor

SR = 22050


def _times(seconds: float) -> np.ndarray:
    return np.arange(round(seconds * SR)) / SR


def kick(seconds: float = 0.5) -> np.ndarray:
    """A sine sweeping down from 150 Hz to 45 Hz with an exponential decay."""
    t = _times(seconds)
    freq = 45.0 + 105.0 * np.exp(-t * 25.0)
    phase = 2 * np.pi * np.cumsum(freq) / SR
    return (0.9 * np.sin(phase) * np.exp(-t * 8.0)).astype(np.float32)


def hat(seconds: float = 0.15) -> np.ndarray:
    """White noise, high-passed by repeated differencing, with a fast decay."""
    noise = np.random.default_rng(1).standard_normal(round(seconds * SR) + 3)
    bright = np.diff(noise, n=3)
    return (0.2 * bright * np.exp(-_times(seconds) * 40.0)).astype(np.float32)


def click() -> np.ndarray:
    signal = np.zeros(round(0.05 * SR), dtype=np.float32)
    signal[0] = 1.0
    return signal


def with_silence(signal: np.ndarray, seconds: float) -> np.ndarray:
    return np.concatenate([np.zeros(round(seconds * SR), dtype=np.float32), signal])


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --- building blocks against librosa -------------------------------------------------------------


@pytest.mark.parametrize(
    "sample_rate, n_fft, n_mels, fmin, fmax",
    [(22050, 1024, 64, 0.0, None), (22050, 1024, 64, 20.0, 11025.0), (44100, 2048, 128, 30.0, 16000.0)],
)
def test_mel_filterbank_matches_librosa(sample_rate, n_fft, n_mels, fmin, fmax):
    ours = dsp.mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
    theirs = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_power_spectrogram_matches_librosa_stft():
    signal = kick()
    ours = dsp.power_spectrogram(dsp.frame(signal, 1024, 256))
    theirs = np.abs(librosa.stft(signal, n_fft=1024, hop_length=256, center=True, pad_mode="constant")) ** 2
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3 * theirs.max())


def test_mfcc_matches_librosa():
    signal = kick() + hat(0.5)
    power = dsp.power_spectrogram(dsp.frame(signal, 1024, 256))
    log_mel = dsp.power_to_db(dsp.mel_filterbank(SR, 1024, 64) @ power, top_db=80.0)
    ours = dsp.mfcc(log_mel, 20)
    theirs = librosa.feature.mfcc(y=signal, sr=SR, n_mfcc=20, n_fft=1024, hop_length=256, n_mels=64)
    assert ours.shape == theirs.shape
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.999
    np.testing.assert_allclose(ours, theirs, atol=0.05)


def test_delta_matches_librosa_away_from_edges():
    features = np.random.default_rng(0).standard_normal((20, 50)).astype(np.float32)
    ours = dsp.delta(features)
    theirs = librosa.feature.delta(features, width=9)
    np.testing.assert_allclose(ours[:, 4:-4], theirs[:, 4:-4], atol=1e-5)
    assert np.all(dsp.delta(np.ones((3, 1), dtype=np.float32)) == 0)


def test_side_by_side_sounds_get_their_own_delta_edges_and_db_floor():
    """Frames of several sounds in one array (`bounds`) give each sound what it gets alone."""
    rng = np.random.default_rng(2)
    parts = [rng.standard_normal((20, n)).astype(np.float32) * scale for n, scale in ((1, 1.0), (7, 1e-4), (30, 3.0))]
    bounds = np.cumsum([0] + [part.shape[1] for part in parts])
    joined = np.concatenate(parts, axis=1)
    np.testing.assert_array_equal(dsp.delta(joined, bounds=bounds),
                                  np.concatenate([dsp.delta(part) for part in parts], axis=1))
    power = np.abs(joined)
    np.testing.assert_array_equal(dsp.power_to_db(power, top_db=40.0, bounds=bounds),
                                  np.concatenate([dsp.power_to_db(np.abs(part), top_db=40.0) for part in parts], axis=1))


def test_a_gain_added_to_the_db_after_the_logs_floors_as_the_gained_power_would():
    """What the window path does: logs of the power once (floored far lower), each sound's gain added in
    dB, then `floor_db`, against `power_to_db` of each sound's power times its gain. Silent frames,
    values below AMIN before and after the gain, and a sound quieter than AMIN throughout."""
    rng = np.random.default_rng(4)
    power = (rng.random((64, 40)) ** 8 * 1e-4).astype(np.float32)
    power[:, 3] = 0.0
    power[:5, 10] = 1e-13
    power[:, 30:] *= 1e-9
    bounds, gains = np.array([0, 12, 30, 40]), np.array([1e4, 0.5, 1.0])
    gained = np.concatenate([power[:, a:b] * np.float32(g) for a, b, g in zip(bounds[:-1], bounds[1:], gains)], axis=1)
    db = dsp.power_to_db(power, amin=dsp.AMIN / gains.max())
    db += np.repeat(10 * np.log10(gains), np.diff(bounds)).astype(np.float32)
    np.testing.assert_allclose(dsp.floor_db(db, 80.0, bounds), dsp.power_to_db(gained, top_db=80.0, bounds=bounds),
                               rtol=1e-5, atol=1e-4)


def test_a_batch_gives_each_sound_its_features_alone():
    sounds = [kick(), hat(), kick(0.05) * 0.01, np.zeros(300, dtype=np.float32), hat(2.0)]
    for extractor in (DspExtractor(), MelExtractor(), DspExtractor(region_s=None)):
        batched = extractor.extract_batch(sounds)
        for sound, features in zip(sounds, batched, strict=True):
            np.testing.assert_allclose(features, extractor.extract(sound), rtol=1e-4, atol=1e-4)


def test_spectral_shape_matches_librosa():
    signal = kick() + hat(0.5)
    power = dsp.power_spectrogram(dsp.frame(signal, 1024, 256))
    magnitude = np.sqrt(power)
    freqs = dsp.fft_frequencies(SR, 1024)
    centroid, bandwidth = dsp.spectral_centroid_and_bandwidth(magnitude, freqs)
    pairs = [
        (centroid, librosa.feature.spectral_centroid(S=magnitude, sr=SR)[0]),
        (bandwidth, librosa.feature.spectral_bandwidth(S=magnitude, sr=SR)[0]),
        (dsp.spectral_rolloff(magnitude, freqs), librosa.feature.spectral_rolloff(S=magnitude, sr=SR)[0]),
        (dsp.spectral_flatness(power), librosa.feature.spectral_flatness(S=magnitude)[0]),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-6)


# --- regions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("signal", [np.zeros(0, dtype=np.float32), np.zeros(1000, dtype=np.float32)])
def test_onset_region_leaves_silence_alone(signal):
    assert onset_region(signal, SR, 1.0) is signal


def test_onset_region_starts_a_fixed_preroll_before_the_onset():
    preroll = round(PREROLL_S * SR)
    for lead_s in (0.0, 0.001, 0.3):
        region = onset_region(with_silence(kick(), lead_s), SR, 0.2)
        assert len(region) == round(0.2 * SR)
        first_sound = np.flatnonzero(region)[0]
        assert abs(first_sound - preroll) <= round(0.002 * SR)
    assert len(onset_region(kick(), SR, None)) == len(onset_region(kick(), SR, 0)) == len(kick()) + preroll
    assert not onset_region(kick(), SR, 0.001).any()  # shorter than the pre-roll: all lead-in


def test_normalize_loudness_reaches_target_and_keeps_silence():
    for gain in (1.0, 0.01):
        louder = normalize_loudness(kick() * gain, target_db=-20.0)
        assert 20 * np.log10(active_rms(louder)) == pytest.approx(-20.0, abs=0.01)
    assert not normalize_loudness(np.zeros(100, dtype=np.float32)).any()
    assert normalize_loudness(np.zeros(0, dtype=np.float32)).size == 0
    broken = kick()
    broken[10:20] = [np.nan, np.inf] * 5
    assert np.isfinite(normalize_loudness(broken)).all()


# --- extractors ---------------------------------------------------------------------------------

AWKWARD_INPUTS = {
    "hit": kick(),
    "10ms": kick(0.01),
    "zeros": np.zeros(SR, dtype=np.float32),
    "empty": np.zeros(0, dtype=np.float32),
    "10s": np.tile(kick(), 20),
}


@pytest.mark.parametrize("name", AWKWARD_INPUTS)
@pytest.mark.parametrize("params", [{}, {"region_s": 0}, {"region_s": None}])
def test_dsp_vector_is_fixed_length_and_finite(name, params):
    extractor = DspExtractor(**params)
    vector = extractor.extract(AWKWARD_INPUTS[name])
    assert vector.dtype == np.float32
    assert vector.shape == (len(extractor.feature_names()),)
    assert np.isfinite(vector).all()


@pytest.mark.parametrize("name", AWKWARD_INPUTS)
def test_mel_patch_is_fixed_shape_and_finite(name):
    patch = MelExtractor().extract(AWKWARD_INPUTS[name])
    assert patch.dtype == np.float32
    assert patch.shape == (64, 96)
    assert np.isfinite(patch).all()
    assert patch.min() >= -80.0


def test_mel_patch_of_silence_is_the_floor():
    assert np.all(MelExtractor(top_db=60.0).extract(np.zeros(SR, dtype=np.float32)) == -60.0)


def test_feature_names_are_unique_and_aligned():
    extractor = DspExtractor(n_mfcc=13)
    names = extractor.feature_names()
    assert len(names) == len(set(names)) == len(extractor.extract(kick()))
    assert len(DspExtractor().feature_names()) == 99


@pytest.mark.parametrize("signal", [kick(), hat(), click()], ids=["kick", "hat", "click"])
def test_dsp_vector_ignores_gain(signal):
    extractor = DspExtractor()
    assert relative_l2(extractor.extract(signal * 0.1), extractor.extract(signal)) < 0.05


@pytest.mark.parametrize("signal", [kick(), hat(), click()], ids=["kick", "hat", "click"])
@pytest.mark.parametrize("lead_s", [0.3, 0.0123])
def test_leading_silence_does_not_change_features(signal, lead_s):
    """The lead-in is not digital silence but a -80 dBFS noise floor, like a real recording."""
    noise_floor = 1e-4 * np.random.default_rng(2).standard_normal(round(lead_s * SR) + len(signal))
    hit = signal + noise_floor[: len(signal)].astype(np.float32)
    delayed = np.concatenate([noise_floor[len(signal) :].astype(np.float32), hit])
    dsp_extractor, mel_extractor = DspExtractor(), MelExtractor()
    assert relative_l2(dsp_extractor.extract(delayed), dsp_extractor.extract(hit)) < 0.01
    mel_difference = np.abs(mel_extractor.extract(delayed) - mel_extractor.extract(hit))
    assert mel_difference.mean() < 0.1
    assert mel_difference.max() < 3.0


def test_kick_and_hat_are_told_apart():
    extractor = DspExtractor()
    names = extractor.feature_names()
    kick_vector, hat_vector = extractor.extract(kick()), extractor.extract(hat())
    assert relative_l2(hat_vector, kick_vector) > 0.5
    kick_features, hat_features = dict(zip(names, kick_vector)), dict(zip(names, hat_vector))
    assert hat_features["centroid_hz_mean"] > 4 * kick_features["centroid_hz_mean"]
    assert kick_features["energy_below_150hz"] > 0.5 > hat_features["energy_below_150hz"]
    assert hat_features["energy_above_5khz"] > 0.5
    assert hat_features["decay_s"] < kick_features["decay_s"]


@pytest.mark.parametrize("extractor_type", [DspExtractor, MelExtractor])
def test_extractor_identity_and_pickling(extractor_type):
    extractor = extractor_type(n_mels=32)
    clone = pickle.loads(pickle.dumps(extractor))
    assert clone.params == extractor.params
    assert re.fullmatch(r"[0-9a-f]{16}", extractor.code_version)
    assert extractor.cache_prefix == f"{extractor.name}:{extractor.params_hash}:{extractor.code_version}"
    assert extractor.params_hash != extractor_type().params_hash
    np.testing.assert_array_equal(clone.extract(kick()), extractor.extract(kick()))
    with pytest.raises(ValueError, match="unknown parameter"):
        extractor_type(n_ffts=512)


def test_frames_of_several_sounds_measured_from_one_buffer_match_frame_by_frame():
    """`frame_many` + the buffer measures give what `frame` and the per-frame measures give."""
    rng = np.random.default_rng(3)
    sounds = [rng.standard_normal(n).astype(np.float32) for n in (0, 5, 700, 1024, 3001)] + [kick(), hat()]
    sounds[3][::3] = 0.0
    sounds[3][::7] = -0.0  # a negative zero counts as negative, as np.signbit has it
    buffer, starts, bounds = dsp.frame_many(sounds, 1024, 256)
    one_by_one = [dsp.frame(sound, 1024, 256) for sound in sounds]
    frames = np.concatenate(one_by_one)
    np.testing.assert_array_equal(bounds, np.cumsum([0] + [len(f) for f in one_by_one]))
    np.testing.assert_array_equal(dsp.frames_at(buffer, starts, 1024), frames)
    np.testing.assert_array_equal(dsp.zero_crossing_rate_at(buffer, starts, 1024), dsp.zero_crossing_rate(frames))
    np.testing.assert_allclose(dsp.frame_rms_at(buffer, starts, 1024), dsp.frame_rms(frames), rtol=1e-5, atol=1e-7)
    groups = list(dsp.passes(sounds, 1024, 256, 8))  # frames: 1, 1, 3 | 5 | 12 | 44 | 13
    assert [len(group) for group in groups] == [3, 1, 1, 1, 1]
    assert [id(sound) for group in groups for sound in group] == [id(sound) for sound in sounds]


def test_banded_mel_projection_and_blocked_rolloff_match_their_plain_forms():
    signal = kick() + hat(0.5)
    power = dsp.power_spectrogram(dsp.frame(signal, 1024, 256))
    np.testing.assert_allclose(dsp.mel_spectrogram(power, SR, 1024, 64, 20.0, 11025.0),
                               dsp.mel_filterbank(SR, 1024, 64, 20.0, 11025.0) @ power, rtol=1e-5, atol=1e-9)
    magnitude = np.sqrt(np.concatenate([power, np.zeros((513, 2), np.float32)], axis=1))  # silent frames too
    freqs = dsp.fft_frequencies(SR, 1024)
    cumulative = np.cumsum(magnitude.astype(np.float64), axis=0)
    plain = freqs[np.argmax(cumulative >= 0.85 * cumulative[-1], axis=0)]
    assert np.mean(dsp.spectral_rolloff(magnitude, freqs) == plain) > 0.95  # rounding may move a tie by a bin
    np.testing.assert_allclose(dsp.spectral_rolloff(magnitude, freqs), plain, atol=freqs[1] + 1e-3)


@pytest.mark.parametrize("region_s", [None, 0.5])
def test_windows_on_the_sounds_frame_grid_get_the_features_of_the_window_alone(region_s):
    """`extract_windows` (one STFT of the whole sound; the windows' onsets, levels and envelopes
    their own) against `extract_batch` of each window's own samples. Where a window's
    onset region starts on the sound's hop grid with no lead-in, its frames are the sound's own, so
    the vectors agree to float rounding. The windows overlap; one is silent, one ends with the sound.
    (A -90 dBFS noise floor keeps every bin above the power floor that flatness takes logs of: below
    it, the gain the window path applies afterwards would change a frame's flatness.)"""
    hop, preroll = 256, round(PREROLL_S * SR)
    rng = np.random.default_rng(5)
    sound = np.zeros(7 * SR, dtype=np.float32)
    sound[: 6 * SR] = 3e-5 * rng.standard_normal(6 * SR)
    windows = []
    for n, second in enumerate(range(5)):
        onset = (second * SR + SR // 3) // hop * hop + preroll  # its region starts on the hop grid
        burst = (kick(0.8), hat(0.8), kick(0.8) + hat(0.8))[n % 3] * np.float32(0.3 + 0.2 * n)
        burst[0] = 0.5  # a hard onset: the region starts PREROLL_S before this sample whatever the window
        sound[onset:onset + len(burst)] += burst
        first = onset - round(rng.uniform(0.05, 0.3) * SR)
        windows.append((first, first + round(1.4 * SR) if n < 4 else len(sound)))  # the last to the sound's end
    windows.append((round(6.2 * SR), len(sound)))  # digital silence
    extractor = DspExtractor(region_s=region_s)
    ours = np.stack(extractor.extract_windows(sound, windows))
    alone = np.stack(extractor.extract_batch([sound[first:last] for first, last in windows]))
    scale = np.abs(alone).max(axis=0) + 1e-3
    np.testing.assert_allclose(ours / scale, alone / scale, atol=1e-4)
    assert not np.allclose(ours[0], ours[1], atol=1e-2)  # the windows are told apart


def test_temporal_descriptors_of_a_known_envelope():
    """Blocks of constant level (2 ms each): a 0.5 block, four at 1.0, five at 0.2 (-14 dB), five
    at 0.05 (-26 dB), then silence; attack, decay, effective duration, temporal centroid and crest
    factor by their definitions."""
    from engine.audio.regions import active_rms, envelope_block
    from engine.features.dsp import _temporals

    block = envelope_block(SR)
    levels = np.array([0.0] * 10 + [0.5] + [1.0] * 4 + [0.2] * 5 + [0.05] * 5 + [0.0] * 6)
    region = np.repeat(levels, block).astype(np.float32)
    seconds = block / SR
    centroid = np.sum((np.arange(len(levels)) - 10) * levels) / levels.sum() * seconds
    blocks256 = np.sqrt(np.mean(region[: len(region) // 256 * 256].reshape(-1, 256) ** 2, axis=1))
    tail = region[len(region) // 256 * 256:]
    blocks256 = np.append(blocks256, np.sqrt(np.mean(tail ** 2))) if len(tail) else blocks256
    active = blocks256[blocks256 >= blocks256.max() / 100]
    crest = 20 * np.log10(1.0 / np.sqrt(np.mean(active ** 2)))
    silence = np.zeros(500, dtype=np.float32)
    found, silent = _temporals([region, silence], SR, [active_rms(region), active_rms(silence)])
    np.testing.assert_allclose(found, [1 * seconds, 8 * seconds, 15 * seconds, centroid, crest], rtol=1e-5)
    assert not silent.any()


def test_rolloff_is_the_first_bin_where_the_running_sum_reaches_the_fraction():
    """Against the running sum over all bins (float64): frames of every shape, spikes in the first
    and last bins and on either side of the block edges spectral_rolloff sums by, silent frames."""
    rng = np.random.default_rng(3)
    freqs = dsp.fft_frequencies(SR, 1024)
    magnitude = (rng.random((513, 3000)) ** rng.uniform(0.5, 8.0, 3000)).astype(np.float32)
    for frame, spike in enumerate([0, 31, 32, 33, 63, 64, 480, 511, 512]):
        magnitude[:, frame] = 0.0
        magnitude[spike, frame] = 1.0
    magnitude[:, 10] = 0.0
    cumulative = np.cumsum(magnitude.astype(np.float64), axis=0)
    expected = freqs[np.argmax(cumulative >= 0.85 * cumulative[-1], axis=0)]
    ours = dsp.spectral_rolloff(magnitude, freqs)
    assert list(ours[:9]) == list(freqs[[0, 31, 32, 33, 63, 64, 480, 511, 512]]) and ours[10] == 0.0
    differing = ours != expected  # only where float32 sums put the threshold in the neighbouring bin
    assert differing.mean() < 1e-3 and np.all(np.abs(ours - expected)[differing] <= freqs[1] + 1e-3)


def test_windows_of_a_sound_with_non_finite_samples_read_them_as_zeros():
    sound = (hat(3.0) + np.tile(kick(0.5), 6)).astype(np.float32)
    broken = sound.copy()
    broken[[100, 20000, 40000]] = [np.nan, np.inf, -np.inf]
    zeroed = np.where(np.isfinite(broken), broken, 0.0).astype(np.float32)
    windows = [(0, SR), (SR // 2, 2 * SR), (SR, len(sound))]
    extractor = DspExtractor(region_s=None)
    ours = np.stack(extractor.extract_windows(broken, windows))
    assert np.isfinite(ours).all()
    np.testing.assert_array_equal(ours, np.stack(extractor.extract_windows(zeroed, windows)))
