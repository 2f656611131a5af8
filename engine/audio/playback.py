"""Playing a span of a clip through sounddevice, where there is an output device.

sounddevice (and PortAudio under it) is imported only when a player is opened. Over SSH or on a
headless box there is usually no output device: the player then says why in `unavailable` and
every call is a no-op, so the label screen works the same with or without sound.
`WORKBENCH_SOUND=off` turns sound off on purpose (tests set it; so may a user on a shared box).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.settings import env_name, load_settings

SOUND_ENV = env_name("sound")


@dataclass(frozen=True)
class Playing:
    """What is playing: [start_s, end_s) of a clip, looping or not, since `started_at` (monotonic)."""

    start_s: float
    end_s: float
    loop: bool
    started_at: float

    def position(self, now: float) -> float | None:
        """The playhead at `now`, or None once a one-shot play has ended."""
        elapsed = max(0.0, now - self.started_at)
        length = self.end_s - self.start_s
        if self.loop and length > 0:
            return self.start_s + elapsed % length
        return self.start_s + elapsed if elapsed < length else None


class Player:
    """Plays spans of audio files; `unavailable` holds the reason when it cannot."""

    def __init__(self, unavailable: str | None = None, backend=None,
                 clock: Callable[[], float] = time.monotonic, detail: str = "") -> None:
        self.unavailable = unavailable
        self.detail = detail  # the underlying error, for logs and the help of a curious user
        self._backend = backend
        self._clock = clock
        self._playing: Playing | None = None
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.unavailable is None

    @property
    def status(self) -> str:
        return "sound on" if self.available else f"sound unavailable: {self.unavailable}"

    def play(self, path: str | Path, start_s: float, end_s: float, *, loop: bool = False) -> Playing:
        """Start playing [start_s, end_s) of `path` (reads and plays in the caller's thread: call it
        from a worker). The playhead moves in `position()` even where no sound comes out."""
        if self.available:
            from engine.audio.decode import decode

            samples, rate = decode(path, start_s=start_s, end_s=end_s)
            self._backend.play(samples, rate, loop=loop)
        with self._lock:
            self._playing = Playing(start_s, end_s, loop, self._clock())
            return self._playing

    def stop(self) -> None:
        with self._lock:
            self._playing = None
        if self.available:
            self._backend.stop()

    def position(self) -> float | None:
        """Where playback is now, in seconds; None when nothing plays."""
        with self._lock:
            playing = self._playing
        if playing is None:
            return None
        position = playing.position(self._clock())
        if position is None:
            with self._lock:
                if self._playing is playing:
                    self._playing = None
        return position

    @property
    def is_playing(self) -> bool:
        return self.position() is not None


def open_player() -> Player:
    """A player on the default output device, or one that says why there is no sound."""
    if not load_settings().sound:
        return Player(unavailable=f"turned off by {SOUND_ENV}")
    try:
        import sounddevice
    except OSError as error:  # sounddevice raises OSError when the PortAudio library is missing
        return Player(unavailable="PortAudio is not installed (apt-get install libportaudio2)", detail=str(error))
    except ImportError:
        return Player(unavailable="the sounddevice package is not installed")
    try:
        sounddevice.query_devices(kind="output")
    except (sounddevice.PortAudioError, ValueError) as error:  # no default output device
        return Player(unavailable="no output device", detail=str(error))
    return Player(backend=sounddevice)
