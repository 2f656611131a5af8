"""A labelling session on one clip after another: the clip's state, the selection a label goes
on, and label edits that are saved at once and can be undone.

Every edit goes through the label-edit service (`engine.library.editing`): one short transaction,
committed before the call returns, so a crash or a dropped connection loses nothing. The history of
edits (for undo) lives with the session; undoing an edit restores exactly the labels it removed or
replaced.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.audio.beatgrid import BeatGrid
from engine.concepts import Clip, Label
from engine.errors import InputError, NotFound
from engine.library.editing import Change, put_label, remove_label, tag_label, undo_change
from engine.library.labels import make_segment
from engine.store.clips import get_clip
from engine.store.grids import get_grid
from engine.store.labels import query_labels
from engine.store.suggestions import Suggestion, query_suggestions

SNAPS = ("beat", "bar")


@dataclass(frozen=True)
class ClipState:
    """A clip with its beat grid, its effective labels (every taxonomy) and a model's pending
    suggestions on it."""

    clip: Clip
    grid: BeatGrid | None
    labels: list[Label]
    suggestions: list[Suggestion] = field(default_factory=list)

    def suggestion_in(self, taxonomy: str | None) -> Suggestion | None:
        """The pending suggestion of `taxonomy` on this clip, if any."""
        return next((s for s in self.suggestions if s.taxonomy == taxonomy), None)

    @property
    def last_beat(self) -> int | None:
        """The last whole beat inside the clip, or None without a grid."""
        if self.grid is None:
            return None
        return math.floor(self.grid.beat_at(self.clip.duration_s) + 1e-3)


def load_clip_state(workspace, clip_id: str) -> ClipState:
    with workspace.db.transaction() as con:
        clip = get_clip(con, clip_id)
        if clip is None:
            raise NotFound(f"no clip with id {clip_id}")
        return ClipState(clip, get_grid(con, clip_id), query_labels(con, clip_id=clip_id),
                         query_suggestions(con, clip_id=clip_id))


# -- the selection --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    """The range the next label goes on: beats on the clip's grid, or seconds on a clip without one."""

    start: float
    end: float
    in_beats: bool

    def bounds(self) -> dict[str, float]:
        if self.in_beats:
            return {"start_beat": self.start, "end_beat": self.end}
        return {"start_s": self.start, "end_s": self.end}

    def seconds(self, grid: BeatGrid | None) -> tuple[float, float]:
        if self.in_beats:
            return float(grid.seconds_at(self.start)), float(grid.seconds_at(self.end))
        return self.start, self.end

    def describe(self, grid: BeatGrid | None) -> str:
        return grid.describe_range(self.start, self.end) if self.in_beats else f"{self.start:.2f}–{self.end:.2f} s"


