"""Audio augmentations baked into training data (`--augment N`): each copy sounds like the same hit
from another kit, played through another desk, in another room.

An augmentation is a small tuple of (name, value) pairs, so it can be part of a cache key and be
replayed exactly; `apply_augmentation` with the same tuple and seed gives the same samples. A
name that is absent does nothing. What each name does, in the order they are applied:

- `semitones`: pitch by varispeed (resampling), as a sampler plays a hit higher or lower;
- `stretch`: time stretch without pitch change (phase vocoder), the factor > 1 is longer;
- `attack_db`, `decay_per_s`: transient shaping: the first ATTACK_S after the peak raised or
  lowered by attack_db (faded back to 0 dB over as long again), the rest damped by
  exp(-decay_per_s * t), a tighter or looser drum;
- `drive_db`: tanh saturation driven this far above the peak (0: clean), level kept;
- `tilt_db_oct`, `bell_hz` / `bell_db`, `highpass_hz`, `lowpass_hz`: one zero-phase EQ curve: a
  tilt of so many dB per octave around TILT_PIVOT_HZ, a one-octave-wide bell, and 2nd-order
  Butterworth high- and low-pass magnitudes;
- `room_rt60_s`, `room_wet_db`: a synthetic room: an exponentially decaying noise impulse response
  (RT60 seconds) mixed in at wet_db below the dry sound;
- `shift_s`: silence put in front;
- `gain_db`: level;
- `noise_snr_db`, `noise_slope`: a noise floor that many dB below the sound, its power spectrum
  falling as f ** noise_slope (0 white, -1 pink).

`random_augmentation(rng)` draws a kit-randomising set of all of these; `profile="basic"` draws the
earlier gain / shift / noise / pitch set only (kept to compare the two).
"""

from __future__ import annotations

import numpy as np

from engine.audio.decode import resample

Augmentation = tuple[tuple[str, float], ...]
PROFILES = ("kit", "basic")
ATTACK_S = 0.012
TILT_PIVOT_HZ = 1000.0
EQ_RANGE_DB = (-96.0, 24.0)  # the EQ curve is clipped to this


def random_augmentation(rng: np.random.Generator, profile: str = "kit") -> Augmentation:
    if profile not in PROFILES:
        raise ValueError(f"unknown augmentation profile {profile!r}; choose one of {', '.join(PROFILES)}")

    def uniform(low: float, high: float, digits: int = 2) -> float:
        return round(float(rng.uniform(low, high)), digits)

    def log_uniform(low: float, high: float) -> float:
        return round(float(np.exp(rng.uniform(np.log(low), np.log(high)))), 1)

    if profile == "basic":
        return (("gain_db", uniform(-6.0, 6.0)), ("shift_s", uniform(0.0, 0.02, 4)),
                ("noise_snr_db", uniform(25.0, 45.0, 1)), ("semitones", uniform(-1.5, 1.5)))
    return (
        ("semitones", uniform(-2.0, 2.0)),
        ("stretch", uniform(0.88, 1.14)),
        ("attack_db", uniform(-4.0, 6.0, 1)),
        ("decay_per_s", uniform(0.0, 6.0, 1)),
        ("drive_db", uniform(0.0, 12.0, 1) if rng.random() < 0.5 else 0.0),
        ("tilt_db_oct", uniform(-2.5, 2.5)),
        ("bell_hz", log_uniform(150.0, 8000.0)),
        ("bell_db", uniform(-8.0, 8.0, 1)),
        ("highpass_hz", log_uniform(15.0, 150.0)),
        ("lowpass_hz", log_uniform(5000.0, 20000.0)),
        ("room_rt60_s", uniform(0.15, 1.2)),
        ("room_wet_db", uniform(-30.0, -8.0, 1) if rng.random() < 0.7 else -120.0),
        ("shift_s", uniform(0.0, 0.02, 4)),
        ("gain_db", uniform(-6.0, 6.0)),
        ("noise_snr_db", uniform(25.0, 55.0, 1)),
        ("noise_slope", uniform(-1.5, 0.0)),
    )


