"""The synthetic drum one-shots, the curated demo library and the section tracks."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from engine.audio.synth import (
    DEMO_PACKS,
    DRUM_CLASSES,
    SECTION_LABELS,
    PackTimbre,
    synthesize_hit,
    synthesize_section_track,
    write_curated_library,
)

NEUTRAL = PackTimbre("neutral", 44100, "wav", "PCM_16")
PACKS = {pack.name: pack for pack in DEMO_PACKS}
DJ_SET = [("intro", 8), ("build", 4), ("drop", 8), ("break", 4), ("outro", 4)]


def hits(kind: str, pack: PackTimbre = NEUTRAL, count: int = 4, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [synthesize_hit(kind, pack, rng) for _ in range(count)]


def centroid_hz(audio: np.ndarray, sr: int) -> float:
    """Power-weighted spectral centroid of the whole clip."""
    power = np.abs(np.fft.rfft(audio)) ** 2
    return float(np.sum(np.fft.rfftfreq(audio.size, 1 / sr) * power) / np.sum(power))


def ring_time_s(audio: np.ndarray, sr: int, drop_db: float = 30.0) -> float:
    """Seconds from the loudest 5 ms frame until the level first falls `drop_db` below it."""
    frame = int(0.005 * sr)
    frames = audio[: audio.size // frame * frame].reshape(-1, frame).astype(np.float64)
    level_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    loudest = int(np.argmax(level_db))
    quiet = np.flatnonzero(level_db[loudest:] < level_db[loudest] - drop_db)
    return (quiet[0] if quiet.size else len(level_db) - loudest) * frame / sr


def mean_of(values) -> float:
    return float(np.mean(list(values)))


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))


# --- one-shots ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pack", DEMO_PACKS, ids=lambda pack: pack.name)
@pytest.mark.parametrize("kind", DRUM_CLASSES)
def test_every_class_in_every_pack_is_a_plausible_clip(kind, pack):
    audio = synthesize_hit(kind, pack, np.random.default_rng(0))
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.all(np.isfinite(audio))
    assert np.max(np.abs(audio)) <= 1.0
    assert np.max(np.abs(audio)) > 0.05 and rms(audio) > 1e-3
    seconds = audio.size / pack.sample_rate - pack.lead_silence_s
    assert 0.2 <= seconds <= 2.5 + 1e-3


def test_unknown_class_is_refused_by_name():
    with pytest.raises(ValueError, match="cowbell_xl"):
        synthesize_hit("cowbell_xl", NEUTRAL, np.random.default_rng(0))


def test_same_seed_gives_identical_hits_and_other_seeds_differ():
    for kind in DRUM_CLASSES:
        first, again, other = hits(kind, seed=5, count=1), hits(kind, seed=5, count=1), hits(kind, seed=6, count=1)
        assert np.array_equal(first[0], again[0])
        assert not np.array_equal(first[0], other[0])


def test_hits_of_one_class_vary_from_call_to_call():
    for kind in DRUM_CLASSES:
        a, b = hits(kind, count=2)
        assert a.size != b.size or not np.allclose(a, b, atol=1e-3)


def test_peak_stays_within_full_scale_even_when_loud_and_driven():
    loud = PackTimbre("hot", 48000, "wav", "FLOAT", drive=1.0, brightness=3.0, gain_db=12.0, noise_floor_db=-20.0)
    for kind in DRUM_CLASSES:
        assert max(np.max(np.abs(hit)) for hit in hits(kind, loud, count=3)) <= 1.0


def test_classes_differ_in_the_expected_directions():
    sr = NEUTRAL.sample_rate
    centroid = {kind: mean_of(centroid_hz(hit, sr) for hit in hits(kind)) for kind in DRUM_CLASSES}
    ring = {kind: mean_of(ring_time_s(hit, sr) for hit in hits(kind)) for kind in DRUM_CLASSES}
    length = {kind: mean_of(hit.size / sr for hit in hits(kind)) for kind in DRUM_CLASSES}

    assert centroid["kick"] < 200 < 4000 < centroid["hihat_closed"]
    assert centroid["kick"] < centroid["tom"] < centroid["perc"] < centroid["snare"] < centroid["hihat_closed"]
    assert centroid["clap"] < centroid["crash"]
    assert ring["hihat_open"] > 3 * ring["hihat_closed"]
    assert ring["crash"] > 3 * ring["clap"] and length["crash"] > 2 * length["clap"]
    assert ring["ride"] > ring["hihat_open"]


def test_ride_has_its_bell_between_three_and_six_kilohertz():
    sr = NEUTRAL.sample_rate
    ride = hits("ride", count=1)[0].astype(np.float64)
    power = np.abs(np.fft.rfft(ride)) ** 2
    freqs = np.fft.rfftfreq(ride.size, 1 / sr)
    assert 3000 < freqs[np.argmax(power)] < 6000


def test_packs_sound_measurably_different():
    deep, crunch, acoustic, lofi, loud = (PACKS[name] for name in
                                          ("deep808", "crunch909", "studio_acoustic", "lofi_dust", "loud_flac"))

    def centroid(kind, pack):
        return mean_of(centroid_hz(hit, pack.sample_rate) for hit in hits(kind, pack))

    def peak(kind, pack):
        return mean_of(np.max(np.abs(hit)) for hit in hits(kind, pack, count=6))

    assert centroid("kick", deep) < 0.8 * centroid("kick", crunch)
    assert centroid("hihat_closed", lofi) < 0.7 * centroid("hihat_closed", crunch)
    assert mean_of(ring_time_s(h, deep.sample_rate) for h in hits("kick", deep)) > \
        1.3 * mean_of(ring_time_s(h, crunch.sample_rate) for h in hits("kick", crunch))
    assert peak("snare", loud) > 2 * peak("snare", acoustic)  # more than 6 dB apart
    assert peak("snare", acoustic) > peak("snare", lofi)


def test_demo_packs_cover_rates_formats_and_levels():
    assert len(DEMO_PACKS) == 5 and len(PACKS) == 5
    assert {pack.file_format for pack in DEMO_PACKS} == {"wav", "flac"}
    assert len({pack.sample_rate for pack in DEMO_PACKS}) >= 3
    assert len({pack.subtype for pack in DEMO_PACKS}) >= 3
    assert len({pack.gain_db for pack in DEMO_PACKS}) == 5
    assert any(pack.lead_silence_s > 0 for pack in DEMO_PACKS)


@pytest.mark.parametrize("changes", [
    {"file_format": "flac", "subtype": "FLOAT"},
    {"file_format": "mp3"},
    {"subtype": "PCM_8"},
    {"drive": 1.5},
    {"decay": 0.0},
    {"lead_silence_s": -0.1},
    {"name": "a/b"},
])
def test_pack_settings_are_checked(changes):
    settings = {"name": "p", "sample_rate": 44100, "file_format": "wav", "subtype": "PCM_16"} | changes
    with pytest.raises(ValueError):
        PackTimbre(**settings)


# --- curated library ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("library")
    return root, write_curated_library(root, clips_per_class_per_pack=2)


def test_library_has_the_promised_layout_and_files(library):
    root, paths = library
    assert paths == sorted(paths)
    assert len(paths) == 2 * len(DRUM_CLASSES) * len(DEMO_PACKS)
    for kind in DRUM_CLASSES:
        for pack in DEMO_PACKS:
            folder = root / kind / pack.name
            names = sorted(path.name for path in folder.iterdir())
            assert names == [f"{pack.name}_{kind}_{nn}.{pack.file_format}" for nn in ("01", "02")]
    for path in paths:
        pack = PACKS[path.parent.name]
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.format, info.subtype) == \
            (pack.sample_rate, 1, pack.file_format.upper(), pack.subtype)
        assert re.fullmatch(rf"{pack.name}_{path.parent.parent.name}_\d\d\.{pack.file_format}", path.name)


def test_library_clips_keep_the_lead_silence_their_pack_asks_for(library):
    root, _ = library
    for pack in DEMO_PACKS:
        for kind in DRUM_CLASSES:
            audio, sr = sf.read(root / kind / pack.name / f"{pack.name}_{kind}_01.{pack.file_format}")
            lead = round(pack.lead_silence_s * sr)
            onset = int(np.argmax(np.abs(audio) > 0.05 * np.max(np.abs(audio))))
            assert lead <= onset <= lead + round(0.01 * sr), (pack.name, kind, onset)
            if lead:
                assert np.max(np.abs(audio[:lead])) < 1e-3


def test_library_is_byte_identical_for_a_seed_and_differs_for_another(tmp_path):
    def contents(root, seed):
        paths = write_curated_library(root, 1, classes=("kick", "hihat_closed"), seed=seed)
        return {path.relative_to(root): path.read_bytes() for path in paths}

    first = contents(tmp_path / "a", 3)
    assert contents(tmp_path / "b", 3) == first
    other = contents(tmp_path / "c", 4)
    assert other.keys() == first.keys()
    assert all(other[name] != first[name] for name in first)


def test_float_wavs_carry_no_time_stamp(tmp_path):
    # libsndfile's PEAK chunk holds the time of writing, which would break byte-for-byte determinism.
    float_pack = next(pack for pack in DEMO_PACKS if pack.subtype == "FLOAT")
    (path,) = write_curated_library(tmp_path, 1, classes=("clap",), packs=(float_pack,))
    assert b"PEAK" not in path.read_bytes()
    assert sf.info(path).subtype == "FLOAT"


def test_library_refuses_an_unknown_class_before_writing(tmp_path):
    with pytest.raises(ValueError, match="snare_drum"):
        write_curated_library(tmp_path, 1, classes=("kick", "snare_drum"))
    assert list(tmp_path.iterdir()) == []


def test_adding_a_class_does_not_change_the_others(tmp_path):
    (alone,) = write_curated_library(tmp_path / "a", 1, classes=("tom",), packs=DEMO_PACKS[:1])
    together = write_curated_library(tmp_path / "b", 1, classes=("kick", "tom"), packs=DEMO_PACKS[:1])
    assert alone.read_bytes() == next(path for path in together if "_tom_" in path.name).read_bytes()


# --- section tracks ----------------------------------------------------------------------------


def test_sections_are_contiguous_and_on_the_grid():
    bpm, sr, offset = 128.0, 16000, 0.75
    sections = [("intro", 2), ("verse", 2), ("chorus", 1), ("outro", 1)]
    audio, layout = synthesize_section_track(sections, bpm=bpm, sample_rate=sr, beats_per_bar=3, offset_s=offset)
    beat_s = 60.0 / bpm
    assert [entry["label"] for entry in layout] == [label for label, _ in sections]
    assert layout[0]["start_beat"] == 0
    for entry, (_, bars), following in zip(layout, sections, layout[1:] + [None]):
        assert set(entry) == {"label", "start_beat", "end_beat", "start_s", "end_s"}
        assert entry["end_beat"] - entry["start_beat"] == bars * 3
        assert entry["start_s"] == pytest.approx(offset + entry["start_beat"] * beat_s)
        assert entry["end_s"] == pytest.approx(offset + entry["end_beat"] * beat_s)
        if following:
            assert following["start_beat"] == entry["end_beat"] and following["start_s"] == entry["end_s"]
    assert audio.dtype == np.float32 and audio.ndim == 1 and np.all(np.isfinite(audio))
    assert audio.size == round((offset + 18 * beat_s) * sr)
    assert np.max(np.abs(audio)) <= 1.0
    assert np.max(np.abs(audio[: round(offset * sr)])) == 0.0  # nothing before beat 0


def test_beat_tracker_finds_the_tempo_and_the_kicks():
    librosa = pytest.importorskip("librosa")
    offset = 0.4
    audio, _ = synthesize_section_track(DJ_SET, bpm=124.0, sample_rate=22050, offset_s=offset)
    tempo, beat_times = librosa.beat.beat_track(y=audio, sr=22050, units="time")
    assert float(np.atleast_1d(tempo)[0]) == pytest.approx(124.0, rel=0.02)
    beat_s = 60.0 / 124.0
    position = (beat_times - offset) / beat_s
    assert np.median(np.abs(position - np.round(position))) * beat_s < 0.05


def test_sections_differ_in_loudness_the_way_a_dj_expects():
    sr = 22050
    audio, layout = synthesize_section_track(DJ_SET, sample_rate=sr)
    level = {entry["label"]: rms(audio[round(entry["start_s"] * sr): round(entry["end_s"] * sr)])
             for entry in layout}
    assert level["drop"] > 2 * level["break"]
    assert level["drop"] > 2 * level["intro"]
    build = next(entry for entry in layout if entry["label"] == "build")
    bar = 4 * 60.0 / 124.0
    first_bar = audio[round(build["start_s"] * sr): round((build["start_s"] + bar) * sr)]
    last_bar = audio[round((build["end_s"] - bar) * sr): round(build["end_s"] * sr)]
    assert rms(last_bar) > 1.5 * rms(first_bar)


def test_break_has_no_drum_hits():
    sr = 22050
    audio, layout = synthesize_section_track([("break", 4)], sample_rate=sr)
    frame = 512
    frames = audio[: audio.size // frame * frame].reshape(-1, frame)
    flux = np.diff(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)))
    # Pads swell slowly: no frame jumps by more than a small part of the level.
    assert np.max(flux) < 0.2 * np.max(np.abs(audio))


def test_every_section_label_renders_and_tracks_are_deterministic():
    sections = [(label, 1) for label in SECTION_LABELS]
    first, layout = synthesize_section_track(sections, seed=2)
    again, _ = synthesize_section_track(sections, seed=2)
    other, _ = synthesize_section_track(sections, seed=3)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    sr = 22050
    for entry in layout:
        assert rms(first[round(entry["start_s"] * sr): round(entry["end_s"] * sr)]) > 1e-3, entry["label"]


@pytest.mark.parametrize("sections, options, needle", [
    ([("intro", 4), ("bridge", 4)], {}, "bridge"),
    ([("drop", 0)], {}, "drop"),
    ([], {}, "section"),
    ([("drop", 1)], {"bpm": 0.0}, "bpm"),
    ([("drop", 1)], {"offset_s": -1.0}, "offset"),
])
def test_bad_track_requests_are_refused(sections, options, needle):
    with pytest.raises(ValueError, match=needle):
        synthesize_section_track(sections, **options)
