"""TUI benchmarks, measured through Textual's pilot, printed as ratios against naive baselines.

    python bench/bench_tui.py            # all
    python bench/bench_tui.py open       # some, by name

open   opening a 10-minute track (44.1 kHz stereo FLAC, beat grid, section labels) in the label
       screen until it is usable: clip info, segments and the whole waveform and spectrogram drawn.
       Naive baseline: librosa.load at the file's rate + a full-resolution STFT + a min/max envelope.

Each benchmark is a function taking a scratch folder, so more (e.g. key-to-paint) can join.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("WORKBENCH_SOUND", "off")  # a benchmark never plays sound

from engine.audio.beatgrid import BeatGrid  # noqa: E402
from engine.library.grids import set_grid  # noqa: E402
from engine.library.importer import import_folder  # noqa: E402
from engine.library.session import LabelHistory, Selection, load_clip_state  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

TRACK_MINUTES = 10
TRACK_RATE = 44100
TRACK_BPM = 124.0
REPEATS = 3


def line(name: str, ours: float, naive: float, target: str) -> None:
    print(f"{name:<34} ours {ours:>6.3f} s  naive {naive:>6.3f} s  {naive / ours:>5.1f}x faster  ({target})")


def write_long_track(folder: Path, minutes: float = TRACK_MINUTES) -> Path:
    """A stereo FLAC of kicks on the beat over a noise bed, `minutes` long."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = int(minutes * 60 * TRACK_RATE)
    rng = np.random.default_rng(0)
    audio = 0.05 * rng.standard_normal(frames).astype(np.float32)
    kick = (np.sin(2 * np.pi * 55 * np.arange(4410) / TRACK_RATE) * np.exp(-np.arange(4410) / 800)).astype(np.float32)
    for start in np.arange(0, frames - len(kick), int(TRACK_RATE * 60 / TRACK_BPM)):
        audio[start:start + len(kick)] += 0.8 * kick
    path = folder / "long_track.flac"
    soundfile.write(path, np.stack([audio, 0.9 * audio], axis=1), TRACK_RATE)
    return path


def naive_open(path: Path) -> float:
    """Seconds for the naive way: decode at full rate, a full STFT, a min/max envelope."""
    import librosa

    started = time.perf_counter()
    samples, _ = librosa.load(path, sr=None, mono=True)
    np.abs(librosa.stft(samples, n_fft=2048))
    usable = len(samples) // 200 * 200
    blocks = samples[:usable].reshape(200, -1)
    blocks.min(axis=1), blocks.max(axis=1)
    return time.perf_counter() - started


async def time_to_usable(workspace_root: Path, clip_id: str, size: tuple[int, int] = (100, 30)) -> tuple[float, float]:
    """Seconds from asking the label screen for a clip until it is usable (clip, grid and segments
    shown, the waveform drawing in) and until the whole waveform and spectrogram are drawn."""
    from tui.app import make_app
    from tui.screens.label import LabelScreen
    from tui.widgets.waveform import Waveform

    app = make_app(workspace_root)
    async with app.run_test(size=size) as pilot:
        await pilot.press("2")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LabelScreen) and screen.clip_id != clip_id
        started = time.perf_counter()
        usable = None
        screen.open_clip(clip_id)
        while True:
            await pilot.pause(0.02)
            highs = screen.query_one(Waveform).envelope.highs
            opened = screen.state is not None and screen.state.clip.clip_id == clip_id
            if usable is None and opened and highs.size and not np.isnan(highs).all():
                usable = time.perf_counter() - started
            if opened and screen.preview is not None and screen.preview.complete and highs.size \
                    and not np.isnan(highs).any():
                return usable, time.perf_counter() - started


def bench_open(scratch: Path) -> None:
    track = write_long_track(scratch / "audio")
    # The label screen opens the library's first clip on its own: make that a short one, not the track.
    soundfile.write(scratch / "audio" / "a_short_hit.wav", np.zeros(4410, dtype=np.float32), TRACK_RATE)
    workspace = Workspace.open(scratch / "ws")
    import_folder(workspace, scratch / "audio", workers=1)
    set_grid(workspace, str(track), BeatGrid.constant(TRACK_BPM))
    with workspace.db.transaction() as con:
        clip_id = con.execute("SELECT clip_id FROM clips WHERE ends_with(path, 'long_track.flac')").fetchone()[0]
    history = LabelHistory(workspace)
    state = load_clip_state(workspace, clip_id)
    for number, label in enumerate(("intro", "build", "drop", "break", "outro")):
        history.label(state, label, taxonomy="sections", selection=Selection(number * 64.0, number * 64.0 + 64, True))
    naive_open(track)  # warm librosa and the page cache before timing
    naive = min(naive_open(track) for _ in range(REPEATS))
    runs = np.array([asyncio.run(time_to_usable(workspace.root, clip_id)) for _ in range(REPEATS)])
    usable, drawn = np.median(runs, axis=0)
    line(f"{TRACK_MINUTES}-min track: usable, drawing", usable, naive, "target < 1 s")
    line(f"{TRACK_MINUTES}-min track: fully drawn", drawn, naive,
         f"slowest of {REPEATS}: {runs[:, 1].max():.3f} s; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")


BENCHES = {"open": bench_open}


def main(names: list[str]) -> None:
    for name in names or list(BENCHES):
        with tempfile.TemporaryDirectory(prefix=f"bench-tui-{name}-") as scratch:
            BENCHES[name](Path(scratch))


if __name__ == "__main__":
    main(sys.argv[1:])
