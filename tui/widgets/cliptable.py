"""A table of clips that draws only the rows on screen, so 100,000 clips scroll as fast as 100.

The rows are plain `ClipRow`s handed in by the screen; this widget never touches the workspace.
Only visible lines are rendered (Textual's line API), and the columns share the width: the clip
name takes what the fixed columns leave. Names, sources and labels are drawn as plain text with
their control characters shown (`printable`), so a newline or ESC in a file name keeps its row.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from engine.library.browse import ClipRow
from engine.text import printable

FIXED_COLUMNS = (("source", 10), ("sec", 6), ("labels", 14), ("predicted", 12), ("conf", 5))
NAME_MIN_WIDTH = 12


def _cell(text: str, width: int) -> str:
    return text[: width - 1] + "…" if len(text) > width else text.ljust(width)


def _values(row: ClipRow) -> tuple[str, ...]:
    confidence = "" if row.confidence is None else f"{row.confidence:.2f}"
    return row.source, f"{row.duration_s:6.2f}", row.labels, row.predicted or "", confidence


class ClipTable(ScrollView, can_focus=True):
    """Rows of clips with a cursor; Enter opens the clip under it."""

    COMPONENT_CLASSES = {"clip-table--header", "clip-table--cursor", "clip-table--odd", "clip-table--empty"}
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First", show=False),
        Binding("end,G", "jump(-1)", "Last", show=False),
        Binding("enter", "open", "Open clip"),
    ]

    DEFAULT_CSS = """
    ClipTable {
        overflow-x: hidden;
    }
    """

    cursor_row: reactive[int] = reactive(0)

    class Highlighted(Message):
        def __init__(self, table: ClipTable, row: ClipRow) -> None:
            super().__init__()
            self.table, self.row = table, row

    class Opened(Message):
        def __init__(self, table: ClipTable, row: ClipRow, index: int) -> None:
            super().__init__()
            self.table, self.row, self.index = table, row, index

    def __init__(self, *, empty_text: str = "no clips", name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.rows: Sequence[ClipRow] = ()
        self.empty_text = empty_text

    # -- data -------------------------------------------------------------------------------
    def show_rows(self, rows: Sequence[ClipRow], keep_clip: str | None = None) -> None:
        """Replace the rows; the cursor stays on `keep_clip` when it is still listed."""
        self.rows = rows
        self.virtual_size = Size(self._width, len(rows) + 1)
        index = next((i for i, row in enumerate(rows) if row.clip_id == keep_clip), 0) if keep_clip else 0
        self.cursor_row = min(index, max(len(rows) - 1, 0))
        self._scroll_cursor_into_view()
        self.refresh()

    @property
    def current(self) -> ClipRow | None:
        return self.rows[self.cursor_row] if 0 <= self.cursor_row < len(self.rows) else None

    @property
    def row_count(self) -> int:
        return len(self.rows)

    # -- drawing ----------------------------------------------------------------------------
    @property
    def _width(self) -> int:
        return self.scrollable_content_region.width

    def _column_widths(self) -> list[int]:
        fixed = sum(width + 1 for _, width in FIXED_COLUMNS)
        return [max(NAME_MIN_WIDTH, self._width - fixed)] + [width for _, width in FIXED_COLUMNS]

    def _line(self, values: Sequence[str], style: Style) -> Strip:
        text = " ".join(_cell(printable(value), width) for value, width in zip(values, self._column_widths()))
        return Strip([Segment(_cell(text, self._width), style)], self._width)

    def render_line(self, y: int) -> Strip:
        if y == 0:
            titles = ["clip"] + [title for title, _ in FIXED_COLUMNS]
            return self._line(titles, self.get_component_rich_style("clip-table--header"))
        index = round(self.scroll_offset.y) + y - 1
        if not self.rows and y == 1:
            style = self.get_component_rich_style("clip-table--empty")
            return Strip([Segment(_cell(self.empty_text, self._width), style)], self._width)
        if index >= len(self.rows):
            return Strip.blank(self._width, self.rich_style)
        row = self.rows[index]
        style = self.rich_style
        if index % 2:
            style += self.get_component_rich_style("clip-table--odd")
        if index == self.cursor_row:
            style += self.get_component_rich_style("clip-table--cursor")
        return self._line((row.name, *_values(row)), style)

    def on_resize(self) -> None:
        self.virtual_size = Size(self._width, len(self.rows) + 1)

    # -- cursor -----------------------------------------------------------------------------
    @property
    def _visible_rows(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _scroll_cursor_into_view(self) -> None:
        top = round(self.scroll_offset.y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + self._visible_rows:
            self.scroll_to(y=self.cursor_row - self._visible_rows + 1, animate=False)

    def watch_cursor_row(self, previous: int, current: int) -> None:
        top = round(self.scroll_offset.y)
        for index in (previous, current):
            self.refresh(Region(0, index - top + 1, self._width, 1))
        self._scroll_cursor_into_view()
        if self.current is not None:
            self.post_message(self.Highlighted(self, self.current))

    def _move_to(self, index: int) -> None:
        if self.rows:
            self.cursor_row = max(0, min(index, len(self.rows) - 1))

    def action_cursor(self, step: int) -> None:
        self._move_to(self.cursor_row + step)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor_row + direction * self._visible_rows)

    def action_jump(self, index: int) -> None:
        self._move_to(index if index >= 0 else len(self.rows) - 1)

    def action_open(self) -> None:
        if self.current is not None:
            self.post_message(self.Opened(self, self.current, self.cursor_row))

    def on_click(self, event) -> None:
        index = round(self.scroll_offset.y) + event.y - 1
        if event.y >= 1 and 0 <= index < len(self.rows):
            if index == self.cursor_row and event.chain == 2:
                self.action_open()
            self.cursor_row = index
