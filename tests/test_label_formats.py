"""Label formats shared with other tools: Label Studio exports in and out, MIDI drum tracks in,
Audacity label tracks and JAMS out.

The files read here are written by hand to each format's published description (Label Studio's
task format and JSON-MIN export, the MIDI 1.0 file spec with General MIDI percussion on channel 10,
Audacity's label track); the files written are checked with the reference readers (jams,
mir_eval) and by reading them back.
"""

from __future__ import annotations

import json
from pathlib import Path

import jams
import mido
import mir_eval
import numpy as np
import pytest

from conftest import clip_id_of, write_tone
from engine.audio.beatgrid import BeatGrid
from engine.concepts import Origin, Reason, Segment
from engine.errors import InputError
from engine.library.editing import put_label
from engine.library.grids import set_grid
from engine.library.importer import import_folder, import_label_file
from engine.library.labelexport import export_labels
from engine.library.labelfiles import read_label_file
from engine.library.midifiles import GM_DRUM_MAP, read_midi_file, read_note_map
from engine.store.clips import all_clips
from engine.store.labels import query_labels
from engine.store.predictions import Prediction, replace_predictions
from engine.store.versions import activate_version, insert_version, list_versions
from engine.workspace import Workspace
from test_cli import document, expect, failed, invoke, ok


def by_line(parsed) -> dict[int, str]:
    return {rejection.line: rejection.detail for rejection in parsed.rejections}


# -- Label Studio in ----------------------------------------------------------------------------

