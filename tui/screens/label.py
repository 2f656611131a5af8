"""Audition & label: a clip's waveform, spectrogram, beat grid and labelled segments.

One key per class labels the whole clip, or the selection typed into the start/end fields or
nudged with [ ] { }. Every edit is saved at once through the engine and can be undone. The screen
coordinates: the range editor owns the fields, the playback controller plays and keeps the
playhead, the clip loader reads and decodes in exclusive worker groups, and edits are saved in
worker threads; the event loop only draws.

An edit is shown on its own clip: one that finishes after the screen has moved on to another clip
stays where it was saved. Only undo goes back to the clip it changes.

The top line always names the open clip, its place in the list being walked and its grid; without
a sound device a notification says why once and a short badge stays beside the clip line. Each
clip opens whole. Beat positions show as bar.beat (1-based, as DAWs count) beside the 0-based beat
numbers that label files use.
"""

from __future__ import annotations

import zlib

import numpy as np
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label
from textual.worker import Worker, WorkerState

from engine.audio.playback import Player, open_player
from engine.audio.preview import Preview
from engine.concepts import Label as ClipLabel
from engine.concepts import Origin
from engine.errors import InputError
from engine.library.session import Change, ClipState, LabelHistory, Selection, load_clip_state
from engine.library.walk import ClipWalk
from engine.settings import load_settings
from engine.taxonomy import Taxonomy
from engine.store.suggestions import Suggestion
from engine.techniques import parse_techniques_text
from engine.text import printable
from engine.progress import CancelToken
from engine.triage.suggestions import decide, suggest, suggesting_model, undo_decision
from tui.loaders import ClipLoader, Opened
from tui.playback import Playback, clock
from tui.widgets.legend import KeyLegend, assign_keys
from tui.widgets.prompt import PromptDialog
from tui.widgets.range_editor import RangeChanged, RangeEditor, segment_selection
from tui.widgets.segments import SegmentTable
from tui.widgets.spectrogram import Spectrogram
from tui.widgets.waveform import Band, Envelope, Marks, SegmentLane, TimeRuler, Waveform
from tui.workers import StatusReporter, failure_text, in_thread, raise_if_strict

MIN_SPAN_S = 0.05
DECODE_REDRAW_S = 0.1
SUGGESTIONS_ASKED = 20  # what S asks the active model for when none is pending (`suggest`'s default --limit)
PALETTE = ("#ef4444", "#f97316", "#eab308", "#84cc16", "#14b8a6", "#3b82f6", "#6366f1", "#a855f7", "#ec4899")
# Letters the screen's own keys use: never handed out as class keys.
RESERVED_KEYS = set("lunpNgGteqxTSAR")


def stable_colour(name: str) -> str:
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


