"""A spectrogram in half-block characters: two frequency bands per line, coloured on a dark-to-bright
ramp, the low bands at the bottom. The image (bands × columns, values 0..1) is computed by the
screen off the event loop; this widget only colours it."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.style import Style
from textual.strip import Strip

from tui.widgets.waveform import PLAYHEAD, SELECTION_BG, MarkedView, strip_of

# A magma-like ramp: near black, purple, red, orange, pale yellow.
RAMP = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21),
                 (250, 193, 39), (252, 255, 164)], dtype=float)
LEVELS = 24
UPPER_HALF = "▀"


@lru_cache(maxsize=LEVELS + 1)
def level_colour(level: int) -> Color:
    position = level / (LEVELS - 1) * (len(RAMP) - 1)
    low = int(np.floor(position))
    high = min(low + 1, len(RAMP) - 1)
    r, g, b = RAMP[low] + (RAMP[high] - RAMP[low]) * (position - low)
    return Color.from_rgb(r, g, b)


@lru_cache(maxsize=(LEVELS + 1) ** 2 * 2)
def pixel_pair(upper: int, lower: int, selected: bool) -> Style:
    """The style of a cell showing `upper` over `lower` (level -1 = not decoded yet)."""
    blank = Color.parse(SELECTION_BG) if selected else Color.parse("#111111")
    return Style(color=level_colour(upper) if upper >= 0 else blank,
                 bgcolor=level_colour(lower) if lower >= 0 else blank)


def levels_of(image: np.ndarray) -> np.ndarray:
    """Image values in [0, 1] (NaN = missing) as ramp levels 0..LEVELS-1 (-1 = missing)."""
    levels = np.round(np.nan_to_num(image, nan=-1.0) * (LEVELS - 1)).astype(int)
    return np.where(np.isnan(image), -1, np.clip(levels, 0, LEVELS - 1))


class Spectrogram(MarkedView):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.levels = np.zeros((0, 0), dtype=int)

    @property
    def bands(self) -> int:
        """How many frequency bands fit: two per line."""
        return max(2, self.size.height * 2)

    def clear(self) -> None:
        self.levels = np.zeros((0, 0), dtype=int)
        self.refresh()

    def show_image(self, image: np.ndarray, marks) -> None:
        self.levels = levels_of(image)
        self.show_marks(marks)

    def render_line(self, y: int) -> Strip:
        width, base = self.size.width, self.rich_style
        bands, columns = self.levels.shape
        upper_band, lower_band = bands - 1 - 2 * y, bands - 2 - 2 * y
        if lower_band < 0 or columns == 0:
            return Strip.blank(width, base)
        selected = self.marks.selected_columns(width)
        playhead = self.marks.playhead_column(width)
        cells = []
        for column in range(min(width, columns)):
            if column == playhead:
                cells.append(("│", PLAYHEAD))
                continue
            style = pixel_pair(int(self.levels[upper_band, column]), int(self.levels[lower_band, column]),
                               bool(selected[column]))
            cells.append((UPPER_HALF, style))
        return strip_of(cells, width, base)