def _audio_tree(root: Path) -> None:
    for name in ("sub/song.wav", "kick.wav", "a/dup.wav", "b/dup.wav"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")  # only found by name here; nothing decodes them


# A project export as Label Studio's task format describes it: a task per file, its annotations'
# results (an `<Labels>` region with start/end in seconds, a `<Choices>` choice), a cancelled
# annotation and a model's predictions (neither of which is a person's label).
LABEL_STUDIO_JSON = """[
  {
    "id": 11,
    "data": {"audio": "/data/upload/1/3f2a9c1b-song.wav"},
    "annotations": [
      {
        "id": 101, "completed_by": 1, "was_cancelled": false, "ground_truth": false, "lead_time": 12.5,
        "created_at": "2024-03-09T21:52:49.513742Z", "updated_at": "2024-03-09T22:16:08.746926Z", "task": 11,
        "result": [
          {"id": "r1", "from_name": "label", "to_name": "audio", "type": "labels", "origin": "manual",
           "original_length": 4.0, "value": {"start": 0.5, "end": 1.75, "channel": 0, "labels": ["intro"]}},
          {"id": "r2", "from_name": "label", "to_name": "audio", "type": "labels", "origin": "manual",
           "value": {"start": 2.0, "end": 3.5, "channel": 0, "labels": ["drop"]}},
          {"id": "c1", "from_name": "mood", "to_name": "audio", "type": "choices", "origin": "manual",
           "value": {"choices": ["verse"]}}
        ]
      },
      {"id": 102, "was_cancelled": true, "result": [
          {"id": "x", "from_name": "label", "to_name": "audio", "type": "labels",
           "value": {"start": 0.0, "end": 4.0, "channel": 0, "labels": ["outro"]}}]}
    ],
    "predictions": [
      {"model_version": "model 1", "score": 0.5, "result": [
          {"id": "p", "from_name": "label", "to_name": "audio", "type": "labels",
           "value": {"start": 0.0, "end": 1.0, "channel": 0, "labels": ["break"]}}]}
    ]
  },
  {
    "id": 12,
    "data": {"audio": "/data/local-files/?d=kick.wav"},
    "annotations": [{"id": 103, "result": [
        {"id": "c2", "from_name": "mood", "to_name": "audio", "type": "choices", "value": {"choices": ["outro"]}},
        {"id": "t", "from_name": "notes", "to_name": "audio", "type": "textarea", "value": {"text": ["loud"]}},
        {"id": "r3", "from_name": "label", "to_name": "audio", "type": "labels",
         "value": {"start": 2.0, "end": 1.0, "channel": 0, "labels": ["drop"]}}
    ]}]
  },
  {"id": 13, "data": {"audio": "https://example.com/files/missing.wav"}, "annotations": []},
  {"id": 14, "data": {"audio": "/data/upload/1/dup.wav"}, "annotations": []},
  {"id": 15, "data": {"text": "no audio here"}, "annotations": []}
]
"""


def test_label_studio_json_export_as_documented(tmp_path):
    _audio_tree(tmp_path / "audio")
    export = tmp_path / "project-7-export.json"
    export.write_text(LABEL_STUDIO_JSON)
    parsed = read_label_file(export, root=tmp_path / "audio")
    assert parsed.format == "label-studio"
    got = [(r.audio_path.relative_to(tmp_path / "audio").as_posix(), r.label, r.start_s, r.end_s) for r in parsed.records]
    # the upload hash prefix is stripped to find sub/song.wav; the local-files URL names kick.wav
    assert got == [("sub/song.wav", "intro", 0.5, 1.75), ("sub/song.wav", "drop", 2.0, 3.5),
                   ("sub/song.wav", "verse", None, None), ("kick.wav", "outro", None, None)]
    assert parsed.records[0].where == "project-7-export.json:2 (task 11)"
    rejected = by_line(parsed)
    assert set(rejected) == {28, 38, 39, 40}  # the lines where tasks 12–15 start
    assert [r.detail for r in parsed.rejections if r.line == 28] == [
        "task 12: notes: result type 'textarea' is not imported (only labels and choices are)",
        "task 12: label: start 2 is after end 1"]
    assert "no file named 'missing.wav'" in rejected[38] and "--root" in rejected[38]
    assert "2 files named 'dup.wav'" in rejected[39]
    assert "task 15: no audio" in rejected[40]
    assert all(r.path == str(export) and r.reason == Reason.BAD_ROW for r in parsed.rejections)


def test_label_studio_json_min_export_as_documented(tmp_path):
    _audio_tree(tmp_path)
    # JSON-MIN: the task's data fields, then one field per control: a single choice as a string,
    # several as {"choices": [...]}, regions as a list of their values; then who and when.
    export = tmp_path / "project-7-min.json"
    export.write_text(json.dumps([
        {"audio": "/data/upload/7/0a1b2c3d-song.wav", "id": 1,
         "label": [{"start": 0.25, "end": 1.0, "channel": 0, "labels": ["intro"]},
                   {"start": 3.0, "end": 3.0, "channel": 0, "labels": ["snare"]}],
         "mood": "house", "annotator": 1, "annotation_id": 5, "created_at": "2024-01-01T00:00:00Z",
         "updated_at": "2024-01-01T00:01:00Z", "lead_time": 4.2},
        {"audio": "kick.wav", "id": 2, "tags": {"choices": ["kick", "808"]}, "annotator": 1, "annotation_id": 6,
         "label": [{"start": "soon", "end": 1, "labels": ["kick"]}]},
    ], indent=1))
    parsed = read_label_file(export, hit_length_s=0.05)
    assert parsed.format == "label-studio"
    got = [(r.audio_path.name, r.label, r.start_s, r.end_s) for r in parsed.records]
    assert got == [("song.wav", "intro", 0.25, 1.0), ("song.wav", "snare", 3.0, 3.05),  # a point → a hit
                   ("song.wav", "house", None, None), ("kick.wav", "kick", None, None), ("kick.wav", "808", None, None)]
    (rejection,) = parsed.rejections
    second_task = [number for number, line in enumerate(export.read_text().split("\n"), 1) if line == " {"][1]
    assert rejection.line == second_task and rejection.detail == "task 2: start 'soon' is not a number"


# -- Label Studio round trip, with the active model's predictions ------------------------------------

@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Workspace:
    """Two tones (a 6 s track on a 120 bpm grid, a 1 s one-shot, in `audio/` beside the workspace) with
    whole-clip, seconds, beat and hit labels of the sections taxonomy, and an active sections model
    whose predictions are stored. Tests only read it."""
    tmp_path = tmp_path_factory.mktemp("labelled")
    audio = tmp_path / "audio"
    write_tone(audio / "mix" / "track.wav", seconds=6.0)
    write_tone(audio / "shot.wav", seconds=1.0, freq=440.0)
    workspace = Workspace.open(tmp_path / "ws")
    import_folder(workspace, audio, workers=1)
    set_grid(workspace, "track.wav", BeatGrid.constant(120.0, 0.25))
    track, shot = clip_id_of(workspace, "track.wav"), clip_id_of(workspace, "shot.wav")
    put_label(workspace, track, "intro", taxonomy="sections", start_beat=0, end_beat=4)  # 0.25–2.25 s
    put_label(workspace, track, "drop", taxonomy="sections", start_s=3.0, end_s=5.5)
    put_label(workspace, track, "break", taxonomy="sections", start_s=5.6, end_s=5.7)  # a hit
    put_label(workspace, shot, "outro", taxonomy="sections", origin=Origin.IMPORT)
    with workspace.db.transaction() as con:
        insert_version(con, name="sections-model", version=3, task="sections", kind="logreg", artifact_dir="models/x",
                       feature_spec={}, label_set=["intro", "drop"], label_counts={}, hyperparams={}, metrics={},
                       dataset_fingerprint=None, job_id=None, meta={})
        activate_version(con, "sections-model", 3, reason=None, forced=False)
        model_id = list_versions(con, "sections-model")[0].model_id
        replace_predictions(con, model_id, [Prediction(model_id, track, Segment.seconds(0.0, 2.0), "intro", 0.8),
                                            Prediction(model_id, track, Segment.seconds(2.0, 4.0), "drop", 0.6),
                                            Prediction(model_id, shot, Segment.whole(), "outro", 0.9)])
    return workspace


def _labels(workspace) -> set[tuple[str, str, float | None, float | None]]:
    with workspace.db.transaction(read_only=True) as con:
        paths = {clip.clip_id: clip.path for clip in all_clips(con)}
        return {(Path(paths[label.clip_id]).name, label.label,
                 None if label.segment.is_whole else round(label.segment.start_s, 6),
                 None if label.segment.is_whole else round(label.segment.end_s, 6))
                for label in query_labels(con, taxonomy="sections")}


def test_label_studio_export_then_import_gives_the_same_labels(labelled, tmp_path):
    out = tmp_path / "review" / "tasks.json"
    audio = labelled.root.parent / "audio"
    result = invoke(["labels", "export", "--format", "label-studio", "--out", out, "--root", audio,
                     "-t", "sections"], labelled.root)
    expect(result, 0)
    assert document(result)["labels"] == 4 and document(result)["predictions"] == 3
    tasks = json.loads(out.read_text())
    by_audio = {task["data"]["audio"]: task for task in tasks}
    assert set(by_audio) == {"/data/local-files/?d=mix/track.wav", "/data/local-files/?d=shot.wav"}
    track = by_audio["/data/local-files/?d=mix/track.wav"]
    regions = sorted((r["value"]["start"], r["value"]["end"], r["value"]["labels"]) for r in track["annotations"][0]["result"])
    assert regions == [(0.25, 2.25, ["intro"]), (3.0, 5.5, ["drop"]), (5.6, 5.7, ["break"])]
    assert all(r["type"] == "labels" and r["to_name"] == "audio" for r in track["annotations"][0]["result"])
    (prediction,) = track["predictions"]
    assert prediction["model_version"] == "sections-model@3" and prediction["score"] == pytest.approx(0.7)
    assert [(r["value"]["labels"], r["score"]) for r in prediction["result"]] == [(["intro"], 0.8), (["drop"], 0.6)]
    shot = by_audio["/data/local-files/?d=shot.wav"]
    assert shot["annotations"][0]["result"][0]["value"] == {"choices": ["outro"]}
    assert shot["predictions"][0]["result"][0]["type"] == "choices"
    config = (tmp_path / "review" / "tasks.label-config.xml").read_text()
    assert '<Labels name="label" toName="audio">' in config and '<Label value="drop"/>' in config

    fresh = Workspace.open(tmp_path / "ws2")
    report = import_label_file(fresh, out, taxonomy="sections", root=audio, workers=1)
    assert report.format == "label-studio" and report.rejections == [] and report.clips_added == 2
    assert _labels(fresh) == _labels(labelled)


def test_export_and_import_name_a_bad_path(labelled, tmp_path):
    doc = failed(["labels", "export", "--format", "label-studio", "--out", tmp_path, "-t", "sections"], labelled.root)
    assert str(tmp_path) in doc["error"]["message"] and "--out tasks.json" in doc["error"]["message"]
    (tmp_path / "file").write_text("")
    doc = failed(["labels", "export", "--format", "jams", "--out", tmp_path / "file"], labelled.root)
    assert "not a folder" in doc["error"]["message"]
    doc = failed(["labels", "import", tmp_path / "tasks.json", "--root", tmp_path / "nowhere"], labelled.root)
    assert doc["error"]["message"].startswith(f"{tmp_path / 'nowhere'}: no such folder")
    assert not (tmp_path / "tasks.json").exists()


# -- MIDI drum tracks ------------------------------------------------------------------------------

def _drum_midi(path: Path, notes: list[tuple[int, int]], *, ticks_per_beat: int = 480) -> Path:
    """A type 1 file as the MIDI spec lays it out: a tempo track (120 bpm, then 60 bpm from beat 2)
    and a drum track on channel 10; `notes` are (beat, note number) at full beats."""
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    tempo = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0),
                            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60), time=2 * ticks_per_beat),
                            mido.MetaMessage("end_of_track", time=0)])
    drums = mido.MidiTrack([mido.Message("program_change", channel=9, program=0, time=0)])
    now = 0
    for beat, note in sorted(notes):
        tick = beat * ticks_per_beat
        drums.append(mido.Message("note_on", channel=9, note=note, velocity=100, time=tick - now))
        drums.append(mido.Message("note_off", channel=9, note=note, velocity=0, time=0))
        now = tick
    drums.append(mido.Message("note_on", channel=0, note=60, velocity=90, time=0))  # a piano note: not a drum
    drums.append(mido.MetaMessage("end_of_track", time=0))
    midi.tracks += [tempo, drums]
    midi.save(path)
    return path


