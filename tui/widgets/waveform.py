"""The waveform of a clip in braille dots, with the beat ruler and the lane of labelled segments.

The screen hands in what to draw (a `Marks` of the visible span, segments, selection, playhead)
and, for the waveform, the min/max envelope it computed off the event loop; drawing here is only
turning arrays into characters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from engine.audio.beatgrid import BeatGrid

BRAILLE_BASE = 0x2800
# Bit of each dot in a braille cell, by (dot row 0..3, dot column 0..1).
BRAILLE_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int32)
UNLABELLED = "#9ca3af"
SELECTION_BG = "#334155"
PLAYHEAD = Style(color="#000000", bgcolor="#facc15")


@dataclass(frozen=True)
class Band:
    """A labelled segment as drawn: seconds, colour, name; a model's suggestion awaiting a person is
    `suggested` (the lane draws it in its own style, marked "?")."""

    start_s: float
    end_s: float
    colour: str
    name: str
    suggested: bool = False


@dataclass(frozen=True)
class Marks:
    """Everything drawn over the audio: the visible span, the segments, the selection, the playhead."""

    start_s: float = 0.0
    end_s: float = 1.0
    duration_s: float = 1.0
    bands: tuple[Band, ...] = ()
    selection: tuple[float, float] | None = None
    playhead_s: float = 0.0
    grid: BeatGrid | None = None

    def column_of(self, seconds: float, width: int) -> int:
        return int(math.floor((seconds - self.start_s) / (self.end_s - self.start_s) * width))

    def column_seconds(self, width: int) -> np.ndarray:
        """The start time of each of `width` columns."""
        return self.start_s + np.arange(width) * ((self.end_s - self.start_s) / width)

    def band_colours(self, width: int) -> list[str | None]:
        """The colour of the shortest segment under each column (None where nothing is labelled)."""
        starts = self.column_seconds(width) + (self.end_s - self.start_s) / width / 2
        colours: list[str | None] = [None] * width
        for band in sorted(self.bands, key=lambda b: b.end_s - b.start_s, reverse=True):
            for column in np.nonzero((starts >= band.start_s) & (starts < band.end_s))[0]:
                colours[column] = band.colour
        return colours

    def selected_columns(self, width: int) -> np.ndarray:
        if self.selection is None:
            return np.zeros(width, dtype=bool)
        centres = self.column_seconds(width) + (self.end_s - self.start_s) / width / 2
        return (centres >= self.selection[0]) & (centres < self.selection[1])

    def playhead_column(self, width: int) -> int | None:
        column = self.column_of(self.playhead_s, width)
        return column if 0 <= column < width else None


def strip_of(cells: Sequence[tuple[str, Style]], width: int, base: Style) -> Strip:
    """One line from (text, style) cells, with runs of the same style joined."""
    segments: list[Segment] = []
    for text, style in cells:
        if segments and segments[-1].style == style:
            segments[-1] = Segment(segments[-1].text + text, style)
        else:
            segments.append(Segment(text, style))
    return Strip(segments, width).adjust_cell_length(width, base)


def cell_style(colour: str | None, selected: bool, playhead: bool, base: Style) -> Style:
    if playhead:
        return PLAYHEAD
    style = base + Style(color=colour or UNLABELLED)
    return style + Style(bgcolor=SELECTION_BG) if selected else style


class MarkedView(Widget):
    """A widget drawn over `marks`; setting new marks redraws it."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.marks = Marks()

    def show_marks(self, marks: Marks) -> None:
        self.marks = marks
        self.refresh()


