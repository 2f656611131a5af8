"""Beat grids: converting between beats and seconds within a clip.

Beat 0 is the first beat, at `offset_s`. Beats are 0-based and may be fractional (64.5 is half a
beat after beat 64) or negative (before the first beat, extrapolated). Bar n starts at beat
n * beats_per_bar.

A grid either has a constant tempo (seconds = offset_s + beat * 60 / bpm) or lists its beats
explicitly (`beat_times[i]` is beat i). An explicit grid converts piecewise linearly between the
listed beats and extrapolates before the first / after the last with the tempo of the first /
last interval. Its `bpm` and `offset_s` describe it for display only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from engine.errors import InputError

MAX_BPM = 1000.0
MIN_DETECT_SECONDS = 4.0
MIN_DETECT_BEATS = 4
END_TOLERANCE_S = 1e-3  # a range may end this far past the end of the clip (rounding of durations)

# Snap targets: the step of each, in beats (None = one bar).
_SNAP_STEPS: dict[str, float | None] = {"beat": 1.0, "bar": None, "half": 0.5, "quarter": 0.25}


def _fmt(value: float) -> str:
    """64 → '64', 64.5 → '64.5' (the same spelling Segment keys use)."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _result(values: np.ndarray, scalar: bool) -> float | np.ndarray:
    return float(values) if scalar else values


