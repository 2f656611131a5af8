"""Playing the open clip on the label screen, and its playhead.

The player opens in a worker (finding a sound device can take a moment); without a device it
plays silently and says why, and the playhead moves all the same. Playing reads the audio in a
worker; while something plays, a timer on the host follows the player's position. Every move of
the playhead (followed, stepped by beats and bars, or sent to either end) goes to `moved`, for the
screen to draw.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.dom import DOMNode
from textual.timer import Timer

from engine.audio.playback import Player
from engine.library.session import ClipState, Selection, seconds_step, snap_size, step_beats

PLAYHEAD_TICK_S = 0.05


def clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}"


class Playback:
    def __init__(self, host: DOMNode, *, moved: Callable[[float], None]) -> None:
        self.host = host
        self.moved = moved
        self.player: Player | None = None
        self.state: ClipState | None = None
        self.playhead_s = 0.0
        self._follower: Timer | None = None

    def open_player(self, opener: Callable[[], Player], ready: Callable[[Player], None]) -> None:
        """Open the player with `opener` in a worker, then hand it to `ready` (to show the sound status)."""
        def work() -> None:
            player = opener()
            self.host.app.call_from_thread(self.player_opened, player, ready)

        self.host.run_worker(work, name="open player", group="label-player", thread=True, exit_on_error=False)

    def player_opened(self, player: Player, ready: Callable[[Player], None]) -> None:
        self.player = player
        ready(player)

    def show_clip(self, state: ClipState, *, rewind: bool) -> None:
        """The clip to play: a newly opened one (`rewind`: the playhead back to its start) or the same
        clip reloaded."""
        self.state = state
        if rewind:
            self.playhead_s = 0.0

    # -- playing -----------------------------------------------------------------------------------------
    def toggle(self, selection: Selection | None, *, loop: bool) -> str | None:
        """Stop what plays; else play the selection (from the playhead when it lies inside, unless
        looping), or without one from the playhead (the start, looping) to the end of the clip.
        Returns what to tell the person; None before a clip and the player are ready."""
        state, player = self.state, self.player
        if state is None or player is None:
            return None
        if player.is_playing:
            self.stop()
            return "stopped"
        if selection is not None:
            start, end = selection.seconds(state.grid)
            start = start if loop or not start < self.playhead_s < end else self.playhead_s
        else:
            start, end = (0.0 if loop else self.playhead_s), state.clip.duration_s
        if end - start <= 0.01:
            start = 0.0
        self.host.run_worker(partial(player.play, state.clip.path, start, end, loop=loop), name="play",
                             group="label-play", thread=True, exit_on_error=False)
        self.follow()
        sound = "" if player.available else f" (silent: {player.unavailable})"
        return f"{'looping' if loop else 'playing'} {clock(start)}–{clock(end)}{sound}"

    def stop(self) -> None:
        if self.player is not None and self.player.is_playing:
            self.player.stop()
        if self._follower is not None:
            self._follower.pause()

    def follow(self) -> None:
        if self._follower is None:
            self._follower = self.host.set_interval(PLAYHEAD_TICK_S, self.follow_player)
        else:
            self._follower.resume()

    def follow_player(self) -> None:
        position = self.player.position() if self.player else None
        if position is None:
            if self.player is not None and not self.player.is_playing:
                self._follower.pause()
            return
        self.move_to(position)

    # -- the playhead ------------------------------------------------------------------------------------
    def move_to(self, seconds: float) -> None:
        if self.state is None:
            return
        self.playhead_s = min(max(0.0, seconds), self.state.clip.duration_s)
        self.moved(self.playhead_s)

    def step(self, steps: int, unit: str) -> None:
        """Move the playhead `steps` beats or bars ('beat' or 'bar'; on a clip without a grid, steps of
        seconds and ten of them)."""
        state = self.state
        if state is None:
            return
        if state.grid is None:
            step = seconds_step(state.clip.duration_s) * (10 if unit == "bar" else 1)
            self.move_to(self.playhead_s + steps * step)
            return
        target = step_beats(float(state.grid.beat_at(self.playhead_s)), steps, snap_size(state, unit))
        self.move_to(float(state.grid.seconds_at(max(0.0, target))))

    def to_edge(self, edge: int) -> None:
        """The playhead to the clip's start (0) or end (1)."""
        if self.state is not None:
            self.move_to(0.0 if edge == 0 else self.state.clip.duration_s)