# beat → seconds through the tempo map: 0.5 s a beat before beat 2, 1 s a beat after it
SECONDS_AT = {0: 0.0, 1: 0.5, 2: 1.0, 3: 2.0, 4: 3.0, 5: 4.0}


def test_midi_drum_track_through_the_gm_map_and_tempo_changes(tmp_path):
    song = _drum_midi(tmp_path / "song.mid", [(0, 36), (1, 42), (2, 38), (3, 46), (3, 49), (4, 37), (5, 37), (5, 51)])
    (tmp_path / "song.flac").write_bytes(b"")  # the sibling audio, found by its stem
    parsed = read_midi_file(song, offset_s=0.25, hit_length_s=0.05)
    assert parsed.format == "midi"
    got = [(r.audio_path.name, r.label, r.start_s, r.end_s) for r in parsed.records]
    expected = [(0, "kick"), (1, "hihat_closed"), (2, "snare"), (3, "hihat_open"), (3, "crash"), (5, "ride")]
    assert got == [("song.flac", label, pytest.approx(SECONDS_AT[beat] + 0.25), pytest.approx(SECONDS_AT[beat] + 0.3))
                   for beat, label in expected]
    (unmapped,) = parsed.rejections
    assert unmapped.reason == Reason.UNKNOWN_LABEL and unmapped.path == str(song)
    assert unmapped.detail.startswith("note 37 (2 hits, first at 3.000 s) is not in the General MIDI drum map")