@dataclass(frozen=True)
class BeatGrid:
    bpm: float
    offset_s: float = 0.0
    beats_per_bar: int = 4
    beat_times: tuple[float, ...] | None = None  # explicit beat positions; None = constant tempo

    def __post_init__(self) -> None:
        if isinstance(self.bpm, bool) or not isinstance(self.bpm, Real):
            raise ValueError(f"bpm must be a number, got {self.bpm!r}")
        if not (math.isfinite(self.bpm) and 0 < self.bpm <= MAX_BPM):
            raise ValueError(f"bpm must be a finite number in (0, {MAX_BPM:g}], got {self.bpm!r}")
        if isinstance(self.offset_s, bool) or not isinstance(self.offset_s, Real):
            raise ValueError(f"offset_s must be a number, got {self.offset_s!r}")
        if not math.isfinite(self.offset_s):
            raise ValueError(f"offset_s must be a finite number, got {self.offset_s!r}")
        if isinstance(self.beats_per_bar, bool) or not isinstance(self.beats_per_bar, Integral):
            raise ValueError(f"beats_per_bar must be an integer, got {self.beats_per_bar!r}")
        if self.beats_per_bar < 1:
            raise ValueError(f"beats_per_bar must be at least 1, got {self.beats_per_bar}")
        # Normalise so that equal grids compare (and hash) equal however they were spelled.
        object.__setattr__(self, "bpm", float(self.bpm))
        object.__setattr__(self, "offset_s", float(self.offset_s))
        object.__setattr__(self, "beats_per_bar", int(self.beats_per_bar))
        if self.beat_times is not None:
            object.__setattr__(self, "beat_times", _check_times(self.beat_times))

    @classmethod
    def constant(cls, bpm: float, offset_s: float = 0.0, beats_per_bar: int = 4) -> BeatGrid:
        return cls(bpm=bpm, offset_s=offset_s, beats_per_bar=beats_per_bar)

    @classmethod
    def from_beat_times(cls, times: Sequence[float], beats_per_bar: int = 4) -> BeatGrid:
        """bpm = 60 / median inter-beat interval, offset = times[0]; needs >= 2 strictly
        increasing finite times."""
        checked = _check_times(times)
        bpm = 60.0 / float(np.median(np.diff(checked)))
        return cls(bpm=bpm, offset_s=checked[0], beats_per_bar=beats_per_bar, beat_times=checked)

    @property
    def is_constant(self) -> bool:
        return self.beat_times is None

    # --- conversion -------------------------------------------------------------------------

    def seconds_at(self, beat: float | np.ndarray) -> float | np.ndarray:
        """The time of a beat (or an array of beats), in seconds from the start of the clip."""
        scalar = np.ndim(beat) == 0
        b = np.asarray(beat, dtype=float)
        if self.beat_times is None:
            return _result(self.offset_s + b * (60.0 / self.bpm), scalar)
        times = np.asarray(self.beat_times)
        last = len(times) - 1
        seconds = np.interp(b, np.arange(len(times), dtype=float), times)
        seconds = np.where(b < 0, times[0] + b * (times[1] - times[0]), seconds)
        seconds = np.where(b > last, times[-1] + (b - last) * (times[-1] - times[-2]), seconds)
        return _result(seconds, scalar)

    def beat_at(self, seconds: float | np.ndarray) -> float | np.ndarray:
        """The (fractional) beat at a time; the exact inverse of `seconds_at`."""
        scalar = np.ndim(seconds) == 0
        s = np.asarray(seconds, dtype=float)
        if self.beat_times is None:
            return _result((s - self.offset_s) * (self.bpm / 60.0), scalar)
        times = np.asarray(self.beat_times)
        last = len(times) - 1
        beats = np.interp(s, times, np.arange(len(times), dtype=float))
        beats = np.where(s < times[0], (s - times[0]) / (times[1] - times[0]), beats)
        beats = np.where(s > times[-1], last + (s - times[-1]) / (times[-1] - times[-2]), beats)
        return _result(beats, scalar)

    def beat_of_bar(self, bar: float) -> float:
        return float(bar) * self.beats_per_bar

    def bar_of_beat(self, beat: float) -> float:
        return float(beat) / self.beats_per_bar

    def position(self, beat: float) -> str:
        """Where `beat` (0-based, as files store it) lies as a DAW shows it: bar.beat, both 1-based
        (beat 0 → '1.1', beat 9 → '3.2' in 4/4), with the sixteenth (1-based) added between beats
        ('3.2.3' is beat 9.5); a position before beat 0 reads as the first beat."""
        sixteenths = math.floor(max(0.0, float(beat)) * 4 + 1e-6)
        whole, sixteenth = divmod(sixteenths, 4)
        bar, in_bar = divmod(whole, self.beats_per_bar)
        return f"{bar + 1}.{in_bar + 1}" + (f".{sixteenth + 1}" if sixteenth else "")

    def describe_range(self, start_beat: float, end_beat: float) -> str:
        """'beats 0–32 (1.1–9.1)': the beats files use, then bar.beat as a DAW shows the range."""
        return (f"beats {_fmt(start_beat)}–{_fmt(end_beat)} "
                f"({self.position(start_beat)}–{self.position(end_beat)})")

    def end_beat(self, duration_s: float) -> float:
        """The beat at the very end of a clip of `duration_s` seconds (fractional, as Segment keys
        spell beats: four decimals), where a range that runs to the clip's end ends."""
        return math.floor(float(self.beat_at(float(duration_s))) * 1e4) / 1e4

    def snap(self, beat: float, to: str = "beat") -> float:
        """The nearest beat, bar start, half or quarter beat (measured in beats; ties go up)."""
        if to not in _SNAP_STEPS:
            raise InputError(f"cannot snap to {to!r}; choose one of {', '.join(_SNAP_STEPS)}")
        step = _SNAP_STEPS[to] or float(self.beats_per_bar)
        return math.floor(float(beat) / step + 0.5) * step

    def beat_times_within(self, duration_s: float) -> np.ndarray:
        """Times of the whole beats 0, 1, 2, ... that lie inside [0, duration_s]; element i is
        beat i's time. Extrapolated beats before beat 0 are left out, since they can't be used
        in a beat range."""
        if not math.isfinite(duration_s) or duration_s < 0:
            return np.empty(0)
        last = math.floor(self.beat_at(float(duration_s)) + 1e-9)
        if last < 0:
            return np.empty(0)
        times = self.seconds_at(np.arange(last + 1, dtype=float))
        return times[(times >= 0) & (times <= duration_s + 1e-9)]

    def check_range(self, start_beat: float, end_beat: float, duration_s: float) -> None:
        """Raise InputError unless 0 <= start < end and the range ends inside the clip."""
        span = f"beats {_fmt(start_beat)}–{_fmt(end_beat)}"
        if not math.isfinite(duration_s):
            raise InputError(f"{span}: the clip's duration is unknown ({duration_s!r})")
        last = math.floor(self.beat_at(float(duration_s) + END_TOLERANCE_S))
        if last >= 0:
            clip = f"the clip is {duration_s:.3f} s long and its last beat is {last}"
        else:
            clip = f"the clip is {duration_s:.3f} s long and has no beats on this grid"
        if not (math.isfinite(start_beat) and math.isfinite(end_beat)):
            raise InputError(f"{span}: beats must be finite numbers")
        if start_beat < 0:
            raise InputError(
                f"{span}: the start beat must not be negative (beat 0 is the first beat; {clip})"
            )
        if not start_beat < end_beat:
            raise InputError(f"{span}: the start beat must be before the end beat ({clip})")
        end_s = self.seconds_at(float(end_beat))
        if end_s > duration_s + END_TOLERANCE_S:
            raise InputError(
                f"{span}: beat {_fmt(end_beat)} is at {end_s:.3f} s, past the end of the clip ({clip})"
            )

    # --- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "bpm": self.bpm,
            "offset_s": self.offset_s,
            "beats_per_bar": self.beats_per_bar,
            "beat_times": None if self.beat_times is None else list(self.beat_times),
        }

    @classmethod
    def from_dict(cls, data: dict) -> BeatGrid:
        if not isinstance(data, dict) or "bpm" not in data:
            raise ValueError(f"a beat grid needs at least a 'bpm', got {data!r}")
        unknown = set(data) - {"bpm", "offset_s", "beats_per_bar", "beat_times"}
        if unknown:
            raise ValueError(f"unknown beat grid field(s): {', '.join(sorted(unknown))}")
        times = data.get("beat_times")
        return cls(
            bpm=data["bpm"],
            offset_s=data.get("offset_s", 0.0),
            beats_per_bar=data.get("beats_per_bar", 4),
            beat_times=None if times is None else tuple(times),
        )