class TimeRuler(MarkedView):
    """Bar numbers (1-based) and beat ticks on a clip with a grid; minutes:seconds without one."""

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        text = self.bar_line(width) if self.marks.grid is not None else self.seconds_line(width)
        return strip_of([(text, self.rich_style)], width, self.rich_style)

    def bar_line(self, width: int) -> str:
        marks, grid = self.marks, self.marks.grid
        cells = [" "] * width
        first_beat = max(0, math.ceil(grid.beat_at(marks.start_s)))
        last_beat = math.floor(grid.beat_at(min(marks.end_s, marks.duration_s)))
        beats = np.arange(first_beat, last_beat + 1)
        columns = [marks.column_of(float(t), width) for t in grid.seconds_at(beats.astype(float))]
        if len(beats) > 1 and width / max(1, len(beats)) >= 2:
            for column in columns:
                if 0 <= column < width:
                    cells[column] = "·"
        per_bar = width / max(1.0, (last_beat - first_beat + 1) / grid.beats_per_bar)
        label_every = next(n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256, 1 << 20)
                           if per_bar * n >= len(str(last_beat // grid.beats_per_bar + 1)) + 2)
        for beat, column in zip(beats, columns):
            bar = int(beat) // grid.beats_per_bar
            if beat % grid.beats_per_bar or not 0 <= column < width or bar % label_every:
                continue
            label = f"│{bar + 1}"
            if all(cell in " ·" for cell in cells[column:column + len(label)]):
                cells[column:column + len(label)] = label[: width - column]
        return "".join(cells)[:width]

    def seconds_line(self, width: int) -> str:
        marks = self.marks
        span = marks.end_s - marks.start_s
        step = next(s for s in (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1e9)
                    if width / (span / s) >= 7)
        cells = [" "] * width
        tick = math.ceil(marks.start_s / step) * step
        while tick < min(marks.end_s, marks.duration_s):
            column = marks.column_of(tick, width)
            minutes, seconds = divmod(tick, 60)
            label = f"│{int(minutes)}:{seconds:0{5 if step < 1 else 2}.{2 if step < 1 else 0}f}"
            if 0 <= column < width and all(c == " " for c in cells[column:column + len(label)]):
                cells[column:column + len(label)] = label[: width - column]
            tick += step
        return "".join(cells)[:width]


class SegmentLane(MarkedView):
    """One line: each labelled segment as a coloured bar with its name where it fits; a suggestion
    in the style of `segment-lane--suggested` (styles/label.tcss), its name after a "?"."""

    COMPONENT_CLASSES = {"segment-lane--suggested"}

    def render_line(self, y: int) -> Strip:
        width, marks, base = self.size.width, self.marks, self.rich_style
        suggested = self.get_component_rich_style("segment-lane--suggested", partial=True)
        cells = [(" ", base)] * width
        for band in sorted(marks.bands, key=lambda b: b.end_s - b.start_s, reverse=True):
            first = max(0, marks.column_of(band.start_s, width))
            last = min(width, marks.column_of(band.end_s, width))
            if last <= first:
                continue
            if band.suggested:
                colour = Style(bgcolor=band.colour, color="#000000") + suggested
                name = (" ? " + band.name)[: last - first]
            else:
                colour = Style(bgcolor=band.colour, color="#000000", bold=True)
                name = (" " + band.name)[: last - first]
            for column in range(first, last):
                offset = column - first
                cells[column] = (name[offset] if offset < len(name) else " ", colour)
        column = marks.playhead_column(width)
        if column is not None:
            cells[column] = ("▼", Style(color="#facc15", bold=True))
        return strip_of(cells, width, base)


@dataclass
class Envelope:
    """Min/max of the samples under each dot column (two per character cell); NaN = not decoded yet."""

    lows: np.ndarray = field(default_factory=lambda: np.zeros(0))
    highs: np.ndarray = field(default_factory=lambda: np.zeros(0))


def braille_rows(lows: np.ndarray, highs: np.ndarray, rows: int) -> list[str]:
    """The waveform as `rows` lines of braille: each character is 2 dot columns × 4 dot rows,
    every dot column filled from its minimum to its maximum (amplitude +1 at the top)."""
    dot_rows = rows * 4
    columns = len(lows) // 2 * 2
    if columns == 0 or rows == 0:
        return [""] * rows
    lows, highs = np.nan_to_num(lows[:columns], nan=np.inf), np.nan_to_num(highs[:columns], nan=-np.inf)
    scale = (dot_rows - 1) / 2
    top = np.clip(np.floor((1 - np.clip(highs, -1, 1)) * scale), 0, dot_rows - 1)
    bottom = np.clip(np.ceil((1 - np.clip(lows, -1, 1)) * scale), 0, dot_rows - 1)
    dots = np.arange(dot_rows)[:, None]
    filled = (dots >= top[None, :]) & (dots <= bottom[None, :]) & np.isfinite(lows)[None, :]
    cells = filled.reshape(rows, 4, columns // 2, 2)
    codes = (cells * BRAILLE_BITS[None, :, None, :]).sum(axis=(1, 3)) + BRAILLE_BASE
    return ["".join(map(chr, line)) for line in codes]


class Waveform(MarkedView, can_focus=True):
    """The clip's waveform, coloured by the segment under each column; the selection on a
    lighter ground; the playhead as a bright column."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.envelope = Envelope()
        self._lines: list[str] = []

    def show_envelope(self, envelope: Envelope, marks: Marks) -> None:
        self.envelope = envelope
        self._lines = braille_rows(envelope.lows, envelope.highs, self.size.height)
        self.show_marks(marks)

    def clear(self) -> None:
        """Nothing drawn until the next envelope (a new clip is on its way)."""
        self.envelope = Envelope()
        self._lines = []
        self.refresh()

    def on_resize(self) -> None:
        self._lines = braille_rows(self.envelope.lows, self.envelope.highs, self.size.height)

    def render_line(self, y: int) -> Strip:
        width, base = self.size.width, self.rich_style
        line = self._lines[y] if y < len(self._lines) else ""
        line = line[:width].ljust(width, " ")
        colours = self.marks.band_colours(width)
        selected = self.marks.selected_columns(width)
        playhead = self.marks.playhead_column(width)
        cells = [(char if column != playhead or char != chr(BRAILLE_BASE) else "│",
                  cell_style(colours[column], bool(selected[column]), column == playhead, base))
                 for column, char in enumerate(line)]
        return strip_of(cells, width, base)
