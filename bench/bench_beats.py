"""Beat grids: accuracy against known beats, and the cost of a fresh process.

    python bench/bench_beats.py            # accuracy tables (ours vs librosa's tracker) + timing
    python bench/bench_beats.py accuracy   # only the tables
    python bench/bench_beats.py timing     # only the fresh-process timing

Accuracy, with mir_eval on the same inputs for both trackers:
  (a) synthetic material with known beats: DJ section tracks at 70–180 bpm (ten of 24–62 s, three
      whole tracks of 4–7 minutes) and drum loops (four on the floor, eighth hats, breakbeat, hip
      hop; straight and swung) at 70–180 bpm, some starting after a silence;
  (b) real loops from Debian's sonic-pi-samples (`apt-get install sonic-pi-samples`), repeated to
      12 s, beat 0 at the loop's start: a loop holds a power-of-two number of beats, so its tempo
      follows from its length as the count that puts it in 70–180 bpm (a loop named *_97 is 97
      bpm). Where two counts do (a loop of 6.86 s is 8 beats at 70 or 16 at 140), the length alone
      cannot tell, and either reading counts as right: such loops are marked `?` and scored against
      the reading nearer the tracker's tempo.
Figures: F-measure at 70 ms, tempo right within 4%, octave errors (×2 or ×½), and the first beat's
error (ms; the true first beat is the first beat of the material).

Timing: `workbench --headless beats detect` of a 5-minute stereo 44.1 kHz FLAC in a fresh process,
against the same command's start-up (`--help`), wall-clock and CPU time (on a shared machine the
CPU time is the steadier); the target is at most 3×. `beats show` of the same clip is shown for
what any command costs beyond --help (typer's option coercion, opening the workspace).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.audio.beatgrid import BeatGrid, detect_beat_grid  # noqa: E402
from engine.audio.synth import DRUM_PATTERNS, synthesize_drum_loop, synthesize_section_track  # noqa: E402
from engine.errors import InputError  # noqa: E402

SONIC_PI_LOOPS = Path("/usr/share/sonic-pi/samples")
RATE = 22050
TEMPI = (70, 84, 97, 110, 124, 128, 140, 160, 174, 180)


@dataclass
class Case:
    name: str
    audio: np.ndarray
    sample_rate: int
    beats: np.ndarray  # true beat times; NaN-free
    bpm: float
    other_bpm: float | None = None  # a loop whose length fits two tempi in range: the other one

    def truth_near(self, bpm: float) -> tuple[float, np.ndarray]:
        """The true tempo and beats; for an ambiguous loop, the reading nearer `bpm`."""
        if self.other_bpm is None or abs(np.log(bpm / self.bpm)) <= abs(np.log(bpm / self.other_bpm)):
            return self.bpm, self.beats
        return self.other_bpm, np.arange(0.0, len(self.audio) / self.sample_rate - 1e-6, 60.0 / self.other_bpm)


def synthetic_cases() -> list[Case]:
    cases = []
    sections = [("intro", 4), ("build", 2), ("drop", 4), ("break", 2), ("verse", 2), ("chorus", 2), ("outro", 2)]
    for index, bpm in enumerate(TEMPI):
        offset = (0.0, 0.37, 1.1)[index % 3]
        audio, layout = synthesize_section_track(sections, bpm=bpm, sample_rate=RATE, offset_s=offset, seed=bpm)
        beats = offset + np.arange(layout[-1]["end_beat"]) * 60.0 / bpm
        cases.append(Case(f"sections {bpm}", audio, RATE, beats, bpm))
    for bpm in (97, 128, 174):  # whole tracks of 4–7 minutes: a grid a hair off drifts over them
        sections = [("intro", 8), ("drop", 32), ("break", 16), ("drop", 16), ("outro", 8)] * 2
        audio, layout = synthesize_section_track(sections, bpm=bpm, sample_rate=RATE, seed=bpm)
        cases.append(Case(f"long track {bpm}", audio, RATE, np.arange(layout[-1]["end_beat"]) * 60.0 / bpm, bpm))
    for p, pattern in enumerate(DRUM_PATTERNS):
        for index, bpm in enumerate(TEMPI):
            for swing in (0.5, 0.62):
                offset = (0.0, 0.25, 0.8)[(index + p) % 3]
                bars = max(4, round(20 / (4 * 60 / bpm)))
                audio, beats = synthesize_drum_loop(pattern, bpm, bars, swing=swing, offset_s=offset,
                                                    sample_rate=RATE, seed=index)
                cases.append(Case(f"{pattern} {bpm} swing {swing:g}", audio, RATE, beats, bpm))
    return cases


def loop_tempi(name: str, seconds: float) -> list[float]:
    """The tempi a loop of this length can have: 60 × 2^k beats / seconds within 70–180 bpm
    (one, or two where the range holds both a tempo and its double), or the one in its name."""
    if name.rsplit("_", 1)[-1].isdigit():
        return [float(name.rsplit("_", 1)[-1])]
    return [60.0 * 2**k / seconds for k in range(8) if 70.0 <= 60.0 * 2**k / seconds <= 180.0]


def real_loop_cases() -> list[Case]:
    import soundfile as sf

    cases = []
    for path in sorted(SONIC_PI_LOOPS.glob("loop_*.flac")):
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        seconds = len(audio) / rate
        tempi = loop_tempi(path.stem, seconds)
        repeats = int(np.ceil(12.0 / seconds))
        tiled = np.tile(audio, repeats)
        beats = np.arange(0.0, len(tiled) / rate - 1e-6, 60.0 / tempi[0])
        name = path.stem + (" ?" if len(tempi) > 1 else "")
        cases.append(Case(name, tiled, rate, beats, tempi[0], tempi[1] if len(tempi) > 1 else None))
    return cases


def librosa_grid(audio: np.ndarray, rate: int) -> BeatGrid:
    import librosa

    envelope = librosa.onset.onset_strength(y=audio, sr=rate, hop_length=128)
    _, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=rate, hop_length=128, units="time")
    if len(beats) < 2:
        raise InputError("no beats")
    return BeatGrid.from_beat_times(beats)


def score(case: Case, grid: BeatGrid | None) -> dict:
    import mir_eval

    if grid is None:
        return {"f": 0.0, "tempo": False, "octave": False, "first_ms": float("nan"), "true_bpm": case.bpm}
    duration = len(case.audio) / case.sample_rate
    estimated = grid.beat_times_within(duration)
    bpm, beats = case.truth_near(grid.bpm)
    f = mir_eval.beat.f_measure(beats, estimated)
    ratio = grid.bpm / bpm
    return {
        "f": f,
        "tempo": abs(ratio - 1) <= 0.04,
        "octave": any(abs(ratio - r) <= 0.04 * r for r in (0.5, 2.0)),
        "first_ms": 1000 * (estimated[0] - beats[0]) if len(estimated) else float("nan"),
        "true_bpm": bpm,
    }


def evaluate(cases: list[Case], tracker) -> list[dict]:
    results = []
    for case in cases:
        try:
            grid = tracker(case.audio, case.sample_rate)
        except InputError:
            grid = None
        results.append(score(case, grid) | {"name": case.name, "bpm_found": grid.bpm if grid else float("nan")})
    return results


def summary(results: list[dict]) -> str:
    f = np.array([r["f"] for r in results])
    tempo = np.mean([r["tempo"] for r in results])
    octave = np.mean([r["octave"] for r in results])
    first = np.array([abs(r["first_ms"]) for r in results if r["tempo"]])
    first_text = f"{np.median(first):6.1f} ms" if len(first) else "     –"
    return (f"F {f.mean():.3f} (min {f.min():.2f})  tempo right {tempo:6.1%}  octave errors {octave:6.1%}  "
            f"|first beat error| median {first_text}")


def accuracy() -> None:
    sets = [("synthetic", synthetic_cases())]
    if SONIC_PI_LOOPS.is_dir():
        sets.append(("sonic-pi loops", real_loop_cases()))
    else:
        print("(sonic-pi-samples not installed: apt-get install sonic-pi-samples for the real loops)")
    for title, cases in sets:
        ours = evaluate(cases, detect_beat_grid)
        theirs = evaluate(cases, librosa_grid)
        print(f"\n== {title}: {len(cases)} cases ==")
        print(f"  workbench  {summary(ours)}")
        print(f"  librosa    {summary(theirs)}")
        # Every loop; of the synthetic cases, those either tracker gets wrong.
        shown = [(o, t) for o, t in zip(ours, theirs)
                 if title != "synthetic" or not (o["tempo"] and t["tempo"] and min(o["f"], t["f"]) >= 0.95)]
        for o, t in shown:
            print(f"    {o['name']:32} true {o['true_bpm']:6.1f} ours {o['bpm_found']:6.1f} F {o['f']:.2f}   "
                  f"librosa true {t['true_bpm']:6.1f} found {t['bpm_found']:6.1f} F {t['f']:.2f}")


def timing(repeats: int = 5) -> None:
    from engine.audio.synth import synthesize_section_track as track

    with tempfile.TemporaryDirectory() as folder:
        import soundfile as sf

        workspace = Path(folder) / "ws"
        audio, _ = track([("intro", 8), ("drop", 32), ("break", 16), ("drop", 16), ("outro", 8)] * 2,
                         bpm=128, sample_rate=44100)
        path = Path(folder) / "set.flac"
        sf.write(path, np.stack([audio, 0.9 * audio], axis=1), 44100)  # stereo, as tracks are
        command = [sys.executable, "-m", "cli.main", "--headless", "--workspace", str(workspace)]
        environment = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        subprocess.run(command + ["import", str(path)], check=True, capture_output=True, env=environment)

        def seconds(arguments: list[str]) -> tuple[float, float]:
            """The best wall-clock time and the best CPU time (user + system) of the command."""
            wall, cpu = float("inf"), float("inf")
            for _ in range(repeats):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run(command + arguments, check=True, capture_output=True, env=environment)
                wall = min(wall, time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = min(cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            return wall, cpu

        startup = seconds(["--help"])
        detect = seconds(["beats", "detect", "--all"])
        show = seconds(["beats", "show", path.name])  # any command: typer's coercion, the workspace
        print(f"\n== fresh process, {len(audio) / 44100 / 60:.1f}-minute track (best of {repeats}) ==")
        print("                         wall      CPU (user + system: what a busy machine does not change)")
        print(f"  start-up (--help)      {startup[0]:6.2f} s  {startup[1]:6.2f} s")
        print(f"  beats show (a command) {show[0]:6.2f} s  {show[1]:6.2f} s")
        print(f"  beats detect           {detect[0]:6.2f} s  {detect[1]:6.2f} s")
        print(f"  ratio                  {detect[0] / startup[0]:6.1f}×   {detect[1] / startup[1]:6.1f}×   (target ≤ 3×)")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("all", "accuracy"):
        accuracy()
    if what in ("all", "timing"):
        timing()
