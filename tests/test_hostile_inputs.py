"""Hostile inputs at import: non-regular files, truncated or inconsistent audio, codecs libsndfile
cannot decode and folders that cannot be read are each rejected with a clear reason, naming the
file (or folder), while the good files of the same run are imported."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import write_hits, write_tone
from engine.concepts import Reason, Segment
from engine.library.importer import import_folder, import_label_file
from engine.library.scan import probe_file

REPO = Path(__file__).parents[1]


def reasons_by_name(report) -> dict[str, Reason]:
    return {Path(r.path).name: r.reason for r in report.rejections}


def run_cli(args: list, timeout: float = 120) -> subprocess.CompletedProcess:
    """`workbench --headless ARGS --json` in its own process, so a hang fails the test instead of the run."""
    code = "import sys; from cli.main import run; sys.argv = ['workbench', *sys.argv[1:]]; run()"
    return subprocess.run([sys.executable, "-c", code, "--headless", *map(str, args), "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)})


# -- 1. only regular files are opened ---------------------------------------------------------

def test_a_fifo_and_links_to_devices_are_rejected_and_the_good_files_imported(tmp_path):
    folder = tmp_path / "incoming"
    good = write_hits(folder / "pack", "kick", 2)
    os.mkfifo(folder / "pack" / "pipe.wav")  # opening it for reading would wait for a writer forever
    (folder / "pack" / "zero.wav").symlink_to("/dev/zero")  # reading it would never end
    result = run_cli(["--workspace", tmp_path / "ws", "import", folder])
    assert result.returncode == 3, result.stderr
    doc = json.loads(result.stdout)
    assert doc["added"] == len(good) and doc["rejected"] == 2
    rejections = {Path(r["path"]).name: r for r in doc["rejections"]}
    assert rejections["pipe.wav"]["reason"] == "not a regular file" and "FIFO" in rejections["pipe.wav"]["detail"]
    assert rejections["zero.wav"]["reason"] == "not a regular file"
    assert rejections["zero.wav"]["detail"] == "a character device, linked to /dev/zero"
    assert rejections["pipe.wav"]["path"] == str(folder / "pack" / "pipe.wav")


def test_a_manifest_row_naming_a_device_is_rejected_and_the_other_rows_labelled(workspace, tmp_path):
    (good,) = write_hits(tmp_path / "audio", "kick", 1)
    manifest = tmp_path / "labels.csv"
    manifest.write_text(f"path,label\n{good},kick\n/dev/zero,snare\n")
    report = import_label_file(workspace, manifest, workers=1)
    assert [(r.path, r.reason) for r in report.rejections] == [("/dev/zero", Reason.NOT_REGULAR)]
    assert report.clips_added == 1 and report.labelled == 1


def test_hashing_and_probing_stream_in_blocks(tmp_path):
    """A minute of stereo 24-bit audio (16 MB on disk, 21 MB as float32) is probed in a few MB."""
    rate, seconds = 44100, 60
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (rate * seconds, 2)).astype(np.float32)
    path = tmp_path / "long.wav"
    soundfile.write(path, noise, rate, subtype="PCM_24")
    del noise
    tracemalloc.start()
    try:
        probed = probe_file(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert probed.clip_id == hashlib.sha256(path.read_bytes()).hexdigest()
    assert probed.frames == rate * seconds
    assert peak < path.stat().st_size / 2, f"probing took {peak / 1e6:.1f} MB"


# -- 2. truncated and inconsistent audio ------------------------------------------------------

def wav_bytes(tmp_path: Path, seconds: float = 1.0, rate: int = 22050) -> bytes:
    path = write_tone(tmp_path / "source" / "tone.wav", seconds=seconds, rate=rate)
    data = path.read_bytes()
    path.unlink()
    return data


def test_truncated_and_inconsistent_files_are_rejected_naming_both_lengths(workspace, tmp_path):
    folder = tmp_path / "damaged"
    folder.mkdir()
    wav = wav_bytes(tmp_path)  # 1 s of 16-bit mono at 22050 Hz: a 44-byte header, then 22050 frames
    (folder / "cut_to_60_bytes.wav").write_bytes(wav[:60])
    (folder / "cut_in_half.wav").write_bytes(wav[:44 + 22050])
    claims_more = bytearray(wav)
    struct.pack_into("<I", claims_more, 40, 4 * 22050 * 2)  # the data chunk claims four times its bytes
    (folder / "claims_four_times.wav").write_bytes(bytes(claims_more))
    tone = np.sin(np.arange(22050) / 5).astype(np.float32) * 0.3
    soundfile.write(folder / "whole.aiff", tone, 22050, subtype="PCM_16")
    aiff = (folder / "whole.aiff").read_bytes()
    (folder / "whole.aiff").unlink()
    (folder / "cut_in_half.aiff").write_bytes(aiff[: len(aiff) // 2])
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, 10 * 22050).astype(np.float32)
    soundfile.write(folder / "whole.flac", noise, 22050)
    flac = (folder / "whole.flac").read_bytes()
    (folder / "whole.flac").unlink()
    (folder / "cut_in_half.flac").write_bytes(flac[: len(flac) // 2])
    good = write_hits(folder / "pack", "snare", 2)

    report = import_folder(workspace, folder, workers=1)
    assert reasons_by_name(report) == {name: Reason.TRUNCATED for name in (
        "cut_to_60_bytes.wav", "cut_in_half.wav", "claims_four_times.wav", "cut_in_half.aiff", "cut_in_half.flac")}
    details = {Path(r.path).name: r.detail for r in report.rejections}
    assert details["cut_to_60_bytes.wav"] == ("the WAV header declares 22050 frames (1.000 s); "
                                              "the file holds 8 frames (0.000 s)")
    assert details["cut_in_half.wav"] == ("the WAV header declares 22050 frames (1.000 s); "
                                          "the file holds 11025 frames (0.500 s)")
    assert details["claims_four_times.wav"] == ("the WAV header declares 88200 frames (4.000 s); "
                                                "the file holds 22050 frames (1.000 s)")
    assert details["cut_in_half.aiff"].startswith("the AIFF header declares 22050 frames (1.000 s); the file holds ")
    assert details["cut_in_half.flac"].startswith("the FLAC header declares 220500 frames (10.000 s); decoding ")
    assert report.added == len(good)


def test_a_codec_libsndfile_cannot_decode_inside_a_wav_is_unsupported_not_corrupt(workspace, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    vorbis = bytearray(wav_bytes(tmp_path))
    struct.pack_into("<H", vorbis, 20, 0x674F)  # WAVE_FORMAT_OGG_VORBIS_MODE_1
    (folder / "vorbis.wav").write_bytes(bytes(vorbis))
    garbled = bytearray(wav_bytes(tmp_path))
    garbled[22:36] = b"\xff" * 14  # a PCM fmt chunk with nonsense after its tag: corrupt, as before
    (folder / "garbled.wav").write_bytes(bytes(garbled))
    write_hits(folder, "kick", 1)

    report = import_folder(workspace, folder, workers=1)
    assert reasons_by_name(report) == {"vorbis.wav": Reason.UNSUPPORTED_CODEC, "garbled.wav": Reason.CORRUPT}
    (vorbis_rejection,) = [r for r in report.rejections if r.path.endswith("vorbis.wav")]
    assert vorbis_rejection.detail == "a WAV file holding Ogg Vorbis (WAV format tag 0x674F)"
    assert report.added == 1


def test_intact_files_of_every_container_still_import(workspace, tmp_path):
    folder = tmp_path / "fine"
    for fmt in ("wav", "flac", "aiff"):
        write_hits(folder, "tom", 1, fmt=fmt)
    write_tone(folder / "stereo24.wav", seconds=0.5, channels=2)
    streamed = bytearray(wav_bytes(tmp_path, seconds=0.5))
    struct.pack_into("<I", streamed, 4, 0xFFFFFFFF)  # a streaming writer's "length not known yet"
    struct.pack_into("<I", streamed, 40, 0xFFFFFFFF)
    (folder / "streamed.wav").write_bytes(bytes(streamed))
    report = import_folder(workspace, folder, workers=1)
    assert report.rejections == [] and report.added == 5


# -- 3. unreadable folders --------------------------------------------------------------------

def test_an_unreadable_subfolder_is_a_rejection_naming_it(workspace, tmp_path, monkeypatch):
    folder = tmp_path / "library"
    good = write_hits(folder / "open", "kick", 2)
    locked = folder / "locked"
    write_hits(locked, "snare", 2)
    real_scandir = os.scandir

    def scandir_refusing_locked(path="."):  # chmod 000 cannot lock out root, so refuse here
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir_refusing_locked)
    report = import_folder(workspace, folder, workers=1)
    assert [(r.path, r.reason, r.detail) for r in report.rejections] == [
        (str(locked), Reason.UNREADABLE, "folder cannot be listed: Permission denied")]
    assert report.added == len(good) and report.partial


# -- 1. extraction of a long file decodes only the region it needs ----------------------------

def test_extracting_a_long_file_decodes_only_the_region_around_its_onset(tmp_path):
    """A 90 s stereo file with a hit at 70 s: the features equal those of the fully decoded file,
    and extraction holds a few MB where the decoded file alone would take 31 MB."""
    from engine.audio.decode import decode, find_onset, resample
    from engine.audio.synth import DEMO_PACKS, synthesize_hit
    from engine.features.cache import FeatureCache
    from engine.features.extract import Target, extract_features, load_features
    from engine.features.spec import FeatureSpec

    rate, seconds, hit_at = 44100, 90, 70.0
    hit = resample(synthesize_hit("snare", DEMO_PACKS[0], np.random.default_rng(3)), DEMO_PACKS[0].sample_rate, rate)
    audio = np.random.default_rng(4).normal(0.0, 1e-4, (rate * seconds, 2)).astype(np.float32)
    first = int(hit_at * rate)
    audio[first: first + hit.size] += 0.5 * hit[:, None]
    path = tmp_path / "long.wav"
    soundfile.write(path, audio, rate, subtype="PCM_24")
    del audio
    assert abs(find_onset(path) - hit_at) < 0.005
    assert find_onset(path, 0.0, 60.0) < 1.0  # in a range of noise alone, the noise is the sound

    spec = FeatureSpec.parse("dsp")
    extractors = spec.extractors(tmp_path / "embeddings")
    cache = FeatureCache(tmp_path / "cache.lmdb")
    target = Target("c" * 64, str(path), path.stat().st_size)
    tracemalloc.start()
    try:
        report = extract_features(cache, [target], spec, extractors, workers=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.extracted == 1 and report.rejections == []
    assert report.audio_seconds < 2.0
    assert peak < 10e6, f"extraction took {peak / 1e6:.1f} MB"

    samples, _ = decode(path, sample_rate=extractors[0].sample_rate)
    expected = extractors[0].extract(samples)
    stored, kept = load_features(cache, [target], extractors)
    assert kept == [0]
    np.testing.assert_allclose(stored[0], expected, rtol=1e-5, atol=1e-5)

    # Two short regions 70 s apart are decoded on their own, not with the minute between them.
    hits = [Target(target.clip_id, target.path, target.size_bytes, Segment.seconds(start, start + 0.5))
            for start in (5.0, 75.0)]
    report = extract_features(cache, hits, spec, extractors, workers=1)
    assert report.extracted == 2 and report.audio_seconds == pytest.approx(1.0)
