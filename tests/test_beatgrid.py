import json

import numpy as np
import pytest

from engine.audio.beatgrid import BeatGrid, detect_beat_grid
from engine.errors import InputError

# 4 beats at 120 bpm, then 4 at 60 bpm (beat 4 is at 2.0 s).
TEMPO_CHANGE = BeatGrid.from_beat_times([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0])


def grids():
    return [
        BeatGrid.constant(120, offset_s=0.5),
        BeatGrid.constant(93.7, offset_s=-0.2, beats_per_bar=3),
        TEMPO_CHANGE,
        BeatGrid.from_beat_times(np.cumsum(np.random.default_rng(1).uniform(0.3, 0.7, 40)) + 0.1),
    ]


@pytest.mark.parametrize("grid", grids())
def test_round_trips(grid):
    rng = np.random.default_rng(0)
    beats = rng.uniform(-20, 80, 500)  # fractional, negative and past the last explicit beat
    assert np.allclose(grid.beat_at(grid.seconds_at(beats)), beats, rtol=0, atol=1e-9)
    seconds = rng.uniform(-10, 40, 500)
    assert np.allclose(grid.seconds_at(grid.beat_at(seconds)), seconds, rtol=0, atol=1e-9)


@pytest.mark.parametrize("grid", grids())
def test_scalar_in_float_out(grid):
    assert type(grid.seconds_at(3)) is float
    assert type(grid.beat_at(1.25)) is float
    assert isinstance(grid.seconds_at([1, 2]), np.ndarray)


def test_known_values():
    grid = BeatGrid.constant(120, offset_s=0.5)
    assert grid.seconds_at(0) == pytest.approx(0.5)
    assert grid.seconds_at(4) == pytest.approx(2.5)
    assert grid.seconds_at(2.5) == pytest.approx(1.75)
    assert grid.seconds_at(-1) == pytest.approx(0.0)
    assert grid.beat_at(2.5) == pytest.approx(4.0)
    assert np.allclose(grid.seconds_at(np.array([0, 4, 2.5])), [0.5, 2.5, 1.75])


def test_bars():
    four = BeatGrid.constant(120)
    three = BeatGrid.constant(120, beats_per_bar=3)
    assert four.beat_of_bar(0) == 0 and four.beat_of_bar(16) == 64
    assert three.beat_of_bar(2) == 6 and three.bar_of_beat(7.5) == 2.5
    assert four.bar_of_beat(64) == 16
    assert three.seconds_at(three.beat_of_bar(1)) == pytest.approx(1.5)


def test_tempo_change_is_piecewise():
    grid = TEMPO_CHANGE
    assert grid.seconds_at(1.5) == pytest.approx(0.75)  # 120 bpm part
    assert grid.seconds_at(4) == pytest.approx(2.0)
    assert grid.seconds_at(5.5) == pytest.approx(3.5)  # 60 bpm part
    assert grid.seconds_at(-2) == pytest.approx(-1.0)  # before: first interval's tempo
    assert grid.seconds_at(10) == pytest.approx(8.0)  # after: last interval's tempo
    assert grid.beat_at(7.5) == pytest.approx(9.5)
    assert grid.bpm == pytest.approx(80.0)  # median of four 0.5 s and four 1 s intervals: 0.75 s
    assert grid.offset_s == 0.0


def test_explicit_times_govern_conversion():
    grid = BeatGrid(bpm=999, offset_s=7, beat_times=(1.0, 2.0, 3.0))
    assert grid.seconds_at(1) == 2.0


def test_snap():
    grid = BeatGrid.constant(128, beats_per_bar=4)
    assert grid.snap(63.6) == 64
    assert grid.snap(63.4) == 63
    assert grid.snap(63.4, to="half") == 63.5
    assert grid.snap(63.1, to="quarter") == 63.0
    assert grid.snap(62.1, to="bar") == 64
    assert grid.snap(61.9, to="bar") == 60
    assert grid.snap(-0.3) == 0
    with pytest.raises(InputError, match="choose one of"):
        grid.snap(1, to="phrase")


def test_beat_times_within():
    grid = BeatGrid.constant(120, offset_s=0.6)  # beat -1 at 0.1 s is left out
    times = grid.beat_times_within(2.6)
    assert np.allclose(times, [0.6, 1.1, 1.6, 2.1, 2.6])
    assert np.allclose(TEMPO_CHANGE.beat_times_within(4.5), [0, 0.5, 1, 1.5, 2, 3, 4])
    assert len(BeatGrid.constant(120, offset_s=5).beat_times_within(3)) == 0