def test_midi_note_map_overrides_and_bad_entries(tmp_path):
    song = _drum_midi(tmp_path / "song.mid", [(0, 36), (1, 37), (2, 38)])
    csv_map = tmp_path / "kit.csv"
    csv_map.write_text("note,label\n37,snare\n36,ignore\n")
    parsed = read_midi_file(song, audio=tmp_path / "take.wav", note_map=read_note_map(csv_map), offset_s=-0.5)
    assert [(r.label, r.start_s) for r in parsed.records] == [("snare", 0.0), ("snare", 0.5)]
    assert parsed.rejections == []
    json_map = tmp_path / "kit.json"
    json_map.write_text('{"38": "rim", "37": null}')
    assert read_note_map(json_map) == {38: "rim", 37: None}
    bad = tmp_path / "bad.csv"
    bad.write_text("note,label\n36,kick\n200,snare\n")
    with pytest.raises(InputError, match=r"bad\.csv:3: note 200 is outside 0–127"):
        read_note_map(bad)
    early = read_midi_file(song, audio=tmp_path / "take.wav", offset_s=-0.75)
    assert [r.label for r in early.records] == ["snare"]
    assert {r.reason for r in early.rejections} == {Reason.OUT_OF_RANGE, Reason.UNKNOWN_LABEL}
    assert GM_DRUM_MAP[39] == "clap" and GM_DRUM_MAP[44] == "hihat_closed"


