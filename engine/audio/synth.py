"""Deterministic synthetic drums and beat-based tracks, for the demo and for tests.

Nothing here reads files: every sound is made from sines, noise and scipy filters driven by a
numpy Generator, so one seed always gives the same samples (and the same file bytes).

- `synthesize_hit` makes one drum one-shot of a class in the style of a `PackTimbre`;
- `write_curated_library` writes a labelled library of such one-shots, one folder per class;
- `synthesize_section_track` makes a simple electronic track of DJ sections on a beat grid.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.io import wavfile
from scipy.signal import butter, sosfilt

DRUM_CLASSES: tuple[str, ...] = (
    "kick", "snare", "hihat_closed", "hihat_open", "tom", "crash", "ride", "clap", "perc",
)

_SUBTYPES = {"wav": ("PCM_16", "PCM_24", "FLOAT"), "flac": ("PCM_16", "PCM_24")}


@dataclass(frozen=True)
class PackTimbre:
    """How one synthetic sample pack sounds and is stored."""

    name: str
    sample_rate: int  # e.g. 44100, 48000, 22050
    file_format: str  # "wav" or "flac"
    subtype: str  # soundfile subtype: "PCM_16", "PCM_24", "FLOAT" (FLOAT only for wav)
    pitch: float = 1.0  # multiplies every fundamental / sweep frequency
    decay: float = 1.0  # multiplies every decay time
    brightness: float = 1.0  # >1 brighter (more high-frequency energy), <1 darker
    drive: float = 0.0  # 0..1 soft saturation (tanh) amount
    noise_floor_db: float = -90.0
    lead_silence_s: float = 0.0  # silence before the hit (tests onset alignment)
    gain_db: float = 0.0  # overall level (packs differ in loudness)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or "\\" in self.name:
            raise ValueError(f"pack name must be a non-empty folder name, got {self.name!r}")
        if self.file_format not in _SUBTYPES:
            raise ValueError(
                f"pack {self.name!r}: file format must be one of {sorted(_SUBTYPES)}, got {self.file_format!r}"
            )
        if self.subtype not in _SUBTYPES[self.file_format]:
            raise ValueError(
                f"pack {self.name!r}: subtype {self.subtype!r} is not available for {self.file_format} "
                f"(use one of {', '.join(_SUBTYPES[self.file_format])})"
            )
        if self.sample_rate < 8000:
            raise ValueError(f"pack {self.name!r}: sample rate must be at least 8000 Hz, got {self.sample_rate}")
        for field_name in ("pitch", "decay", "brightness"):
            if not getattr(self, field_name) > 0:
                raise ValueError(f"pack {self.name!r}: {field_name} must be positive")
        if not 0.0 <= self.drive <= 1.0:
            raise ValueError(f"pack {self.name!r}: drive must be between 0 and 1, got {self.drive}")
        if self.lead_silence_s < 0:
            raise ValueError(f"pack {self.name!r}: lead silence must not be negative")


DEMO_PACKS: tuple[PackTimbre, ...] = (
    # Deep and long, clean, 24-bit: an 808-style pack.
    PackTimbre("deep808", 44100, "wav", "PCM_24", pitch=0.8, decay=1.6, brightness=0.75,
               drive=0.0, noise_floor_db=-96.0, gain_db=-6.0),
    # Bright, short and crunchy, 16-bit at 48 kHz: a 909-style pack.
    PackTimbre("crunch909", 48000, "wav", "PCM_16", pitch=1.15, decay=0.75, brightness=1.8,
               drive=0.6, noise_floor_db=-84.0, gain_db=-3.0),
    # Natural and fairly quiet, stored as 32-bit float.
    PackTimbre("studio_acoustic", 44100, "wav", "FLOAT", pitch=1.0, decay=1.1, brightness=1.1,
               drive=0.1, noise_floor_db=-72.0, gain_db=-10.0),
    # Dark, dusty and quiet at 22050 Hz with an audible noise floor.
    PackTimbre("lofi_dust", 22050, "wav", "PCM_16", pitch=0.92, decay=0.9, brightness=0.45,
               drive=0.35, noise_floor_db=-54.0, gain_db=-13.0),
    # Loud, a little bright, FLAC, with 50 ms of silence before every hit.
    PackTimbre("loud_flac", 48000, "flac", "PCM_24", pitch=1.05, decay=1.0, brightness=1.3,
               drive=0.25, noise_floor_db=-90.0, lead_silence_s=0.05, gain_db=0.0),
)

# How long each class rings (seconds) before the pack's decay is applied; clips stay in 0.2..2.5 s.
_BASE_LENGTH_S = {
    "kick": 0.6, "snare": 0.45, "hihat_closed": 0.25, "hihat_open": 0.9, "tom": 0.7,
    "crash": 2.2, "ride": 1.8, "clap": 0.5, "perc": 0.3,
}
_MIN_LENGTH_S, _MAX_LENGTH_S = 0.2, 2.5
# The six square oscillators of a classic analogue cymbal circuit, in Hz.
_METAL_HZ = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)


# ---------------------------------------------------------------------------------------------
# Small signal helpers


def _db_to_amp(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def _decay(t: np.ndarray, t60: float) -> np.ndarray:
    """An exponential envelope that is 1 at t=0 and -60 dB at t=t60."""
    return 10.0 ** (-3.0 * t / t60)


def _burst(t: np.ndarray, start: float, t60: float) -> np.ndarray:
    """An exponential envelope that starts at `start` (zero before it)."""
    return np.where(t >= start, _decay(np.maximum(t - start, 0.0), t60), 0.0)


def _phase(freq: np.ndarray, sr: int) -> np.ndarray:
    """The running phase (radians) of an oscillator whose frequency changes per sample."""
    return 2.0 * np.pi * np.cumsum(freq) / sr


def _soft_square(t: np.ndarray, freq: float, phase0: float) -> np.ndarray:
    """A square-ish wave with rounded edges (less aliasing than a hard square)."""
    return np.tanh(4.0 * np.sin(2.0 * np.pi * freq * t + phase0))


def _hz(freq: float, sr: int) -> float:
    """A filter corner kept safely below Nyquist."""
    return min(freq, 0.45 * sr)


def _lowpass(x: np.ndarray, sr: int, freq: float, order: int = 2) -> np.ndarray:
    return sosfilt(butter(order, _hz(freq, sr), btype="lowpass", fs=sr, output="sos"), x)


def _highpass(x: np.ndarray, sr: int, freq: float, order: int = 2) -> np.ndarray:
    return sosfilt(butter(order, _hz(freq, sr), btype="highpass", fs=sr, output="sos"), x)


def _bandpass(x: np.ndarray, sr: int, low: float, high: float, order: int = 2) -> np.ndarray:
    high = _hz(high, sr)
    low = min(low, 0.8 * high)
    return sosfilt(butter(order, (low, high), btype="bandpass", fs=sr, output="sos"), x)


def _normalise(x: np.ndarray, peak: float = 1.0) -> np.ndarray:
    current = float(np.max(np.abs(x))) if x.size else 0.0
    return x * (peak / current) if current > 0 else x


def _limit_peak(x: np.ndarray) -> np.ndarray:
    """Scale down only if the peak exceeds full scale."""
    current = float(np.max(np.abs(x))) if x.size else 0.0
    return x / current if current > 1.0 else x


def _fade_out(x: np.ndarray, sr: int, seconds: float = 0.05) -> np.ndarray:
    """Fade the last `seconds` (at most a tenth of the clip) so a cut-off tail does not click."""
    n = min(int(seconds * sr), x.size // 10)
    if n > 0:
        x = x.copy()
        x[-n:] *= np.linspace(1.0, 0.0, n)
    return x


# ---------------------------------------------------------------------------------------------
# Drum voices: each makes the raw sound of one class on the time axis t (seconds).


def _metal(t: np.ndarray, pitch: float, rng: np.random.Generator) -> np.ndarray:
    """Inharmonic square-ish partials: the metallic core of hats and cymbals."""
    return sum(_soft_square(t, hz * pitch, rng.uniform(0, 2 * np.pi)) for hz in _METAL_HZ) / len(_METAL_HZ)


def _kick(t: np.ndarray, sr: int, pitch: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    sweep = pitch * (50.0 + 100.0 * np.exp(-t / 0.04))  # about 150 Hz falling to 50 Hz
    body = np.sin(_phase(sweep, sr)) * _decay(t, 0.5 * decay)
    click = _bandpass(rng.standard_normal(t.size), sr, 1000.0, 5000.0) * _decay(t, 0.006)
    return body + 0.2 * click


def _snare(t: np.ndarray, sr: int, pitch: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    drum_hz = pitch * 200.0 * (1.0 + 0.15 * np.exp(-t / 0.02))
    body = (np.sin(_phase(drum_hz, sr)) + 0.5 * np.sin(_phase(drum_hz * 1.65, sr))) * _decay(t, 0.18 * decay)
    wires = _bandpass(rng.standard_normal(t.size), sr, 1500.0, 9000.0) * _decay(t, 0.35 * decay)
    return 0.6 * body + wires


def _hihat(t: np.ndarray, sr: int, pitch: float, t60: float, rng: np.random.Generator) -> np.ndarray:
    metal = _metal(t, 2.0 * pitch, rng)
    return _highpass(0.6 * metal + rng.standard_normal(t.size), sr, 7000.0, order=4) * _decay(t, t60)


def _closed_hihat(t: np.ndarray, sr: int, pitch: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    return _hihat(t, sr, pitch, 0.07 * decay, rng)


def _open_hihat(t: np.ndarray, sr: int, pitch: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    return _hihat(t, sr, pitch, 0.6 * decay, rng)


def _tom(t: np.ndarray, sr: int, pitch: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    sweep = pitch * (120.0 + 80.0 * np.exp(-t / 0.08))  # about 200 Hz falling to 120 Hz
    body = np.sin(_phase(sweep, sr)) * _decay(t, 0.55 * decay)
    stick = _bandpass(rng.standard_normal(t.size), sr, 300.0, 3000.0) * _decay(t, 0.02)
    return body + 0.15 * stick


def _crash(t: np.ndarray, sr: int, pitch: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    wash = _highpass(0.5 * _metal(t, 1.4 * pitch, rng) + rng.standard_normal(t.size), sr, 3000.0, order=4)
    swell = 1.0 - np.exp(-t / 0.004)  # a few ms of attack
    return wash * swell * _decay(t, 2.0 * decay)


def _ride(t: np.ndarray, sr: int, pitch: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    bell = np.zeros_like(t)
    for hz, level in ((3100.0, 1.0), (3870.0, 0.6), (4650.0, 0.5), (5320.0, 0.3)):
        if hz * pitch < 0.45 * sr:
            bell += level * np.sin(2 * np.pi * hz * pitch * t + rng.uniform(0, 2 * np.pi))
    shimmer = _highpass(rng.standard_normal(t.size), sr, 6000.0) * _decay(t, 0.6 * decay)
    ping = np.sin(2 * np.pi * 2400.0 * pitch * t) * _decay(t, 0.05)
    return bell * _decay(t, 1.6 * decay) + 0.3 * shimmer + 0.5 * ping


def _clap(t: np.ndarray, sr: int, pitch: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    noise = _bandpass(rng.standard_normal(t.size), sr, 900.0 * pitch, 2800.0 * pitch)
    starts = np.arange(4) * 0.010 * rng.uniform(0.85, 1.15)  # four hands about 10 ms apart
    envelope = sum(_burst(t, start, 0.03) for start in starts)
    envelope = envelope + 0.6 * _burst(t, starts[-1], 0.3 * decay)  # the room tail
    return noise * envelope


def _perc(t: np.ndarray, sr: int, pitch: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    tone = _soft_square(t, 587.0 * pitch, 0.0) + 0.7 * _soft_square(t, 845.0 * pitch, 0.0)
    tone = _bandpass(tone, sr, 400.0, 4000.0) * _decay(t, 0.18 * decay)
    stick = _highpass(rng.standard_normal(t.size), sr, 2000.0) * _decay(t, 0.005)
    return tone + 0.2 * stick


_Voice = Callable[[np.ndarray, int, float, float, np.random.Generator], np.ndarray]
_VOICES: dict[str, _Voice] = {
    "kick": _kick, "snare": _snare, "hihat_closed": _closed_hihat, "hihat_open": _open_hihat,
    "tom": _tom, "crash": _crash, "ride": _ride, "clap": _clap, "perc": _perc,
}


# ---------------------------------------------------------------------------------------------
# Pack colouring and the public one-shot API


def _tilt(x: np.ndarray, sr: int, brightness: float) -> np.ndarray:
    """Scale everything above about 2.5 kHz by `brightness` (a simple tilt equaliser)."""
    if brightness == 1.0:
        return x
    low = _lowpass(x, sr, 2500.0)
    return low + brightness * (x - low)


def _saturate(x: np.ndarray, drive: float) -> np.ndarray:
    """Soft tanh saturation of a peak-normalised signal; drive 0 leaves it untouched."""
    if drive <= 0.0:
        return x
    gain = 1.0 + 8.0 * drive
    return np.tanh(gain * x) / np.tanh(gain)


def synthesize_hit(kind: str, pack: PackTimbre, rng: np.random.Generator) -> np.ndarray:
    """One hit of `kind` (one of DRUM_CLASSES) as mono float32 at pack.sample_rate, peak <= 1.0.
    Each call varies slightly (rng: pitch +-5%, decay +-15%, velocity 0.6..1.0, small noise) so that
    clips of one class are not identical. Raise ValueError naming the kind for an unknown kind."""
    voice = _VOICES.get(kind)
    if voice is None:
        raise ValueError(f"unknown drum class {kind!r}; expected one of {', '.join(DRUM_CLASSES)}")
    sr = pack.sample_rate
    pitch = pack.pitch * rng.uniform(0.95, 1.05)
    decay = pack.decay * rng.uniform(0.85, 1.15)
    velocity = rng.uniform(0.6, 1.0)
    length_s = float(np.clip(_BASE_LENGTH_S[kind] * decay, _MIN_LENGTH_S, _MAX_LENGTH_S))
    t = np.arange(round(length_s * sr)) / sr

    hit = _tilt(voice(t, sr, pitch, decay, rng), sr, pack.brightness)
    hit = _fade_out(_saturate(_normalise(hit), pack.drive), sr)
    hit = _normalise(hit, min(1.0, velocity * _db_to_amp(pack.gain_db)))
    hit = np.concatenate([np.zeros(round(pack.lead_silence_s * sr)), hit])
    hit = hit + _db_to_amp(pack.noise_floor_db) * rng.standard_normal(hit.size)
    return _limit_peak(hit).astype(np.float32)


def _stable_number(text: str) -> int:
    """A number for a name that does not change between runs (unlike hash())."""
    return zlib.crc32(text.encode("utf-8"))


def _write_clip(path: Path, audio: np.ndarray, pack: PackTimbre) -> None:
    if pack.subtype == "FLOAT":
        # libsndfile stamps float WAVs with the wall-clock time (in a PEAK chunk), so the same
        # samples would give different bytes on every run; scipy writes a plain IEEE-float WAV.
        wavfile.write(path, pack.sample_rate, audio)
    else:
        sf.write(path, audio, pack.sample_rate, format=pack.file_format.upper(), subtype=pack.subtype)


def write_curated_library(root: Path, clips_per_class_per_pack: int = 7, classes: Sequence[str] = DRUM_CLASSES,
                          packs: Sequence[PackTimbre] = DEMO_PACKS, seed: int = 0) -> list[Path]:
    """Write root/<class>/<pack.name>/<pack.name>_<class>_<nn>.<ext> (nn from 01) and return the paths, sorted.
    Deterministic for a given seed (same bytes). Creates folders as needed.

    Each (pack, class) pair draws from its own random stream, keyed by their names, so adding a
    class or a pack does not change the clips of the others."""
    unknown = [kind for kind in classes if kind not in _VOICES]
    if unknown:
        raise ValueError(f"unknown drum class {unknown[0]!r}; expected one of {', '.join(DRUM_CLASSES)}")
    names = [pack.name for pack in packs]
    if len(set(names)) != len(names):
        raise ValueError(f"pack names must be distinct, got {names}")
    if clips_per_class_per_pack < 1:
        raise ValueError(f"clips_per_class_per_pack must be at least 1, got {clips_per_class_per_pack}")

    paths = []
    for pack in packs:
        for kind in classes:
            rng = np.random.default_rng([seed, _stable_number(pack.name), _stable_number(kind)])
            folder = Path(root) / kind / pack.name
            folder.mkdir(parents=True, exist_ok=True)
            for number in range(1, clips_per_class_per_pack + 1):
                path = folder / f"{pack.name}_{kind}_{number:02d}.{pack.file_format}"
                _write_clip(path, synthesize_hit(kind, pack, rng), pack)
                paths.append(path)
    return sorted(paths)


# ---------------------------------------------------------------------------------------------
# Section tracks

# One chord per bar, cycling: A minor, F major, C major, G major (MIDI notes).
_CHORDS = ((57, 60, 64), (57, 60, 65), (55, 60, 64), (55, 59, 62))
_BASS_ROOTS = (33, 29, 36, 31)  # A1, F1, C2, G1


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def _saw(t: np.ndarray, freq: float, phase0: float) -> np.ndarray:
    return 2.0 * ((freq * t + phase0) % 1.0) - 1.0


class _Track:
    """A mix buffer on a beat grid that sections are arranged into."""

    def __init__(self, n_samples: int, sr: int, bpm: float, beats_per_bar: int, offset_s: float,
                 rng: np.random.Generator) -> None:
        self.audio = np.zeros(n_samples)
        self.sr = sr
        self.beat_s = 60.0 / bpm
        self.beats_per_bar = beats_per_bar
        self.offset_s = offset_s
        self.rng = rng
        kit_pack = PackTimbre("track_kit", sr, "wav", "FLOAT", decay=0.8, brightness=1.2, drive=0.2,
                              noise_floor_db=-120.0)
        self.kit = {kind: _normalise(synthesize_hit(kind, kit_pack, rng).astype(np.float64))
                    for kind in ("kick", "snare", "clap", "hihat_closed", "hihat_open", "crash")}

    def sample_at(self, beat: float) -> int:
        return round((self.offset_s + beat * self.beat_s) * self.sr)

    def add(self, sound: np.ndarray, beat: float, gain: float) -> None:
        start = self.sample_at(beat)
        end = min(self.audio.size, start + sound.size)
        if end > start:
            self.audio[start:end] += gain * sound[: end - start]

    def hits(self, kind: str, beats: np.ndarray, gain: float) -> None:
        for beat in beats:
            self.add(self.kit[kind], beat, gain)

    def chord(self, beat: float) -> tuple[int, ...]:
        return _CHORDS[int(beat // self.beats_per_bar) % len(_CHORDS)]

    def bass_root(self, beat: float) -> int:
        return _BASS_ROOTS[int(beat // self.beats_per_bar) % len(_BASS_ROOTS)]


def _every(start: int, n_beats: int, step: float = 1.0, phase: float = 0.0) -> np.ndarray:
    """Beat positions start+phase, start+phase+step, ... inside [start, start+n_beats)."""
    return np.arange(start + phase, start + n_beats, step)


def _backbeats(track: _Track, start: int, n_beats: int) -> np.ndarray:
    beats = _every(start, n_beats)
    return beats[(beats % track.beats_per_bar) % 2 == 1]


def _pad_bar(track: _Track, notes: Sequence[int], cutoff_hz: float) -> np.ndarray:
    """One bar of a soft detuned-saw chord with a slow swell and release."""
    sr, bar_s = track.sr, track.beat_s * track.beats_per_bar
    t = np.arange(round(bar_s * sr)) / sr
    voices = sum(_saw(t, _midi_hz(note) * detune, track.rng.uniform())
                 for note in notes for detune in (0.997, 1.003))
    swell = np.minimum(1.0, np.minimum(t / 0.25, (bar_s - t) / 0.25))
    return _lowpass(voices, sr, cutoff_hz) * swell / (2 * len(notes))


def _chords(track: _Track, start: int, n_beats: int, gain: float, cutoff_hz: float) -> None:
    for bar_beat in _every(start, n_beats, track.beats_per_bar):
        track.add(_pad_bar(track, track.chord(bar_beat), cutoff_hz), bar_beat, gain)


def _bass(track: _Track, start: int, n_beats: int, gain: float) -> None:
    """A sub bass following the chord roots, ducked on every beat like a sidechained bass."""
    sr = track.sr
    t = np.arange(round(n_beats * track.beat_s * sr)) / sr
    beat_in_section = t / track.beat_s
    roots_hz = np.array([_midi_hz(track.bass_root(start + beat)) for beat in range(n_beats)])
    freq = roots_hz[np.minimum(beat_in_section.astype(int), n_beats - 1)]
    phase = _phase(freq, sr)
    tone = np.sin(phase) + 0.25 * np.sin(2 * phase)
    pump = 0.2 + 0.8 * np.minimum(1.0, (beat_in_section % 1.0) / 0.6) ** 2
    track.add(tone * pump, start, gain)


def _lead(track: _Track, start: int, n_beats: int, gain: float) -> None:
    """A bright saw lead playing a chord tone an octave up on every beat."""
    sr = track.sr
    t = np.arange(round(track.beat_s * sr)) / sr
    for beat in _every(start, n_beats):
        note = track.chord(beat)[(0, 1, 2, 1)[int(beat) % 4]] + 12
        tone = _saw(t, _midi_hz(note), 0.0) + 0.5 * _saw(t, _midi_hz(note) * 1.005, 0.5)
        envelope = (1.0 - np.exp(-t / 0.005)) * _decay(t, 1.5 * track.beat_s)
        track.add(_lowpass(tone, sr, 6000.0) * envelope, beat, gain)


def _riser(track: _Track, start: int, n_beats: int, gain: float) -> None:
    """White noise through a low-pass whose corner sweeps up from 200 Hz, getting louder."""
    sr, block = track.sr, 512
    noise = track.rng.standard_normal(round(n_beats * track.beat_s * sr))
    corners = np.geomspace(200.0, 0.4 * sr, -(-noise.size // block))
    swept = np.empty_like(noise)
    state = np.zeros((1, 2))  # a 2nd-order Butterworth is one second-order section
    for i, corner in enumerate(corners):
        sos = butter(2, corner, btype="lowpass", fs=sr, output="sos")
        swept[i * block:(i + 1) * block], state = sosfilt(sos, noise[i * block:(i + 1) * block], zi=state)
    track.add(swept * np.linspace(0.0, 1.0, noise.size) ** 2, start, gain)


def _snare_roll(track: _Track, start: int, n_beats: int) -> None:
    """Snare hits getting denser through the section (quarters, eighths, sixteenths, thirty-seconds)
    and louder."""
    for beat in range(start, start + n_beats):
        part = 4 * (beat - start) // n_beats  # which quarter of the section, 0..3
        track.hits("snare", _every(beat, 1, 1.0 / 2**part), 0.15 + 0.1 * part)


def _intro_or_outro(track: _Track, start: int, n_beats: int) -> None:
    track.hits("kick", _every(start, n_beats), 0.45)
    track.hits("hihat_closed", _every(start, n_beats, phase=0.5), 0.1)


def _build(track: _Track, start: int, n_beats: int) -> None:
    track.hits("kick", _every(start, n_beats), 0.6)
    _snare_roll(track, start, n_beats)
    _riser(track, start, n_beats, 0.3)


def _drop(track: _Track, start: int, n_beats: int) -> None:
    track.hits("kick", _every(start, n_beats), 1.0)
    _bass(track, start, n_beats, 0.45)
    track.hits("hihat_closed", _every(start, n_beats, phase=0.5), 0.25)
    track.hits("snare", _backbeats(track, start, n_beats), 0.5)
    track.hits("clap", _backbeats(track, start, n_beats), 0.4)


def _break(track: _Track, start: int, n_beats: int) -> None:
    _chords(track, start, n_beats, 0.5, cutoff_hz=1200.0)


def _verse(track: _Track, start: int, n_beats: int) -> None:
    track.hits("kick", _every(start, n_beats), 0.7)
    track.hits("snare", _backbeats(track, start, n_beats), 0.4)
    _chords(track, start, n_beats, 0.25, cutoff_hz=900.0)


def _chorus(track: _Track, start: int, n_beats: int) -> None:
    track.hits("crash", _every(start, 1), 0.35)
    track.hits("kick", _every(start, n_beats), 0.9)
    track.hits("snare", _backbeats(track, start, n_beats), 0.45)
    track.hits("clap", _backbeats(track, start, n_beats), 0.3)
    track.hits("hihat_open", _every(start, n_beats, phase=0.5), 0.15)
    _chords(track, start, n_beats, 0.3, cutoff_hz=2500.0)
    _lead(track, start, n_beats, 0.25)


_SECTIONS: dict[str, Callable[[_Track, int, int], None]] = {
    "intro": _intro_or_outro, "build": _build, "drop": _drop, "break": _break,
    "verse": _verse, "chorus": _chorus, "outro": _intro_or_outro,
}
SECTION_LABELS: tuple[str, ...] = tuple(_SECTIONS)


def synthesize_section_track(sections: Sequence[tuple[str, int]], bpm: float = 124.0, sample_rate: int = 22050,
                             beats_per_bar: int = 4, offset_s: float = 0.0, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """A simple electronic track made of DJ sections, e.g. [("intro", 8), ("build", 4), ("drop", 8), ("break", 4), ("outro", 4)]
    (label, length in bars). Returns (mono float32 audio, sections) where each section dict has
    label, start_beat, end_beat, start_s, end_s (beat 0 at offset_s; beats are 0-based and contiguous).

    Labels are those in SECTION_LABELS. Wherever there are drums there is a kick on every beat, so
    beat trackers lock on; the audio before offset_s is silent and the track ends with the last beat.
    """
    if not sections:
        raise ValueError("a track needs at least one section")
    for label, bars in sections:
        if label not in _SECTIONS:
            raise ValueError(f"unknown section {label!r}; expected one of {', '.join(SECTION_LABELS)}")
        if int(bars) != bars or bars < 1:
            raise ValueError(f"section {label!r} must last a whole number of bars (at least 1), got {bars}")
    if not bpm > 0:
        raise ValueError(f"bpm must be positive, got {bpm}")
    if beats_per_bar < 1:
        raise ValueError(f"beats_per_bar must be at least 1, got {beats_per_bar}")
    if offset_s < 0:
        raise ValueError(f"offset_s must not be negative, got {offset_s}")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be at least 8000 Hz, got {sample_rate}")

    beat_s = 60.0 / bpm
    total_beats = sum(int(bars) for _, bars in sections) * beats_per_bar
    track = _Track(round((offset_s + total_beats * beat_s) * sample_rate), sample_rate, bpm, beats_per_bar,
                   offset_s, np.random.default_rng(seed))
    layout = []
    beat = 0
    for label, bars in sections:
        n_beats = int(bars) * beats_per_bar
        _SECTIONS[label](track, beat, n_beats)
        layout.append({"label": label, "start_beat": beat, "end_beat": beat + n_beats,
                       "start_s": offset_s + beat * beat_s, "end_s": offset_s + (beat + n_beats) * beat_s})
        beat += n_beats
    return _normalise(track.audio, 0.9).astype(np.float32), layout


# Drum patterns on a 16-step bar (sixteenth notes): the steps each voice plays.
DRUM_PATTERNS: dict[str, dict[str, tuple[int, ...]]] = {
    "four_on_the_floor": {"kick": (0, 4, 8, 12), "clap": (4, 12), "hihat_closed": (2, 6, 10, 14)},
    "eighth_hats": {"kick": (0, 4, 8, 12), "snare": (4, 12), "hihat_closed": (0, 2, 4, 6, 8, 10, 12, 14)},
    "breakbeat": {"kick": (0, 10), "snare": (4, 12), "hihat_closed": (0, 2, 4, 6, 8, 10, 12, 14)},
    "hip_hop": {"kick": (0, 7, 10), "snare": (4, 12), "hihat_closed": (0, 2, 4, 6, 8, 10, 12, 14)},
}


def synthesize_drum_loop(pattern: str, bpm: float, bars: int, *, swing: float = 0.5, offset_s: float = 0.0,
                         sample_rate: int = 22050, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`bars` bars of a drum pattern (one of DRUM_PATTERNS) at `bpm`, 4 beats a bar, after
    `offset_s` of silence. `swing` is where the off-beat eighth falls within its beat (0.5
    straight, 2/3 a triplet swing); the sixteenths around it move in proportion. Returns (mono
    float32 audio, the times of every beat in seconds)."""
    if pattern not in DRUM_PATTERNS:
        raise ValueError(f"unknown drum pattern {pattern!r}; expected one of {', '.join(DRUM_PATTERNS)}")
    if not (bpm > 0 and bars >= 1 and 0 < swing < 1 and offset_s >= 0):
        raise ValueError(f"bad drum loop: bpm={bpm}, bars={bars}, swing={swing}, offset_s={offset_s}")
    rng = np.random.default_rng(seed)
    beat_s = 60.0 / bpm
    kit_pack = PackTimbre("loop_kit", sample_rate, "wav", "FLOAT", noise_floor_db=-120.0)
    kit = {kind: _normalise(synthesize_hit(kind, kit_pack, rng).astype(np.float64))
           for voices in DRUM_PATTERNS.values() for kind in voices}
    audio = np.zeros(round((offset_s + bars * 4 * beat_s) * sample_rate) + sample_rate // 2)
    step_within_beat = {0: 0.0, 1: swing / 2, 2: swing, 3: (1 + swing) / 2}
    gains = {"kick": 1.0, "snare": 0.7, "clap": 0.6, "hihat_closed": 0.25}
    for bar in range(bars):
        for kind, steps in DRUM_PATTERNS[pattern].items():
            for step in steps:
                beat = bar * 4 + step // 4 + step_within_beat[step % 4]
                start = round((offset_s + beat * beat_s) * sample_rate)
                sound = kit[kind][: audio.size - start]
                audio[start:start + sound.size] += gains[kind] * rng.uniform(0.8, 1.0) * sound
    beats = offset_s + beat_s * np.arange(bars * 4)
    return _normalise(audio, 0.9).astype(np.float32), beats
