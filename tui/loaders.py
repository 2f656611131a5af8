"""What the label screen shows, loaded in worker threads: a clip's state, its audio preview (decoded
once, the last few kept), a detected beat grid, the clip to walk to next, and the envelope and
spectrogram of the visible span.

Opening a clip, detecting a grid, reading a state again and finding the next clip each run in an
exclusive worker group on the host screen, so a newer load of a kind cancels the older one (an
opened clip's decode stops where it is). A cancelled load's thread may still finish: what it found
is dropped on the event loop, never shown. Views of the span are asked for often (while a preview
fills, on every scroll) and are quick, so they are not cancelled (a cancelled worker also fails
whoever awaits `app.workers.wait_for_complete()`, as tests do): each one finishes and only the
newest is drawn. Which clip a result belongs to is the screen's to check.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from textual.dom import DOMNode
from textual.worker import get_current_worker

from engine.audio.preview import Preview, decode_preview, envelope, spectrogram
from engine.library.grids import detect_grids
from engine.library.session import ClipState, load_clip_state
from engine.library.walk import (ClipWalk, library_order, next_in_queue, next_suggestion, suspect_queue,
                                 unlabelled_ids)
from engine.taxonomy import Taxonomy
from tui.widgets.waveform import Envelope

PREVIEWS_KEPT = 4
OPEN, VIEW, GRID, RELOAD, WALK = "label-load", "label-view", "label-grid", "label-reload", "label-walk"


@dataclass(frozen=True)
class Opened:
    """What opening a clip found: its state and the taxonomies its keys may label with."""

    state: ClipState
    taxonomies: dict[str, Taxonomy]
    default_taxonomy: str


class ClipLoader:
    def __init__(self, host: DOMNode) -> None:
        self.host = host
        self._taxonomies: dict[str, Taxonomy] = {}
        self._previews: OrderedDict[str, Preview] = OrderedDict()
        self._previews_lock = threading.Lock()
        self._views = 0

    @property
    def workspace(self):
        return self.host.app.workspace

    def start(self, group: str, work: Callable[[], None]) -> None:
        self.host.run_worker(work, name=group, group=group, thread=True, exclusive=True, exit_on_error=False)

    def deliver(self, show: Callable[..., None], *found, wanted: Callable[[], bool] | None = None) -> None:
        """(In a worker) hand what it found to `show` on the event loop, if it is still `wanted` there:
        by default, unless a newer load has cancelled this one meanwhile."""
        worker = get_current_worker()
        wanted = wanted or (lambda: not worker.is_cancelled)
        self.host.app.call_from_thread(lambda: show(*found) if wanted() else None)

    # -- a clip ------------------------------------------------------------------------------------------
    def open(self, clip_id: str, *, opened: Callable[[Opened], None], preview: Callable[[Preview], None]) -> None:
        """Load the clip's state for `opened`, then its preview for `preview`: once when it starts to
        fill (a long clip decodes while it is drawn) and again when it is complete."""
        def work() -> None:
            workspace = self.workspace
            if not self._taxonomies:
                self._taxonomies = {name: workspace.taxonomies.get(name) for name in workspace.taxonomies.names()}
            state = load_clip_state(workspace, clip_id)
            self.deliver(opened, Opened(state, self._taxonomies, workspace.default_taxonomy_name))
            with self._previews_lock:
                cached = self._previews.get(clip_id)
            if cached is not None:
                self.deliver(preview, cached)
                return
            decoded = decode_preview(state.clip.path, cancel=get_current_worker().cancelled_event,
                                     on_ready=lambda started: self.deliver(preview, started))
            if decoded.complete:  # else cancelled: another clip was opened
                self.keep(clip_id, decoded)
                self.deliver(preview, decoded)

        self.start(OPEN, work)

    def keep(self, clip_id: str, preview: Preview) -> None:
        with self._previews_lock:
            self._previews[clip_id] = preview
            while len(self._previews) > PREVIEWS_KEPT:
                self._previews.popitem(last=False)

    def reload(self, clip_id: str, show: Callable[[ClipState], None]) -> None:
        """Read the clip's state again (labels may have changed elsewhere)."""
        self.start(RELOAD, lambda: self.deliver(show, load_clip_state(self.workspace, clip_id)))

    def detect_grid(self, clip_id: str, show: Callable[[ClipState, str], None]) -> None:
        """Detect the clip's beat grid and store it; `show` gets the clip's new state and what was found."""
        def work() -> None:
            report = detect_grids(self.workspace, [clip_id], workers=1)
            message = (f"grid detected: {report.detected[0][1].bpm:.1f} bpm" if report.detected
                       else f"no grid: {report.skipped[0].detail}" if report.skipped else "no grid detected")
            self.deliver(show, load_clip_state(self.workspace, clip_id), message)

        self.start(GRID, work)

    def view(self, preview: Preview, span: tuple[float, float], wave_columns: int, spectro_columns: int, bands: int,
             show: Callable[[Envelope, np.ndarray], None]) -> None:
        """The envelope and spectrogram of `span` at the widgets' resolution."""
        def work() -> None:
            lows, highs = envelope(preview, span[0], span[1], max(2, wave_columns * 2))
            image = spectrogram(preview, span[0], span[1], max(1, spectro_columns), bands)
            self.deliver(show, Envelope(lows, highs), image, wanted=lambda: view == self._views)

        self._views += 1
        view = self._views
        self.host.run_worker(work, name=VIEW, group=VIEW, thread=True, exit_on_error=False)

    # -- walking -----------------------------------------------------------------------------------------
    def library(self, show: Callable[[ClipWalk], None]) -> None:
        """The library's clips in order (nothing when it is empty)."""
        def work() -> None:
            order = library_order(self.workspace)
            if order:
                self.deliver(show, ClipWalk(order))

        self.start(WALK, work)

    def next_clip(self, kind: str, walk: ClipWalk, current: str,
                  show: Callable[[str, str, str | None], None]) -> None:
        """The next 'unlabelled' clip of `walk` after `current`, or the next 'suspect' or 'suggestion'
        one in its queue (None when none is left); `show` gets the kind, `current` and the clip found."""
        def work() -> None:
            if kind == "unlabelled":
                target = walk.next_among(current, unlabelled_ids(self.workspace))
            elif kind == "suggestion":
                target = next_suggestion(self.workspace, current)
            else:
                target = next_in_queue(suspect_queue(self.workspace), current)
            self.deliver(show, kind, current, target)

        self.start(WALK, work)
