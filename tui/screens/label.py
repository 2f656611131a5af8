"""Audition & label: a clip's waveform, spectrogram, beat grid and labelled segments.

One key per class labels the whole clip, or the selection typed into the start/end fields or
nudged with [ ] { }. Every edit is saved at once through the engine and can be undone. Decoding,
the envelope and spectrogram of the visible span, database reads and writes, and playback all run
in worker threads; the event loop only draws.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label
from textual.worker import Worker, WorkerState

from engine.audio.playback import Player, open_player
from engine.audio.preview import Preview, decode_preview, envelope, spectrogram
from engine.concepts import Label as ClipLabel
from engine.errors import InputError
from engine.library.grids import detect_grids
from engine.library.session import (SNAPS, Change, ClipState, LabelHistory, Selection, load_clip_state, nudge,
                                    parse_selection, seconds_step, selection_at)
from engine.library.walk import ClipWalk, library_order, next_in_queue, suspect_queue, unlabelled_ids
from engine.taxonomy import Taxonomy
from tui.widgets.legend import KeyLegend, assign_keys
from tui.widgets.segments import SegmentTable
from tui.widgets.spectrogram import Spectrogram
from tui.widgets.waveform import Band, Envelope, Marks, SegmentLane, TimeRuler, Waveform
from tui.workers import failure_text, in_thread, raise_if_strict

PREVIEWS_KEPT = 4
MIN_SPAN_S = 0.05
DECODE_REDRAW_S = 0.1
PLAYHEAD_TICK_S = 0.05
PALETTE = ("#ef4444", "#f97316", "#eab308", "#84cc16", "#14b8a6", "#3b82f6", "#6366f1", "#a855f7", "#ec4899")
# Letters the screen's own keys use: never handed out as class keys.
RESERVED_KEYS = set("lunpNgGteqx")


def stable_colour(name: str) -> str:
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}"


@dataclass(frozen=True)
class Opened:
    """What a clip's worker found: its state and the taxonomies its keys may label with."""

    state: ClipState
    taxonomies: dict[str, Taxonomy]
    default_taxonomy: str