def _number(text: str, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise InputError(f"{what} must be a number, got {text.strip()!r}") from None
    if not math.isfinite(value):
        raise InputError(f"{what} must be a finite number, got {text.strip()!r}")
    return value


def seconds_step(duration_s: float) -> float:
    """How far a nudge moves an edge on a clip without a grid."""
    return 0.01 if duration_s <= 2 else 0.1 if duration_s <= 60 else 1.0


def check_selection(state: ClipState, selection: Selection) -> Selection:
    """The selection itself when it is a valid range on the clip, else InputError saying why."""
    make_segment(state.clip, state.grid, **selection.bounds())
    return selection


def clip_end(state: ClipState) -> float:
    """Where a range that runs to the end of the clip ends: its last beat (fractional) or second."""
    return state.grid.end_beat(state.clip.duration_s) if state.grid else state.clip.duration_s


def snap_size(state: ClipState, snap: str) -> float:
    """The length of one snap step in beats (a beat or a bar)."""
    return 1.0 if snap == "beat" else float(state.grid.beats_per_bar)


def step_beats(beat: float, steps: int, size: float) -> float:
    """`steps` lines of a `size`-beat lattice (beats or bars) from `beat`: the first step goes to the
    next (or previous) line, so from beat 97 a bar back is 96, and from 96 it is 92."""
    whole = math.floor(beat / size + 1e-6) if steps > 0 else math.ceil(beat / size - 1e-6)
    return (whole + steps) * size


def reach_end(state: ClipState, end: float, snap: str = "beat") -> float:
    """`end` (beats), or the clip's end when `end` lies past it by less than one snap step: a range
    may always reach the end of the clip, even when its last beat ends a little early."""
    last = clip_end(state)
    return last if last < end < last + snap_size(state, snap) else end


def parse_selection(state: ClipState, start_text: str, end_text: str, snap: str = "beat") -> Selection | None:
    """The selection typed into the start and end fields: None when both are empty (the whole clip).

    On a clip with a grid the numbers are beats, snapped to the nearest beat or bar start; on a
    clip without one they are seconds. An empty end, or `end`, is the end of the clip, and so is an
    end that snaps past it by less than a snap step. Raises InputError with a message fit to show a
    person."""
    if not start_text.strip() and not end_text.strip():
        return None
    unit = "beat" if state.grid is not None else "second"
    if not start_text.strip():
        raise InputError(f"give a start {unit} (or clear both to label the whole clip)")
    start = _number(start_text, f"start {unit}")
    to_end = end_text.strip().lower() in ("", "end")
    end = clip_end(state) if to_end else _number(end_text, f"end {unit}")
    if state.grid is None:
        return check_selection(state, Selection(start, end, in_beats=False))
    if not to_end:
        check_selection(state, Selection(start, reach_end(state, end, "beat"), in_beats=True))
    snapped_start = state.grid.snap(start, snap)
    snapped = Selection(snapped_start, end if to_end else reach_end(state, state.grid.snap(end, snap), snap),
                        in_beats=True)
    if snapped.start >= snapped.end:
        raise InputError(f"beats {start:g}–{end:g} snap to the same {snap} ({snapped.start:g}); "
                         f"the end must be at least one {snap} after the start")
    return check_selection(state, snapped)


def nudge(state: ClipState, selection: Selection, edge: str, steps: int, snap: str = "beat") -> Selection:
    """The selection with its `edge` ('start' or 'end') moved `steps` beat or bar lines (seconds on a
    clip without a grid), an end reaching for the clip's end stopping there; InputError when that
    leaves the clip or crosses the other edge."""
    if selection.in_beats:
        moved = step_beats(getattr(selection, edge), steps, snap_size(state, snap))
        if edge == "end":
            moved = reach_end(state, moved, snap)
    else:
        moved = round(getattr(selection, edge) + steps * seconds_step(state.clip.duration_s), 3)
    start, end = (moved, selection.end) if edge == "start" else (selection.start, moved)
    return check_selection(state, Selection(start, end, selection.in_beats))


def selection_at(state: ClipState, position_s: float, snap: str = "beat") -> Selection:
    """One beat or bar (or a seconds step) from the playhead: where nudging starts from."""
    if state.grid is None:
        step = seconds_step(state.clip.duration_s)
        start = min(max(0.0, round(position_s, 3)), max(0.0, state.clip.duration_s - step))
        return check_selection(state, Selection(start, round(start + step, 3), in_beats=False))
    size = snap_size(state, snap)
    start = max(0.0, math.floor(state.grid.beat_at(position_s) / size) * size)
    return check_selection(state, Selection(start, reach_end(state, start + size, snap), in_beats=True))


# -- edits with undo --------------------------------------------------------------------------------------
class LabelHistory:
    """Label edits of a session, each saved at once through the label-edit service; `undo` takes
    back the latest one.

    Each label is saved with its lead time (as Label Studio's `lead_time`): the seconds from the
    clip opened (`opened`), or from the previous label saved on it, to this label saved."""

    def __init__(self, workspace, clock: Callable[[], float] = time.monotonic) -> None:
        self.workspace = workspace
        self._done: list[tuple[Change, Callable[[], object]]] = []  # each edit with what undoes it
        self._lock = threading.Lock()  # edits from worker threads go one at a time, in order
        self._clock = clock
        self._since: dict[str, float] = {}  # clip id → when it was opened or last labelled

    def opened(self, clip_id: str) -> None:
        """The person opened `clip_id`: its next label's lead time counts from now."""
        self._since[clip_id] = self._clock()

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    def _record(self, edit: Callable[[], Change]) -> Change:
        def with_undo() -> tuple[Change, Callable[[], object]]:
            change = edit()
            return change, lambda: undo_change(self.workspace, change)

        return self.record(with_undo)[0]

    def record(self, edit: Callable[[], tuple[Change, Callable[[], object]]]) -> tuple[Change, Callable[[], object]]:
        """Make an edit that undoes in its own way (a decision on a suggestion also makes it pending
        again): `edit` saves it and returns its Change and what undoes it."""
        with self._lock:
            done = edit()
            self._done.append(done)
        return done

    def label(self, state: ClipState, label: str, *, taxonomy: str, selection: Selection | None = None,
              replacing: Label | None = None) -> Change:
        """Put `label` on the selection (the whole clip when None), replacing a label if given."""
        bounds = selection.bounds() if selection else {}
        clip_id = state.clip.clip_id

        def save() -> Change:
            now = self._clock()
            since = self._since.get(clip_id)
            change = put_label(self.workspace, clip_id, label, taxonomy=taxonomy, replacing=replacing,
                               lead_time_s=None if since is None else round(now - since, 3), **bounds)
            self._since[clip_id] = now
            return change

        return self._record(save)

    def delete(self, label: Label) -> Change:
        return self._record(lambda: remove_label(self.workspace, label.label_id))

    def tag(self, label: Label, techniques: list[str]) -> Change:
        """Set the techniques of `label` (none clears them)."""
        return self._record(lambda: tag_label(self.workspace, label.label_id, techniques))

    def undo(self) -> Change:
        """Take back the latest edit: its labels go, the ones it removed come back."""
        with self._lock:
            if not self._done:
                raise NotFound("nothing to undo")
            change, undo = self._done[-1]
            undo()
            self._done.pop()
            return change