def test_labels_import_midi_from_the_cli(tmp_path):
    write_tone(tmp_path / "song.flac", seconds=5.0)
    song = _drum_midi(tmp_path / "song.mid", [(0, 36), (2, 38), (4, 42)])
    ws = tmp_path / "ws"
    doc = ok(["labels", "import", song, "--audio", tmp_path / "song.flac", "--offset", 0.5, "-t", "drums"], ws)
    assert doc["format"] == "midi" and doc["labelled"] == 3 and doc["clips_added"] == 1
    labels = ok(["labels", "list", "-t", "drums"], ws)["labels"]
    assert [(item["label"], item["start_s"], item["end_s"]) for item in labels] == [
        ("kick", 0.5, pytest.approx(0.6)), ("snare", 1.5, pytest.approx(1.6)), ("hihat_closed", 3.5, pytest.approx(3.6))]
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00")
    result = invoke(["labels", "import", broken, "--audio", tmp_path / "song.flac", "-t", "drums"], ws)
    expect(result, 3)
    (rejection,) = document(result)["rejections"]
    assert rejection["path"] == str(broken) and rejection["reason"] == "corrupt"
    assert "not a readable MIDI file" in rejection["detail"]
    result = invoke(["labels", "import", tmp_path / "x.csv", "--offset", 1], ws)
    expect(result, 2)


# -- Audacity and JAMS out ------------------------------------------------------------------------

def test_audacity_export_reads_with_mir_eval(labelled, tmp_path):
    out = tmp_path / "tracks"
    report = export_labels(labelled, "audacity", out, taxonomy="sections")
    assert [Path(f).name for f in report.files] == ["track.txt"]  # the one-shot has only a whole-clip label
    with pytest.warns(UserWarning, match="strictly positive"):  # mir_eval says so of the point label
        intervals, names = mir_eval.io.load_labeled_intervals(str(out / "track.txt"), delimiter="\t")
    assert names == ["intro", "drop", "break"]
    np.testing.assert_allclose(intervals, [[0.25, 2.25], [3.0, 5.5], [5.6, 5.6]])  # the hit as a point label
    # and Audacity's format comes back in as the same labels
    fresh = Workspace.open(tmp_path / "ws2")
    write_tone(tmp_path / "track.wav", seconds=6.0)
    (tmp_path / "track.txt").write_text((out / "track.txt").read_text())
    import_label_file(fresh, tmp_path / "track.txt", taxonomy="sections", hit_length_s=0.1, workers=1)
    assert _labels(fresh) == {label for label in _labels(labelled) if label[0] == "track.wav"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning:jsonschema")  # jams calls an old jsonschema API
def test_jams_export_loads_with_jams_and_mir_eval(labelled, tmp_path):
    out = tmp_path / "jams"
    doc = ok(["labels", "export", "--format", "jams", "--out", out, "-t", "sections"], labelled.root)
    assert [Path(f).name for f in doc["files"]] == ["track.jams"]
    loaded = jams.load(str(out / "track.jams"), validate=True)
    assert loaded.file_metadata.duration == pytest.approx(6.0)
    (beats,) = loaded.search(namespace="beat")
    times, positions = beats.to_event_values()
    grid = BeatGrid.constant(120.0, 0.25)
    np.testing.assert_allclose(times, grid.beat_times_within(6.0))
    assert list(positions[:6]) == [1, 2, 3, 4, 1, 2]
    mir_eval.beat.validate(times, times)
    assert mir_eval.beat.f_measure(grid.beat_times_within(6.0), times) == pytest.approx(1.0)
    (sections,) = loaded.search(namespace="segment_open")
    intervals, names = sections.to_interval_values()
    assert names == ["intro", "drop"]  # the hit is not a section
    np.testing.assert_allclose(intervals, [[0.25, 2.25], [3.0, 5.5]])
    mir_eval.util.validate_intervals(intervals)
