"""The labels on the open clip, one row per segment, coloured by taxonomy; `enter` picks the row
under the cursor for editing, and `delete` removes it while the list has focus. A beat range reads
as its beats and, beside them, bar.beat."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from engine.audio.beatgrid import BeatGrid
from engine.concepts import Label, Origin


def describe_range(label: Label, grid: BeatGrid | None) -> str:
    segment = label.segment
    if segment.is_whole:
        return "whole clip"
    if segment.is_beat_range:
        if grid is not None:
            return grid.describe_range(segment.start_beat, segment.end_beat)
        return f"beats {segment.start_beat:g}–{segment.end_beat:g}"
    return f"{segment.start_s:.2f}–{segment.end_s:.2f} s"


class SegmentTable(DataTable):
    """A model's suggestion awaiting a person reads "? label" in the style of
    `segment-table--suggested` (styles/label.tcss)."""

    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES | {"segment-table--suggested"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.labels: list[Label] = []

    def on_mount(self) -> None:
        self.add_column("label", width=11)
        self.add_column("range", width=24)
        self.add_column("origin", width=6)
        self.add_column("taxonomy", width=9)

    def show_labels(self, labels: Sequence[Label], colour_of: Callable[[Label], str],
                    grid: BeatGrid | None = None) -> None:
        """Replace the rows; the cursor stays on the same label when it is still there."""
        kept = self.current.label_id if self.current else None
        self.labels = list(labels)
        self.clear()
        suggested = self.get_component_rich_style("segment-table--suggested", partial=True)
        for label in self.labels:
            if label.origin == Origin.MODEL:
                name = Text("? " + label.label, style=Style.parse(colour_of(label)) + suggested)
            else:
                name = Text("■ " + label.label, style=colour_of(label))
            if label.techniques:
                name.append(" " + ",".join(label.techniques), style="italic")
            self.add_row(name, describe_range(label, grid), str(label.origin), label.taxonomy,
                         key=str(label.label_id))
        index = next((n for n, label in enumerate(self.labels) if label.label_id == kept), 0)
        if self.labels:
            self.move_cursor(row=index)

    @property
    def current(self) -> Label | None:
        if not self.labels or not 0 <= self.cursor_row < len(self.labels):
            return None
        return self.labels[self.cursor_row]