class LabelScreen(Screen):
    BINDINGS = [
        Binding("space", "play", "Play/stop"),
        Binding("l", "loop", "Loop"),
        Binding("u,ctrl+z", "undo", "Undo", key_display="u"),
        Binding("n", "walk(1)", "Next"),
        Binding("p", "walk(-1)", "Prev"),
        Binding("N", "next_unlabelled", "Unlabelled", key_display="N"),
        Binding("exclamation_mark", "next_suspect", "Next suspect", key_display="!", show=False),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in", key_display="+", show=False),
        Binding("minus", "zoom(2)", "Zoom out", key_display="-", show=False),
        Binding("left", "scroll_view(-0.25)", "Scroll left", key_display="←", show=False),
        Binding("right", "scroll_view(0.25)", "Scroll right", key_display="→", show=False),
        Binding("comma", "step_playhead(-1, 'beat')", "Playhead back a beat", key_display=",", show=False),
        Binding("full_stop", "step_playhead(1, 'beat')", "Playhead on a beat", key_display=".", show=False),
        Binding("less_than_sign", "step_playhead(-1, 'bar')", "Playhead back a bar", key_display="<", show=False),
        Binding("greater_than_sign", "step_playhead(1, 'bar')", "Playhead on a bar", key_display=">", show=False),
        Binding("home", "playhead_to(0)", "Playhead to start", show=False),
        Binding("end", "playhead_to(1)", "Playhead to end", show=False),
        Binding("left_square_bracket", "nudge('start', -1)", "Start edge earlier", key_display="[", show=False),
        Binding("right_square_bracket", "nudge('start', 1)", "Start edge later", key_display="]", show=False),
        Binding("left_curly_bracket", "nudge('end', -1)", "End edge earlier", key_display="{", show=False),
        Binding("right_curly_bracket", "nudge('end', 1)", "End edge later", key_display="}", show=False),
        Binding("g", "toggle_snap", "Snap beat/bar (nudge step)", show=False),
        Binding("slash", "focus_range", "Type a range", key_display="/", show=False),
        Binding("escape", "escape", "Leave field / clear selection", show=False),
        Binding("e", "edit_segment", "Edit segment under cursor", show=False),
        Binding("delete,backspace,x", "delete_segment", "Delete segment under cursor", key_display="del/x",
                show=False),
        Binding("t", "next_taxonomy", "Next taxonomy", show=False),
        Binding("G", "detect_grid", "Detect beat grid", key_display="G", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.history: LabelHistory | None = None
        self.player: Player | None = None
        self.walk = ClipWalk(())
        self.clip_id: str | None = None
        self.state: ClipState | None = None
        self.taxonomies: dict[str, Taxonomy] = {}
        self.taxonomy_name: str | None = None
        self.keys: dict[str, str] = {}
        self.preview: Preview | None = None
        self._previews: OrderedDict[str, Preview] = OrderedDict()
        self.span = (0.0, 1.0)
        self.playhead_s = 0.0
        self.snap = SNAPS[0]
        self.selection: Selection | None = None
        self.editing: ClipLabel | None = None
        self._generation = 0
        self._view_generation = 0
        self._status_message = ""
        self._decoding = threading.Event()

    # -- layout ------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="label-top"):
            yield Label("no clip open: pick one in the library (1, then enter)", id="label-info")
            yield Label("sound: checking…", id="label-sound")
        yield TimeRuler(id="label-ruler")
        yield SegmentLane(id="label-lane")
        yield Waveform(id="label-waveform")
        yield Spectrogram(id="label-spectrogram")
        with Horizontal(id="label-range"):
            yield Label("start beat", id="label-start-title")
            yield Input(id="label-start", placeholder="whole")
            yield Label("end beat", id="label-end-title")
            yield Input(id="label-end", placeholder="clip")
            yield Label("", id="label-snap")
        yield Label("", id="label-range-message")
        with Horizontal(id="label-bottom"):
            yield SegmentTable(id="label-segments")
            yield KeyLegend(id="label-legend")
        yield Label("", id="label-status")
        yield Footer()

    def on_mount(self) -> None:
        self.history = LabelHistory(self.app.workspace)
        self._decode_timer = self.set_interval(DECODE_REDRAW_S, self.redraw_while_decoding, pause=True)
        self._playhead_timer = self.set_interval(PLAYHEAD_TICK_S, self.follow_playback, pause=True)
        self.query_one(Waveform).focus()
        self.open_player_in_background()
        self.call_after_refresh(self.open_first_clip)

    def help_rows(self) -> list[tuple[str, str]]:
        """The class keys of the current taxonomy, for the help screen."""
        return [(key, f"label {name} (the selection, else the whole clip)") for key, name in self.keys.items()]

    # -- opening clips -----------------------------------------------------------------------------------
    def open_first_clip(self) -> None:
        if self.clip_id is None:
            self.load_walk_and_first_clip()

    @in_thread("label-walk")
    def load_walk_and_first_clip(self) -> None:
        order = library_order(self.app.workspace)
        if order:
            self.app.call_from_thread(self.first_clip_found, ClipWalk(order))

    def first_clip_found(self, walk: ClipWalk) -> None:
        if self.clip_id is None:  # nobody asked for a clip meanwhile (e.g. Enter in the library)
            self.open_clip(walk.order[0], walk)

    def open_clip(self, clip_id: str, walk: ClipWalk | None = None) -> None:
        """Show `clip_id`; `walk` (e.g. the library's filtered list) is what next/previous follow."""
        if walk is not None:
            self.walk = walk
        self.stop_playback()
        self._decoding.set()  # the previous clip's decode stops; its half preview is not kept
        self._decoding = threading.Event()
        self._generation += 1
        self.clip_id = clip_id
        self.preview = None
        self.query_one(Waveform).clear()
        self.query_one(Spectrogram).clear()
        self.selection = None
        self.editing = None
        self.set_inputs(None)
        self._status_message = "a class key labels the whole clip · / types a range · ? lists every key"
        self.load_clip(clip_id, self._generation, self._decoding)

    @in_thread("label-load")
    def load_clip(self, clip_id: str, generation: int, cancel: threading.Event) -> None:
        workspace = self.app.workspace
        if not self.taxonomies:
            self.taxonomies = {name: workspace.taxonomies.get(name) for name in workspace.taxonomies.names()}
        opened = Opened(load_clip_state(workspace, clip_id), self.taxonomies, workspace.default_taxonomy_name)
        self.app.call_from_thread(self.show_opened, opened, generation)
        cached = self._previews.get(clip_id)
        if cached is not None:
            self.app.call_from_thread(self.preview_started, clip_id, cached, generation)
            return
        preview = decode_preview(opened.state.clip.path, cancel=cancel, on_ready=lambda started: self.app.call_from_thread(
            self.preview_started, clip_id, started, generation))
        self.app.call_from_thread(self.preview_finished, clip_id, preview, generation)

    def show_opened(self, opened: Opened, generation: int) -> None:
        if generation != self._generation:
            return
        first_time = self.state is None or self.state.clip.clip_id != opened.state.clip.clip_id
        self.state = opened.state
        if first_time:
            self.span = (0.0, opened.state.clip.duration_s)
            self.playhead_s = 0.0
            self.choose_taxonomy(opened)
        self.show_state()

    def choose_taxonomy(self, opened: Opened) -> None:
        """The taxonomy the clip is labelled in; else the one used last; else the workspace's default."""
        counts: dict[str, int] = {}
        for label in opened.state.labels:
            counts[label.taxonomy] = counts.get(label.taxonomy, 0) + 1
        used = max(counts, key=counts.get) if counts else None
        name = used or self.taxonomy_name or opened.default_taxonomy
        self.set_taxonomy(name if name in self.taxonomies else next(iter(self.taxonomies)))

    def set_taxonomy(self, name: str) -> None:
        self.taxonomy_name = name
        taxonomy = self.taxonomies[name]
        self.keys = assign_keys(taxonomy.names, RESERVED_KEYS)
        self.query_one(KeyLegend).show_keys(name, self.keys, {spec.name: spec.colour for spec in taxonomy.labels})

    def preview_started(self, clip_id: str, preview: Preview, generation: int) -> None:
        if generation != self._generation:
            return
        self.preview = preview
        if preview.complete:
            self.refresh_view()
        else:
            self._decode_timer.resume()

    def preview_finished(self, clip_id: str, preview: Preview, generation: int) -> None:
        if not preview.complete:
            return  # cancelled: another clip was opened
        self._previews[clip_id] = preview
        while len(self._previews) > PREVIEWS_KEPT:
            self._previews.popitem(last=False)
        if generation == self._generation:
            self._decode_timer.pause()
            self.refresh_view()

    def redraw_while_decoding(self) -> None:
        self.refresh_view()

    # -- drawing -----------------------------------------------------------------------------------------
    def colour_of(self, label: ClipLabel) -> str:
        taxonomy = self.taxonomies.get(label.taxonomy)
        if taxonomy is not None and label.label in taxonomy.names:
            return taxonomy.spec(label.label).colour
        return stable_colour(label.label)

    def marks(self) -> Marks:
        state = self.state
        bands = tuple(
            Band(label.segment.start_s if not label.segment.is_whole else 0.0,
                 label.segment.end_s if not label.segment.is_whole else state.clip.duration_s,
                 self.colour_of(label), label.label)
            for label in state.labels)
        selection = self.selection.seconds(state.grid) if self.selection else None
        return Marks(self.span[0], self.span[1], state.clip.duration_s, bands, selection, self.playhead_s, state.grid)

    def redraw_marks(self) -> None:
        if self.state is None:
            return
        marks = self.marks()
        for view in (self.query_one(TimeRuler), self.query_one(SegmentLane), self.query_one(Waveform),
                     self.query_one(Spectrogram)):
            view.show_marks(marks)
        self.show_status()

    def show_state(self) -> None:
        state = self.state
        clip = state.clip
        grid = (f"{state.grid.bpm:.1f} bpm {state.grid.beats_per_bar}/4, beats 0–{state.last_beat}"
                if state.grid else "no grid: G detects one")
        where = ""
        if self.clip_id in self.walk.order:
            where = f" · {list(self.walk.order).index(self.clip_id) + 1}/{len(self.walk.order)}"
            where += f" of '{self.walk.filter}'" if self.walk.filter else ""
        self.query_one("#label-info", Label).update(
            f"{clip.path.rsplit('/', 1)[-1]} · {clock(clip.duration_s)} · {grid}{where}")
        unit = "beat" if state.grid else "s"
        self.query_one("#label-start-title", Label).update(f"start {unit}")
        self.query_one("#label-end-title", Label).update(f"end {unit}")
        self.query_one(SegmentTable).show_labels(state.labels, self.colour_of)
        self.redraw_marks()

    def show_status(self, message: str | None = None) -> None:
        if message is not None:
            self._status_message = message
        state = self.state
        if state is None:
            self.query_one("#label-status", Label).update(self._status_message)
            return
        position = f"▼ {clock(self.playhead_s)}"
        if state.grid is not None:
            beat = float(state.grid.beat_at(self.playhead_s))
            position += (f" bar {int(beat // state.grid.beats_per_bar) + 1} beat {beat:.1f}" if beat >= 0
                         else " before beat 0")
        snap = f"snap {self.snap} (g)" if state.grid else "in seconds"
        self.query_one("#label-snap", Label).update(f"{snap} · [ ] start · {{ }} end")
        editing = f"editing {self.editing.label} — a class key replaces it, esc stops · " if self.editing else ""
        self.query_one("#label-status", Label).update(f"{position} · {editing}{self._status_message}")

    def refresh_view(self) -> None:
        """Recompute the envelope and spectrogram of the visible span (in a worker)."""
        if self.preview is None or self.state is None:
            return
        waveform, spectro = self.query_one(Waveform), self.query_one(Spectrogram)
        self._view_generation += 1
        self.compute_view(self.preview, self.span, waveform.size.width, spectro.size.width, spectro.bands,
                          self._view_generation)

    @in_thread("label-view")
    def compute_view(self, preview: Preview, span: tuple[float, float], wave_columns: int, spectro_columns: int,
                     bands: int, generation: int) -> None:
        lows, highs = envelope(preview, span[0], span[1], max(2, wave_columns * 2))
        image = spectrogram(preview, span[0], span[1], max(1, spectro_columns), bands)
        self.app.call_from_thread(self.show_view, Envelope(lows, highs), image, generation)

    def show_view(self, waves: Envelope, image: np.ndarray, generation: int) -> None:
        if generation != self._view_generation or self.state is None:
            return
        marks = self.marks()
        self.query_one(Waveform).show_envelope(waves, marks)
        self.query_one(Spectrogram).show_image(image, marks)

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_view)

    # -- the view and the playhead -----------------------------------------------------------------------
    def action_zoom(self, factor: float) -> None:
        if self.state is None:
            return
        duration = self.state.clip.duration_s
        width = min(duration, max(MIN_SPAN_S, (self.span[1] - self.span[0]) * factor))
        self.set_span(self.playhead_s - width / 2, width)

    def set_span(self, start: float, width: float) -> None:
        duration = self.state.clip.duration_s
        start = min(max(0.0, start), max(0.0, duration - width))
        self.span = (start, start + width)
        self.refresh_view()
        self.redraw_marks()

    def action_scroll_view(self, fraction: float) -> None:
        if self.state is not None:
            width = self.span[1] - self.span[0]
            self.set_span(self.span[0] + fraction * width, width)

    def move_playhead(self, seconds: float) -> None:
        self.playhead_s = min(max(0.0, seconds), self.state.clip.duration_s)
        width = self.span[1] - self.span[0]
        if not self.span[0] <= self.playhead_s < self.span[1]:
            self.set_span(self.playhead_s - width / 8, width)
        self.redraw_marks()

    def action_step_playhead(self, steps: int, unit: str) -> None:
        state = self.state
        if state is None:
            return
        if state.grid is None:
            step = seconds_step(state.clip.duration_s) * (10 if unit == "bar" else 1)
            self.move_playhead(self.playhead_s + steps * step)
            return
        size = 1.0 if unit == "beat" else float(state.grid.beats_per_bar)
        beat = float(state.grid.beat_at(self.playhead_s))
        target = (np.floor(beat / size + 1e-6) + steps) * size if steps > 0 else (np.ceil(beat / size - 1e-6) + steps) * size
        self.move_playhead(float(state.grid.seconds_at(max(0.0, target))))

    def action_playhead_to(self, where: int) -> None:
        if self.state is not None:
            self.move_playhead(0.0 if where == 0 else self.state.clip.duration_s)

    # -- playback ----------------------------------------------------------------------------------------
    @in_thread("label-player")
    def open_player_in_background(self) -> None:
        player = open_player()
        self.app.call_from_thread(self.player_ready, player)

    def player_ready(self, player: Player) -> None:
        self.player = player
        sound = self.query_one("#label-sound", Label)
        sound.update(player.status)
        sound.set_class(not player.available, "unavailable")

    def action_play(self) -> None:
        self.start_playback(loop=False)

    def action_loop(self) -> None:
        self.start_playback(loop=True)

    def start_playback(self, *, loop: bool) -> None:
        if self.state is None or self.player is None:
            return
        if self.player.is_playing:
            self.stop_playback()
            self.show_status("stopped")
            return
        if self.selection is not None:
            start, end = self.selection.seconds(self.state.grid)
            start = start if loop or not start < self.playhead_s < end else self.playhead_s
        else:
            start, end = (0.0 if loop else self.playhead_s), self.state.clip.duration_s
        if end - start <= 0.01:
            start = 0.0
        sound = "" if self.player.available else f" (silent: {self.player.unavailable})"
        self.show_status(f"{'looping' if loop else 'playing'} {clock(start)}–{clock(end)}{sound}")
        self.play_span(self.player, self.state.clip.path, start, end, loop)
        self._playhead_timer.resume()

    @in_thread("label-play")
    def play_span(self, player: Player, path: str, start: float, end: float, loop: bool) -> None:
        player.play(path, start, end, loop=loop)

    def follow_playback(self) -> None:
        position = self.player.position() if self.player else None
        if position is None:
            if self.player is not None and not self.player.is_playing:
                self._playhead_timer.pause()
            return
        self.move_playhead(position)

    def stop_playback(self) -> None:
        if self.player is not None and self.player.is_playing:
            self.player.stop()
        if hasattr(self, "_playhead_timer"):
            self._playhead_timer.pause()

    def on_screen_suspend(self) -> None:
        self.stop_playback()

    def on_screen_resume(self) -> None:
        if self.clip_id is not None and self.state is not None:
            self.reload_state(self.clip_id, self._generation)  # labels may have changed elsewhere

    # -- the selection -----------------------------------------------------------------------------------
    def set_inputs(self, selection: Selection | None) -> None:
        start, end = self.query_one("#label-start", Input), self.query_one("#label-end", Input)
        with self.prevent(Input.Changed):
            start.value = "" if selection is None else f"{selection.start:g}"
            end.value = "" if selection is None else f"{selection.end:g}"
        self.query_one("#label-range-message", Label).update("")

    def read_selection(self) -> Selection | None:
        """The selection in the start/end fields (None = the whole clip); InputError when it is bad."""
        start, end = self.query_one("#label-start", Input).value, self.query_one("#label-end", Input).value
        return parse_selection(self.state, start, end, self.snap)

    def show_range_error(self, error: InputError) -> None:
        self.query_one("#label-range-message", Label).update(f"✗ {error}")
        self.query_one("#label-range-message", Label).set_class(True, "error")
        self.show_status("nothing saved: fix the range, or clear it with esc to label the whole clip")

    def take_selection(self, selection: Selection | None, *, rewrite: bool) -> None:
        self.selection = selection
        if rewrite:
            self.set_inputs(selection)
        message = self.query_one("#label-range-message", Label)
        message.set_class(False, "error")
        message.update("" if selection is None else f"selection: {selection.describe()} — a class key labels it")
        if selection is not None:
            start, _ = selection.seconds(self.state.grid)
            if not self.span[0] <= start < self.span[1]:
                self.set_span(start - (self.span[1] - self.span[0]) / 8, self.span[1] - self.span[0])
        self.redraw_marks()

    def half_typed(self) -> Input | None:
        """The empty field when only one of start and end holds something."""
        start, end = self.query_one("#label-start", Input), self.query_one("#label-end", Input)
        if bool(start.value.strip()) == bool(end.value.strip()):
            return None
        return end if start.value.strip() else start

    @on(Input.Changed, "#label-range Input")
    def range_typed(self) -> None:
        if self.state is None:
            return
        missing = self.half_typed()
        if missing is not None:
            self.selection = None
            self.query_one("#label-range-message", Label).set_class(False, "error")
            self.query_one("#label-range-message", Label).update(
                f"now the {'end' if missing.id == 'label-end' else 'start'} (enter moves there)")
            self.redraw_marks()
            return
        try:
            self.take_selection(self.read_selection(), rewrite=False)
        except InputError as error:
            self.selection = None
            self.show_range_error(error)
            self.redraw_marks()

    @on(Input.Submitted, "#label-range Input")
    def range_submitted(self, event: Input.Submitted) -> None:
        if self.state is None:
            return
        missing = self.half_typed()
        if missing is not None:
            missing.focus()
            return
        try:
            selection = self.read_selection()
        except InputError as error:
            self.show_range_error(error)
            return
        self.take_selection(selection, rewrite=True)  # shows the snapped values
        self.query_one(Waveform).focus()

    def action_focus_range(self) -> None:
        self.query_one("#label-start", Input).focus()

    def action_escape(self) -> None:
        if isinstance(self.focused, Input):
            self.query_one(Waveform).focus()
            return
        self.editing = None
        self.take_selection(None, rewrite=True)
        self.show_status("selection cleared: class keys label the whole clip")

    def action_toggle_snap(self) -> None:
        self.snap = SNAPS[(SNAPS.index(self.snap) + 1) % len(SNAPS)]
        self.show_status(f"nudges and typed ranges snap to {self.snap}s")

    def action_nudge(self, edge: str, steps: int) -> None:
        if self.state is None:
            return
        try:
            if self.selection is None:
                selection = selection_at(self.state, self.playhead_s, self.snap)
            else:
                selection = nudge(self.state, self.selection, edge, steps, self.snap)
        except InputError as error:
            self.show_range_error(error)
            return
        self.take_selection(selection, rewrite=True)

    # -- labelling ---------------------------------------------------------------------------------------
    def on_key(self, event) -> None:
        name = self.keys.get(event.character or "")
        if name is None or self.state is None or isinstance(self.focused, Input):
            return
        event.stop()
        event.prevent_default()
        self.label_with(name)

    def label_with(self, name: str) -> None:
        try:
            selection = self.read_selection()
        except InputError as error:
            self.show_range_error(error)
            return
        self.show_status(f"saving {name}…")
        self.save_label(self.state, name, self.taxonomy_name, selection, self.editing, self._generation)

    @in_thread("label-write")
    def save_label(self, state: ClipState, name: str, taxonomy: str, selection: Selection | None,
                   replacing: ClipLabel | None, generation: int) -> None:
        change = self.history.label(state, name, taxonomy=taxonomy, selection=selection, replacing=replacing)
        self.after_change(change, "saved", generation)

    def after_change(self, change: Change, verb: str, generation: int) -> None:
        """(In a worker) reload the clip the change was on and say what happened."""
        state = load_clip_state(self.app.workspace, change.clip_id)
        self.app.call_from_thread(self.show_change, change, verb, state, generation)

    def show_change(self, change: Change, verb: str, state: ClipState, generation: int) -> None:
        self.editing = None
        if state.clip.clip_id != self.clip_id:
            self.open_clip(state.clip.clip_id)
        elif generation == self._generation:
            self.state = state
            self.show_state()
        self.show_status(f"{verb}: {change.description} · u undoes")

    def action_undo(self) -> None:
        if self.history is None or not self.history.can_undo:
            self.show_status("nothing to undo")
            return
        self.undo_change(self._generation)

    @in_thread("label-write")
    def undo_change(self, generation: int) -> None:
        self.after_change(self.history.undo(), "undone", generation)

    def selected_segment(self) -> ClipLabel | None:
        return self.query_one(SegmentTable).current

    def action_delete_segment(self) -> None:
        label = self.selected_segment()
        if label is None:
            self.show_status("no segment to delete")
            return
        self.delete_label(label, self._generation)

    @in_thread("label-write")
    def delete_label(self, label: ClipLabel, generation: int) -> None:
        self.after_change(self.history.delete(label), "deleted", generation)

    @on(DataTable.RowSelected, "#label-segments")
    def segment_chosen(self) -> None:
        self.action_edit_segment()

    def action_edit_segment(self) -> None:
        """Pick the segment under the cursor: its range becomes the selection, and the next class
        key (or range change) replaces it."""
        label = self.selected_segment()
        if label is None or self.state is None:
            return
        self.editing = label
        segment = label.segment
        if segment.is_whole:
            selection = None
        elif segment.is_beat_range:
            selection = Selection(segment.start_beat, segment.end_beat, in_beats=True)
        else:
            selection = Selection(segment.start_s, segment.end_s, in_beats=False)
        self.take_selection(selection, rewrite=True)
        self.query_one(Waveform).focus()
        self.show_status()

    def action_next_taxonomy(self) -> None:
        if self.taxonomies and self.taxonomy_name:
            names = list(self.taxonomies)
            self.set_taxonomy(names[(names.index(self.taxonomy_name) + 1) % len(names)])
            self.show_status(f"class keys now label {self.taxonomy_name}")

    # -- walking -----------------------------------------------------------------------------------------
    def action_walk(self, direction: int) -> None:
        if self.clip_id is None:
            return
        target = self.walk.step(self.clip_id, direction)
        if target is None:
            self.show_status(f"this is the {'last' if direction > 0 else 'first'} clip of the list")
        else:
            self.open_clip(target)

    def action_next_unlabelled(self) -> None:
        if self.clip_id is not None:
            self.walk_to_next("unlabelled", self.clip_id, self._generation)

    def action_next_suspect(self) -> None:
        if self.clip_id is not None:
            self.walk_to_next("suspect", self.clip_id, self._generation)

    @in_thread("label-walk")
    def walk_to_next(self, kind: str, current: str, generation: int) -> None:
        if kind == "unlabelled":
            target = self.walk.next_among(current, unlabelled_ids(self.app.workspace))
        else:
            target = next_in_queue(suspect_queue(self.app.workspace), current)
        self.app.call_from_thread(self.walked, kind, target, generation)

    def walked(self, kind: str, target: str | None, generation: int) -> None:
        if generation != self._generation:
            return  # another clip was opened meanwhile
        if target is None:
            hint = "" if kind == "unlabelled" else (" (suspects: the `triage suspects` queue, then clips the "
                                                    "active model doubts)")
            self.show_status(f"no {kind} clip left{hint}")
        else:
            self.open_clip(target)
            self.show_status(f"next {kind} clip")

    # -- the beat grid -----------------------------------------------------------------------------------
    def action_detect_grid(self) -> None:
        if self.state is not None:
            self.show_status("detecting the beat grid…")
            self.detect_grid(self.state.clip.clip_id, self._generation)

    @in_thread("label-grid")
    def detect_grid(self, clip_id: str, generation: int) -> None:
        report = detect_grids(self.app.workspace, [clip_id], workers=1)
        message = (f"grid detected: {report.detected[0][1].bpm:.1f} bpm" if report.detected
                   else f"no grid: {report.skipped[0].detail}" if report.skipped else "no grid detected")
        state = load_clip_state(self.app.workspace, clip_id)
        self.app.call_from_thread(self.state_reloaded, state, generation, message)

    @in_thread("label-reload")
    def reload_state(self, clip_id: str, generation: int) -> None:
        state = load_clip_state(self.app.workspace, clip_id)
        self.app.call_from_thread(self.state_reloaded, state, generation, None)

    def state_reloaded(self, state: ClipState, generation: int, message: str | None) -> None:
        if generation != self._generation:
            return
        self.state = state
        self.show_state()
        if message:
            self.show_status(message)

    # -- failures ----------------------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        raise_if_strict(event.worker.error)
        text = failure_text(event.worker.error)
        self.show_status(f"✗ {text}")
        self.notify(text, title="label screen", severity="error", timeout=8)