class LabelScreen(Screen):
    BINDINGS = [
        Binding("space", "play", "Play/stop"),
        Binding("l", "loop", "Loop"),
        Binding("u,ctrl+z", "undo", "Undo", key_display="u"),
        Binding("n", "walk(1)", "Next"),
        Binding("p", "walk(-1)", "Prev"),
        Binding("N", "next_unlabelled", "Unlabelled", key_display="N"),
        Binding("exclamation_mark", "next_suspect", "Next suspect", key_display="!", show=False),
        Binding("S", "next_suggestion", "Next suggestion (most informative first; none left: ask the active model)",
                key_display="S", show=False),
        Binding("A", "decide_suggestion('accepted')", "Accept the suggestion", key_display="A", show=False),
        Binding("R", "decide_suggestion('rejected')", "Reject the suggestion", key_display="R", show=False),
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
        Binding("delete,backspace,x", "delete_segment", "Delete the picked segment", key_display="del/x",
                show=False),
        Binding("t", "next_taxonomy", "Next taxonomy", show=False),
        Binding("T", "tag_techniques", "Techniques of the picked segment", key_display="T", show=False),
        Binding("G", "detect_grid", "Detect beat grid", key_display="G", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.history: LabelHistory | None = None
        self.playback = Playback(self, moved=self.playhead_moved)
        self.loader = ClipLoader(self)
        self.walk = ClipWalk(())
        self.clip_id: str | None = None
        self.walking_suggestions = False  # the open clip was reached by S: deciding it goes on to the next
        self.offering_suggestions = False  # S found none pending: S again asks the active model for more
        self.asking: CancelToken | None = None  # while the active model makes suggestions (escape stops it)
        self.state: ClipState | None = None
        self.taxonomies: dict[str, Taxonomy] = {}
        self.taxonomy_name: str | None = None
        self.keys: dict[str, str] = {}
        self.preview: Preview | None = None
        self.span = (0.0, 1.0)
        self.editing: ClipLabel | None = None
        self._status_message = ""

    # -- layout ------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="label-top"):
            yield Label("no clip open: pick one in the library (1, then enter)", id="label-info", markup=False)
            yield Label("", id="label-sound")
        yield TimeRuler(id="label-ruler")
        yield SegmentLane(id="label-lane")
        yield Waveform(id="label-waveform")
        yield Spectrogram(id="label-spectrogram")
        yield RangeEditor(id="label-range-editor")
        with Horizontal(id="label-bottom"):
            yield SegmentTable(id="label-segments")
            yield KeyLegend(id="label-legend")
        yield Label("", id="label-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.history = LabelHistory(self.app.workspace)
        self._decode_timer = self.set_interval(DECODE_REDRAW_S, self.refresh_view, pause=True)
        self.query_one(Waveform).focus()
        self.playback.open_player(open_player, self.show_sound)
        self.call_after_refresh(self.open_first_clip)

    @property
    def range_editor(self) -> RangeEditor:
        return self.query_one(RangeEditor)

    @property
    def playhead_s(self) -> float:
        return self.playback.playhead_s

    def help_rows(self) -> list[tuple[str, str]]:
        """The class keys of the current taxonomy, for the help screen."""
        return [(key, f"label {name} (the selection, else the whole clip; corrects a suggestion)")
                for key, name in self.keys.items()]

    # -- opening clips -----------------------------------------------------------------------------------
    def open_first_clip(self) -> None:
        if self.clip_id is None:
            self.loader.library(self.first_clip_found)

    def first_clip_found(self, walk: ClipWalk) -> None:
        if self.clip_id is None:  # nobody asked for a clip meanwhile (e.g. Enter in the library)
            self.open_clip(walk.order[0], walk)

    def open_clip(self, clip_id: str, walk: ClipWalk | None = None) -> None:
        """Show `clip_id`; `walk` (e.g. the library's filtered list) is what next/previous follow."""
        if walk is not None:
            self.walk = walk
        self.playback.stop()
        self.clip_id = clip_id
        self.walking_suggestions = self.offering_suggestions = False
        self.history.opened(clip_id)  # each label's lead time counts from here
        self.preview = None
        self.query_one(Waveform).clear()
        self.query_one(Spectrogram).clear()
        self.query_one(SegmentTable).show_labels([], self.colour_of)
        self.editing = None
        self.range_editor.clear()
        self._status_message = "a class key labels the whole clip · / types a range · ? lists every key"
        self.loader.open(clip_id, opened=self.show_opened, preview=self.show_preview)

    def show_opened(self, opened: Opened) -> None:
        """A clip opened: it shows whole (the zoom of the clip before never carries over), from its start."""
        self.taxonomies = opened.taxonomies
        self.set_state(opened.state, rewind=True)
        self.span = (0.0, opened.state.clip.duration_s)
        self.choose_taxonomy(opened)
        self.show_state()

    def set_state(self, state: ClipState, *, rewind: bool = False) -> None:
        """The open clip's state, new or read again, handed to the parts that work on it."""
        self.state = state
        self.playback.show_clip(state, rewind=rewind)
        self.range_editor.show_clip(state)

    def choose_taxonomy(self, opened: Opened) -> None:
        """On a clip the suggestion walk led to, its suggestion's taxonomy (the one to decide in); else
        the taxonomy the clip is labelled in most; else the one used last; else the workspace's default."""
        counts: dict[str, int] = {}
        for label in opened.state.labels:
            counts[label.taxonomy] = counts.get(label.taxonomy, 0) + 1
        used = max(counts, key=counts.get) if counts else None
        walked = opened.state.suggestions[0].taxonomy if self.walking_suggestions and opened.state.suggestions else None
        name = walked or used or self.taxonomy_name or opened.default_taxonomy
        self.set_taxonomy(name if name in self.taxonomies else next(iter(self.taxonomies)))

    def set_taxonomy(self, name: str) -> None:
        self.taxonomy_name = name
        taxonomy = self.taxonomies[name]
        self.keys = assign_keys(taxonomy.names, RESERVED_KEYS)
        self.query_one(KeyLegend).show_keys(name, self.keys, {spec.name: spec.colour for spec in taxonomy.labels})

    def show_preview(self, preview: Preview) -> None:
        """The clip's audio, still decoding (redrawn as it fills) or complete."""
        self.preview = preview
        if preview.complete:
            self._decode_timer.pause()
        else:
            self._decode_timer.resume()
        self.refresh_view()

    def state_reloaded(self, state: ClipState, message: str | None = None) -> None:
        if state.clip.clip_id != self.clip_id:
            return  # another clip was opened meanwhile
        self.set_state(state)
        self.show_state()
        if message:
            self.show_status(message)

    def on_screen_suspend(self) -> None:
        self.playback.stop()

    def on_screen_resume(self) -> None:
        if self.clip_id is not None and self.state is not None:
            self.loader.reload(self.clip_id, self.state_reloaded)  # labels may have changed elsewhere

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
                 self.colour_of(label), label.label, suggested=label.origin == Origin.MODEL)
            for label in state.labels)
        selection = self.range_editor.selection
        selected = selection.seconds(state.grid) if selection else None
        return Marks(self.span[0], self.span[1], state.clip.duration_s, bands, selected, self.playhead_s, state.grid)

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
        grid = (f"{state.grid.bpm:.1f} bpm {state.grid.beats_per_bar}/4, "
                f"{state.grid.describe_range(0, state.last_beat)}" if state.grid else "no grid: G detects one")
        where = ""
        if self.clip_id in self.walk.order:
            where = f" · {list(self.walk.order).index(self.clip_id) + 1}/{len(self.walk.order)}"
            where += f" of '{self.walk.filter}'" if self.walk.filter else ""
        self.query_one("#label-info", Label).update(
            printable(f"{clip.path.rsplit('/', 1)[-1]}{where} · {clock(clip.duration_s)} · {grid}"))
        self.query_one(SegmentTable).show_labels(state.labels, self.colour_of, state.grid)
        self.redraw_marks()

    def show_status(self, message: str | None = None) -> None:
        if message is not None:
            self._status_message = printable(message)  # it may quote a file name or a label
        state = self.state
        if state is None:
            self.query_one("#label-status", Label).update(self._status_message)
            return
        position = f"▼ {clock(self.playhead_s)}"
        if state.grid is not None:
            beat = float(state.grid.beat_at(self.playhead_s))
            position += (f" · {state.grid.position(beat)} (beat {beat:.1f})" if beat >= 0
                         else " · before 1.1 (beat 0)")
        editing = f"editing {printable(self.editing.label)} — a class key replaces it, esc stops · " if self.editing else ""
        suggestion = self.suggestion()
        suggested = (f"suggested ? {printable(suggestion.label)} ({suggestion.confidence:.0%}, "
                     f"{printable(suggestion.model_ref)} #{suggestion.rank}) — A accepts, R rejects, a class key "
                     "corrects · " if suggestion and not self.editing else "")
        self.query_one("#label-status", Label).update(f"{position} · {editing}{suggested}{self._status_message}")

    def refresh_view(self) -> None:
        """Recompute the envelope and spectrogram of the visible span (in a worker)."""
        if self.preview is None or self.state is None:
            return
        waveform, spectro = self.query_one(Waveform), self.query_one(Spectrogram)
        self.loader.view(self.preview, self.span, waveform.size.width, spectro.size.width, spectro.bands,
                         self.show_view)

    def show_view(self, waves: Envelope, image: np.ndarray) -> None:
        if self.state is None:
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

    def show_time(self, seconds: float) -> None:
        """Scroll the view so that it shows `seconds`, when it does not already."""
        width = self.span[1] - self.span[0]
        if not self.span[0] <= seconds < self.span[1]:
            self.set_span(seconds - width / 8, width)

    def action_scroll_view(self, fraction: float) -> None:
        if self.state is not None:
            width = self.span[1] - self.span[0]
            self.set_span(self.span[0] + fraction * width, width)

    def playhead_moved(self, seconds: float) -> None:
        self.show_time(seconds)
        self.redraw_marks()

    def action_step_playhead(self, steps: int, unit: str) -> None:
        self.playback.step(steps, unit)

    def action_playhead_to(self, where: int) -> None:
        self.playback.to_edge(where)

    # -- playback ----------------------------------------------------------------------------------------
    def show_sound(self, player: Player) -> None:
        """A short badge beside the clip line; where sound fails (not turned off on purpose), a
        notification once says why."""
        sound = self.query_one("#label-sound", Label)
        sound.update("♪ sound" if player.available else "♪ silent")
        sound.set_class(not player.available, "unavailable")
        if not player.available and load_settings().sound:
            self.notify(f"{player.status}; the playhead moves all the same", title="sound", severity="warning",
                        timeout=6)

    def action_play(self) -> None:
        self.start_playback(loop=False)

    def action_loop(self) -> None:
        self.start_playback(loop=True)

    def start_playback(self, *, loop: bool) -> None:
        said = self.playback.toggle(self.range_editor.selection, loop=loop)
        if said is not None:
            self.show_status(said)

    # -- the selection -----------------------------------------------------------------------------------
    @on(RangeChanged)
    def range_changed(self, event: RangeChanged) -> None:
        if self.state is None:
            return
        if event.error is not None:
            self.show_status("nothing saved: fix the range (/), or clear it with esc to label the whole clip")
        elif event.selection is not None:
            self.show_time(event.selection.seconds(self.state.grid)[0])
        if event.submitted:  # out of the field, refused or not: a class key never types into it
            self.query_one(Waveform).focus()
        self.redraw_marks()

    def action_focus_range(self) -> None:
        self.range_editor.focus_start()

    def action_escape(self) -> None:
        if self.asking is not None:
            self.asking.cancel()
            self.show_status("stopping: suggestions come from the clips featurised so far…")
            return
        if isinstance(self.focused, Input):
            self.query_one(Waveform).focus()
            return
        self.editing = None
        self.range_editor.select(None)
        self.show_status("selection cleared: class keys label the whole clip")

    def action_toggle_snap(self) -> None:
        self.show_status(f"nudges and typed ranges snap to {self.range_editor.toggle_snap()}s")

    def action_nudge(self, edge: str, steps: int) -> None:
        self.range_editor.nudge(edge, steps, self.playhead_s)

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
            selection = self.range_editor.read()
        except InputError as error:
            self.range_editor.refuse(error)
            return
        self.show_status(f"saving {name}…")
        suggestion = self.suggestion()
        if suggestion is not None and selection is None and self.editing is None:
            self.save_decision(suggestion, "corrected", name)  # on a suggested clip, a class key decides it
            return
        self.save_label(self.state, name, self.taxonomy_name, selection, self.editing)

    @in_thread("label-write")
    def save_label(self, state: ClipState, name: str, taxonomy: str, selection: Selection | None,
                   replacing: ClipLabel | None) -> None:
        change = self.history.label(state, name, taxonomy=taxonomy, selection=selection, replacing=replacing)
        self.app.call_from_thread(self.show_change, change, "saved", self.state_after(change))

    @in_thread("label-write")
    def delete_label(self, label: ClipLabel) -> None:
        change = self.history.delete(label)
        self.app.call_from_thread(self.show_change, change, "deleted", self.state_after(change))

    @in_thread("label-write")
    def undo_change(self) -> None:
        change = self.history.undo()
        self.app.call_from_thread(self.show_undone, change, self.state_after(change))

    # -- suggestions -------------------------------------------------------------------------------------
    def suggestion(self) -> Suggestion | None:
        """The open clip's pending suggestion in the taxonomy the class keys label."""
        return self.state.suggestion_in(self.taxonomy_name) if self.state is not None else None

    def action_decide_suggestion(self, outcome: str) -> None:
        suggestion = self.suggestion()
        if suggestion is None:
            self.show_status("no pending suggestion on this clip (S walks to the next one)")
            return
        self.show_status(f"{outcome[:-2]}ing the suggestion…")
        self.save_decision(suggestion, outcome)

    @in_thread("label-write")
    def save_decision(self, suggestion: Suggestion, outcome: str, label: str | None = None) -> None:
        """Accept, reject or correct (to `label`) a suggestion; `u` undoes it and makes it pending again."""
        workspace = self.app.workspace
        outcomes = []

        def edit():
            decision = decide(workspace, suggestion.suggestion_id, outcome, label)
            outcomes.append(decision.outcome)
            return decision.change, lambda: undo_decision(workspace, decision)

        change, _ = self.history.record(edit)
        self.app.call_from_thread(self.decided, change, outcomes[0], self.state_after(change))

    def decided(self, change: Change, outcome: str, state: ClipState) -> None:
        """A decided suggestion: shown; when S led to it, on to the next pending one (a walk through
        the suggestions takes one key per clip; `u` comes back to undo it)."""
        self.show_change(change, outcome, state)
        if change.clip_id == self.clip_id and self.walking_suggestions:
            self.walk_to_next_suggestion(f"{outcome}: {change.description} (u undoes)")

    def action_next_suggestion(self) -> None:
        if self.asking is not None:
            self.show_status("the model is still making suggestions (escape stops it)")
        elif self.offering_suggestions and self.taxonomy_name is not None:
            self.offering_suggestions = False
            self.asking = CancelToken()
            self.show_status("asking the active model for suggestions… (escape stops it)")
            self.ask_for_suggestions(self.taxonomy_name, self.asking)
        elif self.clip_id is not None:
            self.walk_to_next_suggestion()

    def walk_to_next_suggestion(self, done: str | None = None) -> None:
        """On to the most informative pending suggestion after the open clip; `done` says what led here."""
        self.loader.next_clip("suggestion", self.walk, self.clip_id,
                              lambda kind, current, target: self.walked(kind, current, target, done))

    @in_thread("label-suggest", exclusive=True)
    def ask_for_suggestions(self, taxonomy: str, cancel: CancelToken) -> None:
        """`suggest` with the active model trained on `taxonomy`, then on to the first suggestion."""
        try:
            model = suggesting_model(self.app.workspace, taxonomy)
            if model is None:
                said = (f"no active model is trained on {taxonomy}: train one (3) and activate it (5), "
                        "or `suggest --model REF`")
                self.app.call_from_thread(self.show_status, said)
                return
            reporter = StatusReporter(self.app, lambda text: self.show_status(f"{model}: {text} (escape stops it)"))
            run = suggest(self.app.workspace, model, limit=SUGGESTIONS_ASKED, reporter=reporter, cancel=cancel)
        finally:
            self.app.call_from_thread(setattr, self, "asking", None)
        said = f"{run.model} suggested {len(run.suggestions)} of {run.candidates} unlabelled clips"
        self.app.call_from_thread(self.show_suggestions_made, said)

    def show_suggestions_made(self, said: str) -> None:
        if self.clip_id is None:
            self.show_status(said)
            return
        self.walk_to_next_suggestion(said)

    def state_after(self, change: Change) -> ClipState:
        """(In a worker) the state of the clip `change` was made on, read after it."""
        return load_clip_state(self.app.workspace, change.clip_id)

    def show_change(self, change: Change, verb: str, state: ClipState) -> None:
        """A saved edit, shown on its clip when that clip is open; never a reason to go anywhere."""
        if change.clip_id == self.clip_id:
            self.editing = None
            self.set_state(state)
            self.show_state()
        self.show_status(f"{verb}: {change.description} · u undoes")
        if change.covered and verb == "saved":  # the status line may be too narrow to say it all
            self.notify("\n".join(change.covered), title="the new range replaced what it covers (u undoes)",
                        timeout=8)

    def show_undone(self, change: Change, state: ClipState) -> None:
        """An undone edit: its clip is opened again when the screen has moved on from it."""
        if change.clip_id == self.clip_id:
            self.show_change(change, "undone", state)
            return
        self.open_clip(change.clip_id)
        self.show_status(f"undone: {change.description} · u undoes")

    def action_undo(self) -> None:
        if self.history is None or not self.history.can_undo:
            self.show_status("nothing to undo")
            return
        self.undo_change()

    def selected_segment(self) -> ClipLabel | None:
        return self.query_one(SegmentTable).current

    def picked_segment(self) -> ClipLabel | None:
        """The segment a delete removes: the one picked (enter or e), else the row under the cursor
        while the segment list has focus; else none."""
        table = self.query_one(SegmentTable)
        return self.editing or (table.current if table.has_focus else None)

    def action_delete_segment(self) -> None:
        label = self.picked_segment()
        if label is None:
            self.show_status("nothing deleted: pick a segment first (tab to the list, ↑↓ to it, then x)"
                             if self.query_one(SegmentTable).current else "no segment to delete")
            return
        self.delete_label(label)

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
        self.range_editor.select(segment_selection(label.segment))
        self.query_one(Waveform).focus()
        self.show_status()

    def action_tag_techniques(self) -> None:
        """Ask for the playing techniques of the picked segment (or the one under the list's cursor)."""
        label = self.picked_segment() or self.selected_segment()
        if label is None:
            self.show_status("no segment to tag: label one first")
            return
        catalogue = self.app.workspace.technique_catalogue(label.taxonomy)
        applicable = [t.name for t in catalogue.techniques if not t.labels or label.label in t.labels]
        if not applicable:
            self.show_status(f"no technique applies to {label.label} in the {label.taxonomy} catalogue")
            return

        def chosen(text: str | None) -> None:
            if text is not None:
                names = [] if text.strip().lower() == "none" else parse_techniques_text(text)
                self.tag_label(label, names)

        self.app.push_screen(PromptDialog(f"Techniques of {label.label} ({', '.join(applicable)}; 'none' clears)",
                                          ", ".join(label.techniques), "flam, ghost_note"), chosen)

    @in_thread("label-write")
    def tag_label(self, label: ClipLabel, techniques: list[str]) -> None:
        change = self.history.tag(label, techniques)
        self.app.call_from_thread(self.show_change, change, "tagged", self.state_after(change))

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
            self.loader.next_clip("unlabelled", self.walk, self.clip_id, self.walked)

    def action_next_suspect(self) -> None:
        if self.clip_id is not None:
            self.loader.next_clip("suspect", self.walk, self.clip_id, self.walked)

    def walked(self, kind: str, current: str, target: str | None, done: str | None = None) -> None:
        """On to `target`, the next clip of `kind` after `current`; `done` says what was just done."""
        if current != self.clip_id:
            return  # another clip was opened meanwhile
        before = f"{done} · " if done else ""
        if target is None:
            said = {"suspect": "no suspect clip left (suspects: the `triage suspects` queue, then clips the "
                               "active model doubts)",
                    "suggestion": "no pending suggestion left: S asks the active model for more"}
            self.offering_suggestions = kind == "suggestion"
            self.show_status(before + said.get(kind, f"no {kind} clip left"))
        else:
            self.open_clip(target)
            self.walking_suggestions = kind == "suggestion"
            self.show_status(f"{before}next {kind} clip")

    # -- the beat grid -----------------------------------------------------------------------------------
    def action_detect_grid(self) -> None:
        if self.state is not None:
            self.show_status("detecting the beat grid…")
            self.loader.detect_grid(self.state.clip.clip_id, self.state_reloaded)

    # -- failures ----------------------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        raise_if_strict(event.worker.error)
        text = failure_text(event.worker.error)
        self.show_status(f"✗ {text}")
        self.notify(text, title="label screen", severity="error", timeout=8, markup=False)