def augmentation_key(augmentation: Augmentation) -> str:
    return ",".join(f"{name}={value:g}" for name, value in augmentation)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def _stretch(samples: np.ndarray, factor: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """A phase vocoder (Flanagan & Golden; the algorithm of librosa.effects.time_stretch): the
    sound `factor` times as long at the same pitch."""
    window = np.hanning(n_fft + 1)[:-1]
    padded = np.pad(samples.astype(np.float64), (n_fft // 2, n_fft))
    starts = np.arange(0, padded.size - n_fft, hop)
    spectra = np.fft.rfft(padded[starts[:, None] + np.arange(n_fft)] * window, axis=1)
    expected = 2.0 * np.pi * hop * np.arange(spectra.shape[1]) / n_fft  # phase advance per hop, per bin
    if len(spectra) < 2:
        return samples
    steps = np.arange(0.0, len(spectra) - 1, 1.0 / factor)
    steps = steps[steps < len(spectra) - 1]  # float steps can overshoot the stop by a rounding error
    phase = np.angle(spectra[0])
    out = np.zeros(len(steps) * hop + n_fft)
    norm = np.zeros_like(out)
    for index, step in enumerate(steps):
        low, frac = int(step), step - int(step)
        magnitude = (1.0 - frac) * np.abs(spectra[low]) + frac * np.abs(spectra[low + 1])
        frame = np.fft.irfft(magnitude * np.exp(1j * phase), n_fft) * window
        out[index * hop:index * hop + n_fft] += frame
        norm[index * hop:index * hop + n_fft] += window ** 2
        advance = np.angle(spectra[low + 1]) - np.angle(spectra[low]) - expected
        phase += expected + advance - 2.0 * np.pi * np.round(advance / (2.0 * np.pi))
    out = out / np.where(norm > 1e-3, norm, 1.0)
    length = int(round(samples.size * factor))
    return out[n_fft // 2:n_fft // 2 + length].astype(np.float32)


def _shape_transient(samples: np.ndarray, sample_rate: int, attack_db: float, decay_per_s: float) -> np.ndarray:
    peak = int(np.argmax(np.abs(samples)))
    t = (np.arange(samples.size) - peak) / sample_rate
    attack = 10.0 ** (attack_db / 20.0)
    fade = np.clip((t - ATTACK_S) / ATTACK_S, 0.0, 1.0)  # 0 within ATTACK_S of the peak, 1 from 2 * ATTACK_S on
    gain = attack + (1.0 - attack) * (0.5 - 0.5 * np.cos(np.pi * fade))
    gain *= np.exp(-decay_per_s * np.maximum(t, 0.0))
    return (samples * gain).astype(np.float32)


def _saturate(samples: np.ndarray, drive_db: float) -> np.ndarray:
    peak = float(np.max(np.abs(samples)))
    if peak == 0.0:
        return samples
    drive = 10.0 ** (drive_db / 20.0)
    return (np.tanh(drive * samples / peak) / np.tanh(drive) * peak).astype(np.float32)


def eq_curve_db(freqs: np.ndarray, settings: dict[str, float]) -> np.ndarray:
    """The EQ's gain in dB at each frequency (Hz) for the EQ names in `settings`."""
    f = np.maximum(freqs, 1.0)
    db = settings.get("tilt_db_oct", 0.0) * np.log2(f / TILT_PIVOT_HZ)
    if "bell_hz" in settings:
        db = db + settings.get("bell_db", 0.0) * np.exp(-0.5 * (np.log2(f / settings["bell_hz"]) / 0.5) ** 2)
    if "highpass_hz" in settings:
        db = db - 10.0 * np.log10(1.0 + (settings["highpass_hz"] / f) ** 4)
    if "lowpass_hz" in settings:
        db = db - 10.0 * np.log10(1.0 + (f / settings["lowpass_hz"]) ** 4)
    return np.clip(db, *EQ_RANGE_DB)


def _equalise(samples: np.ndarray, sample_rate: int, settings: dict[str, float]) -> np.ndarray:
    size = samples.size + 1024  # room for the filters' ringing without wrapping round
    n_fft = 1 << (size - 1).bit_length()
    spectrum = np.fft.rfft(samples, n_fft)
    gain = 10.0 ** (eq_curve_db(np.fft.rfftfreq(n_fft, 1.0 / sample_rate), settings) / 20.0)
    return np.fft.irfft(spectrum * gain, n_fft)[:samples.size].astype(np.float32)


def _room(samples: np.ndarray, sample_rate: int, rt60_s: float, wet_db: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import fftconvolve

    t = np.arange(int(rt60_s * sample_rate)) / sample_rate
    response = rng.standard_normal(t.size) * 10.0 ** (-3.0 * t / rt60_s)  # -60 dB at rt60_s
    response /= max(np.sqrt(np.sum(response ** 2)), 1e-12)
    wet = fftconvolve(samples, response)
    wet *= 10.0 ** (wet_db / 20.0) * _rms(samples) / max(_rms(wet[:samples.size]), 1e-12)
    wet[:samples.size] += samples
    return wet.astype(np.float32)


def _noise(size: int, sample_rate: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(size)
    if slope == 0.0 or size < 2:
        return white.astype(np.float32)
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    shaped = np.fft.irfft(np.fft.rfft(white) * np.maximum(freqs, 20.0) ** (slope / 2.0), size)
    return (shaped / max(_rms(shaped), 1e-12)).astype(np.float32)


def apply_augmentation(samples: np.ndarray, sample_rate: int, augmentation: Augmentation, seed: int) -> np.ndarray:
    """The samples (mono float32) with `augmentation` applied; `seed` drives its random parts (room, noise)."""
    settings = dict(augmentation)
    rng = np.random.default_rng(seed)
    out = samples.astype(np.float32, copy=True)
    if not out.size:
        return out
    if settings.get("semitones", 0.0):
        speed = 2.0 ** (settings["semitones"] / 12.0)
        out = resample(out, int(round(sample_rate * speed)), sample_rate)
    if settings.get("stretch", 1.0) != 1.0 and out.size >= 64:
        out = _stretch(out, settings["stretch"])
    if settings.get("attack_db", 0.0) or settings.get("decay_per_s", 0.0):
        out = _shape_transient(out, sample_rate, settings.get("attack_db", 0.0), settings.get("decay_per_s", 0.0))
    if settings.get("drive_db", 0.0) > 0.0:
        out = _saturate(out, settings["drive_db"])
    if any(name in settings for name in ("tilt_db_oct", "bell_hz", "highpass_hz", "lowpass_hz")):
        out = _equalise(out, sample_rate, settings)
    if settings.get("room_rt60_s", 0.0) > 0.0 and settings.get("room_wet_db", -120.0) > -120.0:
        out = _room(out, sample_rate, settings["room_rt60_s"], settings["room_wet_db"], rng)
    shift = int(round(settings.get("shift_s", 0.0) * sample_rate))
    if shift > 0:
        out = np.concatenate([np.zeros(shift, dtype=np.float32), out])
    out *= np.float32(10.0 ** (settings.get("gain_db", 0.0) / 20.0))
    snr_db = settings.get("noise_snr_db")
    if snr_db is not None:
        noise = _noise(out.size, sample_rate, settings.get("noise_slope", 0.0), rng)
        out += noise * np.float32(_rms(out) * 10.0 ** (-snr_db / 20.0))
    return out
