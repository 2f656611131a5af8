"""The library screen at 100,000 clips: start-up and key-to-paint, against a naive DataTable that
holds every row, run in the same process.

    python bench/bench_tui_library.py            # both
    python bench/bench_tui_library.py startup    # or: keys

startup  a fresh process from launch to the first rows painted on a usable library screen
         (target under 1.5 s), vs the same screen built on Textual's DataTable with all rows added.
keys     key event to changed regions painted, median and 95th percentile over
         cursor moves, page moves, typing in the filter and switching to help and back
         (target under 50 ms), vs cursor moves in the naive DataTable.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.workspace import Workspace  # noqa: E402

CLIPS = 100_000
CLASSES = ("kick", "snare", "hihat_closed", "clap")

STARTUP_OURS = """
import asyncio, sys, time
started = time.perf_counter()
from tui.app import make_app
from tui.widgets.cliptable import ClipTable

async def main():
    app = make_app(sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        while app.screen.query_one(ClipTable).row_count == 0:
            await pilot.pause(0.005)
        app.screen._on_timer_update()  # paint now: the rows are on screen
        print(time.perf_counter() - started)
asyncio.run(main())
"""

STARTUP_NAIVE = """
import asyncio, sys, time
started = time.perf_counter()
from textual.app import App
from textual.widgets import DataTable
from engine.workspace import Workspace

class Naive(App):
    def compose(self):
        yield DataTable()
    def on_mount(self):
        with Workspace.open(sys.argv[1]).db.transaction(read_only=True) as con:
            rows = con.execute("SELECT c.path, c.source, c.duration_s, coalesce(string_agg(l.label, ','), '') "
                               "FROM clips c LEFT JOIN effective_labels l USING (clip_id) "
                               "GROUP BY ALL ORDER BY c.path").fetchall()
        table = self.query_one(DataTable)
        table.add_columns("clip", "source", "sec", "labels")
        table.add_rows(rows)

async def main():
    app = Naive()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        print(time.perf_counter() - started)
asyncio.run(main())
"""


def hundred_thousand_clips(root: Path) -> Workspace:
    """A workspace whose clips table holds 100,000 rows (two thirds labelled); no audio is needed
    to draw the library, so the rows are written directly."""
    workspace = Workspace.open(root)
    classes = ", ".join(f"'{name}'" for name in CLASSES)
    with workspace.db.transaction() as con:
        con.execute(f"""
            INSERT INTO clips (clip_id, path, source, format, duration_s, sample_rate, channels, frames,
                               size_bytes, peak, rms_db, clipped_fraction)
            SELECT sha256(i::VARCHAR), '/library/pack' || (i % 50) || '/' || ([{classes}])[1 + i % 4]
                   || '/hit_' || i || '.wav', 'pack' || (i % 50), 'wav', 0.5 + (i % 100) / 50.0,
                   44100, 1, 22050, 44144, 0.9, -20, 0
            FROM range({CLIPS}) t(i)""")
        con.execute(f"""
            INSERT INTO labels (clip_id, taxonomy, segment_key, label, origin, confidence)
            SELECT clip_id, 'drums', 'whole', ([{classes}])[1 + (hash(path) % 4)::BIGINT], 'import', 1.0
            FROM clips WHERE hash(clip_id) % 3 != 0""")
    return workspace


def _seconds_to_ready(script: str, workspace: Path) -> float:
    launched = time.perf_counter()
    subprocess.run([sys.executable, "-c", script, str(workspace)], check=True, capture_output=True,
                   cwd=Path(__file__).resolve().parents[1])
    return time.perf_counter() - launched


def bench_startup(workspace: Workspace) -> None:
    _seconds_to_ready(STARTUP_OURS, workspace.root)  # warm the OS file cache and bytecode
    ours = statistics.median(_seconds_to_ready(STARTUP_OURS, workspace.root) for _ in range(3))
    naive = statistics.median(_seconds_to_ready(STARTUP_NAIVE, workspace.root) for _ in range(2))
    print(f"start-up to rows on screen, {CLIPS:,} clips   ours {ours:5.2f} s   naive DataTable {naive:5.2f} s   "
          f"ratio {naive / ours:5.1f}x  (target < 1.5 s)")


async def _press_times(app, pilot, keys: list[str]) -> list[float]:
    """Milliseconds from each key event to the changed regions drawn. The pilot's own `press`
    waits for CPU idle in 20 ms sleeps, which would swamp the figure, so this sends the key,
    waits for the screen's queues to drain, then paints what changed."""
    from textual import events
    from textual.keys import _character_to_key

    times = []
    for key in keys:
        event = events.Key(_character_to_key(key) if len(key) == 1 and not key.isalnum() else key,
                           key if len(key) == 1 else None)
        started = time.perf_counter()
        app._driver.send_message(event)
        await pilot._wait_for_screen()
        app.screen._on_timer_update()
        times.append((time.perf_counter() - started) * 1000)
        await pilot.pause()  # let timers and workers the key started run before the next key
    return times


def _summary(times: list[float]) -> str:
    ordered = sorted(times)
    return f"median {statistics.median(ordered):5.1f} ms  p95 {ordered[int(len(ordered) * 0.95) - 1]:5.1f} ms"


async def _ours(workspace: Workspace) -> dict[str, list[float]]:
    from tui.app import make_app
    from tui.widgets.cliptable import ClipTable

    app = make_app(workspace.root)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.screen.query_one(ClipTable).row_count == 0:
            await pilot.pause(0.01)
        results = {"cursor down/up": await _press_times(app, pilot, ["down"] * 60 + ["up"] * 40),
                   "page down/up": await _press_times(app, pilot, ["pagedown"] * 15 + ["pageup"] * 5)}
        await pilot.press("slash")
        results["typing a filter"] = await _press_times(app, pilot, list("hit_123 pack7"))
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        results["help and back"] = await _press_times(app, pilot, ["question_mark", "escape"] * 10)
    return results


async def _naive(workspace: Workspace) -> list[float]:
    from textual.app import App
    from textual.widgets import DataTable

    with workspace.db.transaction(read_only=True) as con:
        rows = con.execute("SELECT path, source, duration_s FROM clips ORDER BY path").fetchall()

    class Naive(App):
        def compose(self):
            yield DataTable()

        def on_mount(self):
            table = self.query_one(DataTable)
            table.add_columns("clip", "source", "sec")
            table.add_rows(rows)
            table.focus()

    app = Naive()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        return await _press_times(app, pilot, ["down"] * 60 + ["up"] * 40)


def bench_keys(workspace: Workspace) -> None:
    import asyncio

    ours = asyncio.run(_ours(workspace))
    naive = asyncio.run(_naive(workspace))
    for name, times in ours.items():
        print(f"key-to-paint {name:<18} ours {_summary(times)}  (target < 50 ms)")
    ratio = statistics.median(naive) / statistics.median(ours["cursor down/up"])
    print(f"key-to-paint cursor, naive DataTable {_summary(naive)}   ratio {ratio:4.1f}x")


def main(chosen: list[str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        workspace = hundred_thousand_clips(Path(scratch) / "ws")
        if not chosen or "startup" in chosen:
            bench_startup(workspace)
        if not chosen or "keys" in chosen:
            bench_keys(workspace)


if __name__ == "__main__":
    main(sys.argv[1:])
