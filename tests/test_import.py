"""Importing folders: rejections with reasons, content-hash identity, moves, sources, curated labels."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import numpy as np
import soundfile

from conftest import curated_library, write_hits, write_tone
from engine.concepts import Reason
from engine.library.importer import import_folder
from engine.store.labels import query_labels


def write_bad_files(folder: Path) -> dict[str, Reason]:
    """One file of every kind the importer must reject, and the reason it must give."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("this is a text file, not audio\n" * 10)
    good = write_tone(folder / "tmp_good.wav", seconds=1.0)
    data = good.read_bytes()
    good.unlink()
    (folder / "truncated.flac").write_bytes(b"fLaC" + os.urandom(200))
    header_only = bytearray(data[:44])
    struct.pack_into("<I", header_only, 40, 0)  # data chunk of zero bytes
    (folder / "zero.wav").write_bytes(bytes(header_only))
    write_tone(folder / "ten_channels.wav", seconds=0.5, channels=10)
    write_tone(folder / "locked.wav", seconds=0.5)
    return {"empty.wav": Reason.EMPTY, "notes.wav": Reason.NOT_AUDIO, "truncated.flac": Reason.CORRUPT,
            "zero.wav": Reason.ZERO_LENGTH, "ten_channels.wav": Reason.CHANNELS, "locked.wav": Reason.UNREADABLE}


def test_every_bad_file_is_reported_and_the_rest_imported(workspace, tmp_path, monkeypatch):
    from engine.library import scan

    folder = tmp_path / "mixed"
    expected = write_bad_files(folder)
    good = write_hits(folder / "pack", "kick", 3)
    (folder / "readme.txt").write_text("not audio, and not pretending")

    def open_refusing_locked(path, *args, **kwargs):  # chmod cannot lock out root, so refuse here
        if str(path).endswith("locked.wav"):
            raise PermissionError(13, "Permission denied")
        return open(path, *args, **kwargs)

    monkeypatch.setattr(scan, "open", open_refusing_locked, raising=False)
    report = import_folder(workspace, folder, workers=1)
    reasons = {Path(r.path).name: r.reason for r in report.rejections}
    assert reasons == expected
    assert all(r.path.startswith(str(folder)) for r in report.rejections)
    assert report.added == len(good)
    assert report.ignored == 1 and report.partial


def test_reimport_adds_nothing_and_a_moved_file_is_found(workspace, tmp_path):
    folder = tmp_path / "packs"
    paths = write_hits(folder / "alpha", "snare", 4)
    first = import_folder(workspace, folder, workers=1)
    assert first.added == 4
    again = import_folder(workspace, folder, workers=1)
    assert (again.added, again.unchanged, again.moved) == (0, 4, 0)
    moved_to = folder / "beta" / paths[0].name
    moved_to.parent.mkdir()
    shutil.move(paths[0], moved_to)
    after_move = import_folder(workspace, folder, workers=1)
    assert (after_move.added, after_move.moved) == (0, 1)
    with workspace.db.transaction() as con:
        assert con.execute("SELECT count(*) FROM clips").fetchone()[0] == 4
        assert con.execute("SELECT count(*) FROM clips WHERE path = ?", [str(moved_to)]).fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM clip_files WHERE path = ?", [str(paths[0])]).fetchone()[0] == 0


def test_a_copy_of_a_known_file_is_a_duplicate_not_a_new_clip(workspace, tmp_path):
    folder = tmp_path / "packs"
    original = write_hits(folder / "alpha", "kick", 1)[0]
    import_folder(workspace, folder, workers=1)
    shutil.copy(original, folder / "alpha" / "copy.wav")
    report = import_folder(workspace, folder, workers=1)
    assert (report.added, report.duplicates) == (0, 1)


def test_source_is_the_top_folder_or_the_given_name(workspace, tmp_path):
    folder = tmp_path / "packs"
    write_hits(folder / "909" / "sub", "kick", 2)
    write_hits(folder, "snare", 1)
    import_folder(workspace, folder, workers=1)
    with workspace.db.transaction() as con:
        sources = dict(con.execute("SELECT source, count(*) FROM clips GROUP BY source").fetchall())
    assert sources == {"909": 2, "packs": 1}
    other = tmp_path / "more"
    write_hits(other / "x", "tom", 2)
    import_folder(workspace, other, source="my_pack", workers=1)
    with workspace.db.transaction() as con:
        assert con.execute("SELECT count(*) FROM clips WHERE source = 'my_pack'").fetchone()[0] == 2


def test_curated_folders_label_clips_through_aliases_and_reject_unknown_classes(workspace, tmp_path):
    root = curated_library(tmp_path / "curated", classes=("kick", "snare"), per_pack=2)
    write_hits(root / "HH" / "packz", "hihat_closed", 2)  # alias, any case
    write_hits(root / "didgeridoo", "perc", 2)
    report = import_folder(workspace, root, curated=True, workers=1)
    assert report.labelled == 3 * 2 * 2 + 2
    assert [r.reason for r in report.rejections] == [Reason.UNKNOWN_LABEL] * 2
    assert "didgeridoo" in report.rejections[0].detail
    with workspace.db.transaction() as con:
        labels = query_labels(con)
        sources = {row[0] for row in con.execute("SELECT DISTINCT source FROM clips").fetchall()}
    assert {label.label for label in labels} == {"kick", "snare", "hihat_closed"}
    assert {str(label.origin) for label in labels} == {"import"}
    assert "packz" in sources and "didgeridoo" not in sources


def test_parallel_probe_matches_in_process_probe(tmp_path):
    from engine.library.scan import probe_file
    from engine.jobs.parallel import parallel_map

    paths = [str(p) for p in write_hits(tmp_path, "clap", 20)]
    inline = dict(parallel_map(probe_file, paths, workers=1))
    pooled = dict(parallel_map(probe_file, paths, workers=2))
    assert inline == pooled
    probe = inline[paths[0]]
    info = soundfile.info(paths[0])
    assert probe.frames == info.frames and probe.sample_rate == info.samplerate
    assert len(probe.clip_id) == 64 and np.isfinite(probe.rms_db)


def test_ogg_mp3_and_aiff_import_and_decode(workspace, tmp_path):
    from engine.audio.decode import decode

    t = np.arange(22050) / 22050
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-t * 5)).astype(np.float32)
    folder = tmp_path / "formats"
    folder.mkdir()
    soundfile.write(folder / "a.ogg", tone, 22050, format="OGG", subtype="VORBIS")
    soundfile.write(folder / "b.mp3", tone, 22050, format="MP3", subtype="MPEG_LAYER_III")
    soundfile.write(folder / "c.aiff", tone, 22050, format="AIFF", subtype="PCM_16")
    report = import_folder(workspace, folder, workers=1)
    assert report.added == 3 and not report.rejections
    for name in ("a.ogg", "b.mp3", "c.aiff"):
        samples, rate = decode(folder / name, sample_rate=16000)
        assert rate == 16000 and abs(samples.size - 16000) < 1200 and np.abs(samples).max() > 0.1