def _check_times(times: Sequence[float]) -> tuple[float, ...]:
    """Explicit beat times as a tuple of floats, or ValueError."""
    try:
        values = np.asarray(times, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"beat times must be numbers, got {times!r}") from None
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"beat times need at least 2 entries in a flat list, got {len(np.ravel(values))}")
    if not np.all(np.isfinite(values)):
        raise ValueError("beat times must be finite numbers")
    if not np.all(np.diff(values) > 0):
        at = int(np.argmax(np.diff(values) <= 0))
        raise ValueError(
            f"beat times must be strictly increasing: beat {at + 1} ({values[at + 1]}) "
            f"is not after beat {at} ({values[at]})"
        )
    return tuple(float(v) for v in values)


def detect_beat_grid(samples: np.ndarray, sample_rate: int, beats_per_bar: int = 4) -> BeatGrid:
    """The constant-tempo grid of mono `samples` (see engine.audio.beat_tracking): beat 0 is the
    first beat where the music sounds, taken as the first beat of bar 1.

    Raises InputError for clips under MIN_DETECT_SECONDS or when fewer than MIN_DETECT_BEATS
    beats are found."""
    from engine.audio.beat_tracking import track_tempo

    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"detect_beat_grid needs mono samples (1-D), got shape {samples.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    duration = len(samples) / sample_rate
    if duration < MIN_DETECT_SECONDS:
        raise InputError(
            f"too short for beat tracking: {duration:.2f} s (needs at least {MIN_DETECT_SECONDS:g} s)"
        )
    if not np.all(np.isfinite(samples)):
        raise InputError("cannot track beats: the audio contains non-finite samples")
    tempo = track_tempo(samples, sample_rate)
    found = 0 if tempo is None else tempo.beats_found
    if tempo is None or found < MIN_DETECT_BEATS:
        raise InputError(
            f"too short for beat tracking: found {found} beat(s) in {duration:.1f} s "
            f"(needs at least {MIN_DETECT_BEATS}; is the clip silent or without a steady beat?)"
        )
    return BeatGrid.constant(tempo.bpm, tempo.first_beat_s, beats_per_bar)


def detect_file_grid(path: str, beats_per_bar: int = 4) -> BeatGrid:
    """The grid of an audio file (`detect_beat_grid`), decoded straight at the tracker's own rate.

    Raises InputError as detect_beat_grid does, and OSError/RuntimeError for a file that cannot be read."""
    from engine.audio.beat_tracking import ANALYSIS_RATE, RESAMPLE_QUALITY
    from engine.audio.decode import decode

    samples, rate = decode(path, sample_rate=ANALYSIS_RATE, quality=RESAMPLE_QUALITY)
    return detect_beat_grid(samples, rate, beats_per_bar)
