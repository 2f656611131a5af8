"""The start/end fields of the label screen: the range the next label goes on.

The screen hands the editor the open clip and calls it to nudge, select or clear; the editor keeps
its fields, the snap and what they select, says what is wrong next to the fields, and posts
`RangeChanged` whenever the selection changes or a range is refused. It never looks at the rest of
the screen. An empty end field (or `end`) runs the range to the end of the clip; a field that loses
focus shows what it selects (snapped).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label

from engine.concepts import Segment
from engine.errors import InputError
from engine.library.session import SNAPS, ClipState, Selection, clip_end, nudge, parse_selection, selection_at


class RangeChanged(Message):
    """The selection in the fields changed (None: the whole clip, or a range half typed), or a range
    was refused (`error` says why); `submitted` when enter finished (or tried to finish) a typed range."""

    def __init__(self, selection: Selection | None, *, error: InputError | None = None,
                 submitted: bool = False) -> None:
        super().__init__()
        self.selection = selection
        self.error = error
        self.submitted = submitted


def segment_selection(segment: Segment) -> Selection | None:
    """The selection that covers `segment` (None for the whole clip)."""
    if segment.is_whole:
        return None
    if segment.is_beat_range:
        return Selection(segment.start_beat, segment.end_beat, in_beats=True)
    return Selection(segment.start_s, segment.end_s, in_beats=False)


class RangeEditor(Vertical):
    DEFAULT_CSS = "RangeEditor { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state: ClipState | None = None
        self.snap = SNAPS[0]
        self.selection: Selection | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="label-range"):
            yield Label("start beat", id="label-start-title")
            yield Input(id="label-start", placeholder="whole")
            yield Label("end beat", id="label-end-title")
            yield Input(id="label-end", placeholder="clip end")
            yield Label("", id="label-snap")
        yield Label("", id="label-range-message")

    # -- called by the screen ----------------------------------------------------------------------------
    def show_clip(self, state: ClipState) -> None:
        """The clip the fields select on (its grid decides beats or seconds); what is typed stays."""
        self.state = state
        unit = "beat" if state.grid else "s"
        self.query_one("#label-start-title", Label).update(f"start {unit}")
        self.query_one("#label-end-title", Label).update(f"end {unit}")
        self.show_snap()

    def clear(self) -> None:
        """Empty fields and no selection, without a message (a new clip is opening)."""
        self.selection = None
        self.write_fields(None)

    def select(self, selection: Selection | None) -> None:
        """Make `selection` the selection and write it into the fields."""
        self.take(selection, rewrite=True)

    def read(self) -> Selection | None:
        """The selection in the fields (None: the whole clip); InputError when they hold a bad range."""
        start, end = self.query_one("#label-start", Input).value, self.query_one("#label-end", Input).value
        return parse_selection(self.state, start, end, self.snap)

    def refuse(self, error: InputError, *, submitted: bool = False, typing: bool = False) -> None:
        """Say next to the fields why their range is refused (and, unless still `typing`, what to do)."""
        message = self.query_one("#label-range-message", Label)
        message.update(f"✗ {error}" + ("" if typing else " — / edits the range, esc clears it"))
        message.set_class(True, "error")
        self.post_message(RangeChanged(self.selection, error=error, submitted=submitted))

    def nudge(self, edge: str, steps: int, playhead_s: float) -> None:
        """Move the selection's `edge` ('start' or 'end') by `steps` snaps; without a selection, select
        the snap at the playhead."""
        if self.state is None:
            return
        try:
            if self.selection is None:
                selection = selection_at(self.state, playhead_s, self.snap)
            else:
                selection = nudge(self.state, self.selection, edge, steps, self.snap)
        except InputError as error:
            self.refuse(error)
            return
        self.select(selection)

    def toggle_snap(self) -> str:
        """Snap to the next of beat and bar; returns the snap now in use."""
        self.snap = SNAPS[(SNAPS.index(self.snap) + 1) % len(SNAPS)]
        self.show_snap()
        return self.snap

    def focus_start(self) -> None:
        self.query_one("#label-start", Input).focus()

    # -- the fields --------------------------------------------------------------------------------------
    def show_snap(self) -> None:
        if self.state is not None:
            snap = f"snap {self.snap} (g)" if self.state.grid else "in seconds"
            self.query_one("#label-snap", Label).update(f"{snap} · [ ] start · {{ }} end")

    def write_fields(self, selection: Selection | None, *, only: Input | None = None) -> None:
        """The selection's edges into the fields (or into the field `only`)."""
        start, end = self.query_one("#label-start", Input), self.query_one("#label-end", Input)
        with self.prevent(Input.Changed):
            for field, value in ((start, selection and selection.start), (end, selection and selection.end)):
                if only in (None, field):
                    field.value = "" if selection is None else f"{value:g}"
        if only is None:
            self.query_one("#label-range-message", Label).update("")

    def take(self, selection: Selection | None, *, rewrite: bool, submitted: bool = False) -> None:
        self.selection = selection
        if rewrite:
            self.write_fields(selection)
        message = self.query_one("#label-range-message", Label)
        message.set_class(False, "error")
        if selection is not None:
            to_end = ", to the clip's end" if selection.end == clip_end(self.state) else ""
            message.update(f"selection: {selection.describe(self.state.grid)}{to_end} — a class key labels it")
        else:
            message.update("")
        self.post_message(RangeChanged(selection, submitted=submitted))

    def start_missing(self) -> bool:
        """Only the end field holds something."""
        start, end = self.query_one("#label-start", Input), self.query_one("#label-end", Input)
        return not start.value.strip() and bool(end.value.strip())

    @on(Input.Changed)
    def typed(self) -> None:
        if self.state is None:
            return
        if self.start_missing():
            self.selection = None
            message = self.query_one("#label-range-message", Label)
            message.set_class(False, "error")
            message.update("now the start (shift+tab moves there)")
            self.post_message(RangeChanged(None))
            return
        try:
            self.take(self.read(), rewrite=False)
        except InputError as error:
            self.selection = None
            self.refuse(error, typing=True)

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        if self.state is None:
            return
        if self.start_missing():
            self.query_one("#label-start", Input).focus()
            return
        if event.input.id == "label-start":
            self.query_one("#label-end", Input).focus()  # the end next (left empty: to the clip's end)
            return
        try:
            selection = self.read()
        except InputError as error:
            self.refuse(error, submitted=True)
            return
        self.take(selection, rewrite=True, submitted=True)  # shows the snapped values

    @on(Input.Blurred)
    def left_field(self, event: Input.Blurred) -> None:
        """A field left with something typed in it shows what it selects, snapped."""
        if self.selection is not None and event.input.value.strip():
            self.write_fields(self.selection, only=event.input)