def test_check_range():
    grid = BeatGrid.constant(120, offset_s=0.5)  # 10 s clip: beat 19 is at 10 s
    grid.check_range(0, 4, 10.0)
    grid.check_range(16.5, 19, 10.0)
    grid.check_range(16, 19, 9.9995)  # within the tolerance
    with pytest.raises(InputError, match=r"beats 8–4.*last beat is 19"):
        grid.check_range(8, 4, 10.0)
    with pytest.raises(InputError, match="beats 4–4"):
        grid.check_range(4, 4, 10.0)
    with pytest.raises(InputError, match="negative"):
        grid.check_range(-1, 4, 10.0)
    with pytest.raises(InputError, match=r"beats 16–20\b.*past the end.*last beat is 19"):
        grid.check_range(16, 20, 10.0)
    with pytest.raises(InputError):
        grid.check_range(0, float("nan"), 10.0)


@pytest.mark.parametrize("grid", grids())
def test_dict_round_trip(grid):
    data = json.loads(json.dumps(grid.to_dict()))
    assert BeatGrid.from_dict(data) == grid


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bpm": 0},
        {"bpm": -120},
        {"bpm": 1001},
        {"bpm": float("nan")},
        {"bpm": float("inf")},
        {"bpm": "120"},
        {"bpm": 120, "offset_s": float("nan")},
        {"bpm": 120, "beats_per_bar": 0},
        {"bpm": 120, "beats_per_bar": 3.5},
        {"bpm": 120, "beat_times": (1.0,)},
        {"bpm": 120, "beat_times": (1.0, 1.0, 2.0)},
        {"bpm": 120, "beat_times": (2.0, 1.0)},
        {"bpm": 120, "beat_times": (0.0, float("inf"))},
    ],
)
def test_invalid_grids(kwargs):
    with pytest.raises(ValueError):
        BeatGrid(**kwargs)


def test_invalid_beat_times_and_dicts():
    with pytest.raises(ValueError):
        BeatGrid.from_beat_times([0.5])
    with pytest.raises(ValueError, match="strictly increasing"):
        BeatGrid.from_beat_times([0.0, 0.5, 0.4])
    with pytest.raises(ValueError):
        BeatGrid.from_dict({"offset_s": 0.0})
    with pytest.raises(ValueError, match="unknown"):
        BeatGrid.from_dict({"bpm": 120, "tempo": 120})


def click_track(bpm=124.0, offset=0.1, seconds=20.0, sr=22050):
    """Short decaying sine bursts on every beat, louder and lower on the downbeats."""
    samples = np.zeros(int(seconds * sr), dtype=np.float32)
    t = np.arange(int(0.08 * sr)) / sr
    beat_times = offset + np.arange(int((seconds - offset) * bpm / 60)) * 60 / bpm
    for i, at in enumerate(beat_times):
        downbeat = i % 4 == 0
        gain, freq = (1.0, 80) if downbeat else (0.5, 160)
        burst = gain * np.sin(2 * np.pi * freq * t) * np.exp(-t * 40)
        start = int(round(at * sr))
        chunk = samples[start : start + len(burst)]
        chunk += burst[: len(chunk)].astype(np.float32)
    return samples, beat_times, sr


def test_detect_beat_grid():
    samples, true_beats, sr = click_track()
    grid = detect_beat_grid(samples, sr)
    assert grid.bpm == pytest.approx(124.0, rel=0.01)
    assert grid.offset_s == pytest.approx(true_beats[0], abs=0.01)
    assert grid.is_constant and grid.beats_per_bar == 4


def test_detect_too_short():
    with pytest.raises(InputError, match="too short for beat tracking"):
        detect_beat_grid(np.zeros(22050, dtype=np.float32), 22050)
    with pytest.raises(InputError, match="too short for beat tracking"):
        detect_beat_grid(np.zeros(22050 * 6, dtype=np.float32), 22050)  # silence: no beats


@pytest.mark.parametrize(("pattern", "bpm", "offset_s"), [
    ("eighth_hats", 70, 0.0),  # eighth hats over the kick: not doubled to 140
    ("four_on_the_floor", 174, 0.0),  # not halved to 87
    ("four_on_the_floor", 124, 1.3),  # after a silence
    ("eighth_hats", 97, 0.25),
])
def test_detected_grids_match_the_beats_by_mir_eval(pattern, bpm, offset_s):
    import mir_eval

    from engine.audio.synth import synthesize_drum_loop

    samples, true_beats = synthesize_drum_loop(pattern, bpm, bars=8, offset_s=offset_s)
    grid = detect_beat_grid(samples, 22050)
    found = grid.beat_times_within(len(samples) / 22050)
    assert grid.bpm == pytest.approx(bpm, rel=0.01)
    assert mir_eval.beat.f_measure(true_beats, found) >= 0.95
    assert grid.offset_s == pytest.approx(offset_s, abs=0.01)  # beat 0 is the first beat, not one later


