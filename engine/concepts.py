"""The concept model shared by the engine, the CLI and the TUI.

A Clip is an audio file known by its content hash. A Segment is a part of a clip: the whole
clip, a range in seconds, or a range in beats on the clip's beat grid. A Label puts a taxonomy
value on a segment, with an origin and a confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Origin(StrEnum):
    """Who put a label on a segment. A segment keeps one label per origin, and the one that counts is
    the user's, else the imported one, else the model's (the store's `effective_labels` view)."""

    USER = "user"
    IMPORT = "import"
    MODEL = "model"


class Split(StrEnum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class JobState(StrEnum):
    """Where a job stands; stored and printed as its value."""

    PENDING = "pending"
    PREPARING = "preparing"
    RUNNING = "running"
    TRAINING = "training"
    EVALUATING = "evaluating"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # its process ended without finishing it

    @property
    def is_final(self) -> bool:
        """The job has ended and its state changes no more."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED)

    @property
    def is_live(self) -> bool:
        """The job is still waiting or working."""
        return not self.is_final


WHOLE_CLIP_KEY = "whole"


def _format_number(value: float) -> str:
    """A short, stable spelling of a beat or second value: 64 → '64', 1.25 → '1.25'."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@dataclass(frozen=True)
class Segment:
    """A part of a clip.

    - whole clip: every field None;
    - seconds range: start_s/end_s set, beats None;
    - beat range: start_beat/end_beat set; start_s/end_s hold their position on the current grid.
    """

    start_s: float | None = None
    end_s: float | None = None
    start_beat: float | None = None
    end_beat: float | None = None

    def __post_init__(self) -> None:
        for name in ("start_s", "end_s", "start_beat", "end_beat"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if (self.start_s is None) != (self.end_s is None):
            raise ValueError("a seconds range needs both start and end")
        if (self.start_beat is None) != (self.end_beat is None):
            raise ValueError("a beat range needs both start beat and end beat")
        if self.start_s is not None and not self.start_s < self.end_s:
            raise ValueError(f"start ({self.start_s}) must be before end ({self.end_s})")
        if self.start_s is not None and self.start_s < 0:
            raise ValueError(f"start ({self.start_s}) must not be negative")
        if self.start_beat is not None and not self.start_beat < self.end_beat:
            raise ValueError(f"start beat ({self.start_beat}) must be before end beat ({self.end_beat})")
        if self.start_beat is not None and self.start_s is None:
            raise ValueError("a beat range must carry its seconds on the grid")

    @classmethod
    def whole(cls) -> Segment:
        return cls()

    @classmethod
    def seconds(cls, start_s: float, end_s: float) -> Segment:
        return cls(start_s=float(start_s), end_s=float(end_s))

    @classmethod
    def window(cls, start_s: float, length_s: float) -> Segment:
        """A window of `length_s` seconds from `start_s`, its edges rounded to 0.1 ms (as training and
        inference slide windows along a track)."""
        return cls.seconds(round(float(start_s), 4), round(float(start_s) + length_s, 4))

    @property
    def is_whole(self) -> bool:
        return self.start_s is None

    @property
    def is_beat_range(self) -> bool:
        return self.start_beat is not None

    @property
    def key(self) -> str:
        """Identity of the segment for labels: a beat range is known by its beats, since its
        seconds move when the grid is edited."""
        if self.is_whole:
            return WHOLE_CLIP_KEY
        if self.is_beat_range:
            return f"b:{_format_number(self.start_beat)}-{_format_number(self.end_beat)}"
        return f"t:{self.start_s:.3f}-{self.end_s:.3f}"

    @property
    def region_key(self) -> str:
        """Identity of the audio the segment covers, for the feature cache."""
        if self.is_whole:
            return WHOLE_CLIP_KEY
        return f"t:{self.start_s:.4f}-{self.end_s:.4f}"

    def describe(self) -> str:
        if self.is_whole:
            return "whole clip"
        seconds = f"{self.start_s:.3f}s–{self.end_s:.3f}s"
        if self.is_beat_range:
            return f"beats {_format_number(self.start_beat)}–{_format_number(self.end_beat)} ({seconds})"
        return seconds


class Reason(StrEnum):
    """Why a file or a row was not imported."""

    EMPTY = "empty"
    NOT_AUDIO = "not audio"
    CORRUPT = "corrupt"
    ZERO_LENGTH = "zero length"
    UNREADABLE = "unreadable"
    CHANNELS = "unsupported channel layout"
    UNKNOWN_LABEL = "label outside the taxonomy"
    MISSING_FILE = "file not found"
    BAD_ROW = "bad row"
    NO_GRID = "no beat grid"
    OUT_OF_RANGE = "outside the clip"
    TOO_SHORT = "too short"
    KEPT = "kept as it is"
    DETECTION_FAILED = "detection failed"
    CHANGED = "changed since import"
    NOT_REGULAR = "not a regular file"
    TRUNCATED = "truncated"
    UNSUPPORTED_CODEC = "unsupported codec"
    UNKNOWN_TECHNIQUE = "technique outside the catalogue"


@dataclass(frozen=True)
class Rejection:
    """A file or a row that was left out, with where it is and why."""

    path: str
    reason: Reason
    detail: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.reason}" + (f" ({self.detail})" if self.detail else "")

    def to_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "reason": str(self.reason), "detail": self.detail}


@dataclass(frozen=True)
class LabelRecord:
    """A label read from a file (manifest, label track, event map), not yet tied to a clip.

    No range means the whole clip; a seconds range (start_s/end_s) and a beat range
    (start_beat/end_beat) may both be given, and then the beats win: they are resolved on the
    clip's grid when the record is imported.
    """

    audio_path: Path
    label: str
    start_s: float | None = None
    end_s: float | None = None
    start_beat: float | None = None
    end_beat: float | None = None
    source: str | None = None
    split: Split | None = None
    confidence: float = 1.0
    where: str = ""  # "file:line", for messages
    techniques: tuple[str, ...] = ()  # as the file names them, checked against the catalogue on import


@dataclass(frozen=True)
class Clip:
    clip_id: str  # sha256 of the file's bytes
    path: str
    source: str
    format: str
    duration_s: float
    sample_rate: int
    channels: int
    frames: int
    size_bytes: int
    peak: float = 0.0
    rms_db: float = -120.0
    clipped_fraction: float = 0.0

    @property
    def short_id(self) -> str:
        return self.clip_id[:12]


@dataclass(frozen=True)
class Label:
    label_id: int
    clip_id: str
    taxonomy: str
    label: str
    origin: Origin
    confidence: float
    segment: Segment = field(default_factory=Segment)
    split: Split | None = None
    lead_time_s: float | None = None  # a person's label: seconds from the clip opened (or its last label) to saving
    techniques: tuple[str, ...] = ()  # playing techniques from the taxonomy's technique catalogue


@dataclass(frozen=True)
class LabelledSegment:
    """A segment of a clip with its label: one row of what training, the gates, exports and the
    boundary check read. Carries the clip's file (path and size, to featurise it) and its source
    (to split by)."""

    clip_id: str
    path: str
    size_bytes: int
    source: str
    segment: Segment
    label: str | None  # None for a clip of an OOD folder: a sound outside every label set
    split: Split | None = None  # a fixed split from a manifest
    lead_time_s: float | None = None  # how long a person took to make the label, when timed
    asked: bool = False  # the label answers a model's suggestion (accepted or corrected): it trains