@pytest.mark.parametrize(("pattern", "bpm", "swing"), [
    ("breakbeat", 174, 0.5),  # a syncopated kick and a backbeat at drum & bass tempo: not halved to 87
    ("hip_hop", 174, 0.62),  # swung as well
    ("hip_hop", 160, 0.5),
    ("breakbeat", 70, 0.5),  # eighth hats over a slow breakbeat: not doubled to 140
])
def test_syncopated_grooves_keep_their_tempo_octave(pattern, bpm, swing):
    import mir_eval

    from engine.audio.synth import synthesize_drum_loop

    samples, true_beats = synthesize_drum_loop(pattern, bpm, bars=8, swing=swing, offset_s=0.3, seed=bpm)
    grid = detect_beat_grid(samples, 22050)
    assert grid.bpm == pytest.approx(bpm, rel=0.01)
    assert mir_eval.beat.f_measure(true_beats, grid.beat_times_within(len(samples) / 22050)) >= 0.95


def test_a_loop_whose_offbeat_is_as_loud_as_its_beat_starts_its_grid_where_it_starts():
    """Kick and snare on every beat of a 97 bpm loop, and as loud a sixteenth before each beat (as
    in a synth loop's arpeggio): the onset envelope is higher on the sixteenth, which follows the
    longer gap, but music starts on a beat, so beat 0 is the loop's first sample."""
    import mir_eval

    from engine.audio.synth import PackTimbre, synthesize_hit

    sr, bpm = 22050, 97.0
    sixteenth = 60.0 / bpm / 4
    rng = np.random.default_rng(3)
    kit = PackTimbre("loop_kit", sr, "wav", "FLOAT", noise_floor_db=-120.0)
    hits = {kind: synthesize_hit(kind, kit, rng) for kind in ("kick", "snare")}
    loop = np.zeros(round(16 * sixteenth * sr))
    for beat in range(4):
        kind = ("kick", "snare")[beat % 2]
        for step, gain in ((4 * beat, 1.0), (4 * beat + 3, 1.0)):
            start = round(step * sixteenth * sr)
            sound = hits[kind][: loop.size - start]
            loop[start:start + sound.size] += gain * sound
    samples = np.tile(loop, 8).astype(np.float32)
    true_beats = np.arange(0, len(samples) / sr - 1e-6, 4 * sixteenth)
    grid = detect_beat_grid(samples, sr)
    assert grid.bpm == pytest.approx(bpm, rel=0.01)
    assert grid.offset_s == pytest.approx(0.0, abs=0.02)
    assert mir_eval.beat.f_measure(true_beats, grid.beat_times_within(len(samples) / sr)) >= 0.95


def test_a_section_track_gets_its_first_beat_as_bar_one():
    from engine.audio.synth import synthesize_section_track

    samples, sections = synthesize_section_track([("intro", 2), ("drop", 4), ("outro", 2)], bpm=128, offset_s=0.0)
    grid = detect_beat_grid(samples, 22050)
    assert grid.bpm == pytest.approx(128, rel=0.005)
    assert abs(grid.offset_s) < 0.01
    assert grid.beat_at(sections[1]["start_s"]) == pytest.approx(sections[1]["start_beat"], abs=0.05)


def test_beat_tracking_needs_no_jit_compiler():
    """A fresh process tracks beats without numba (whose compile cost every process used to pay)."""
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from engine.audio.beatgrid import detect_beat_grid\n"
        "sr = 22050; t = np.arange(sr * 10) / sr; y = np.zeros_like(t)\n"
        "for b in np.arange(0.1, 10, 0.5):\n"
        "    i = int(b * sr); y[i:i + 500] += np.sin(2 * np.pi * 60 * t[:500])\n"
        "print(round(detect_beat_grid(y.astype(np.float32), sr).bpm), 'numba' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert result.stdout.split() == ["120", "False"]


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_the_mono_mixdown_is_the_mean_of_the_channels(channels):
    from engine.audio.decode import to_mono

    samples = np.random.default_rng(channels).uniform(-1, 1, (1000, channels)).astype(np.float32)
    np.testing.assert_allclose(to_mono(samples), samples.mean(axis=1), rtol=0, atol=1e-6)
    assert to_mono(samples).dtype == np.float32


def test_a_whole_track_keeps_its_grid_on_the_beat_to_its_end():
    """Four minutes at 128 bpm: a period a hundredth of a frame off would drift a beat by the end."""
    import mir_eval

    from engine.audio.synth import synthesize_section_track

    samples, sections = synthesize_section_track([("intro", 8), ("drop", 32), ("break", 16), ("outro", 8)] * 2,
                                                 bpm=128, sample_rate=11025, seed=5)
    true_beats = np.arange(sections[-1]["end_beat"]) * 60.0 / 128
    grid = detect_beat_grid(samples, 11025)
    assert grid.bpm == pytest.approx(128, rel=1e-4)
    assert mir_eval.beat.f_measure(true_beats, grid.beat_times_within(len(samples) / 11025)) >= 0.99
