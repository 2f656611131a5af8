import json
from pathlib import Path

import pytest

from engine.concepts import Reason, Split
from engine.errors import InputError
from engine.library.labelfiles import AUDIO_EXTENSIONS, read_label_file


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def by_line(parsed) -> dict[int, str]:
    return {rejection.line: rejection.detail for rejection in parsed.rejections}


def test_audio_extensions():
    assert AUDIO_EXTENSIONS == {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".aifc"}


# Manifests


def test_csv_manifest_happy_path(tmp_path):
    absolute = tmp_path / "elsewhere" / "b.wav"
    manifest = write(
        tmp_path / "labels.csv",
        "path,label,start_s,end_s,start_beat,end_beat,source,split,confidence,notes\n"
        "audio/a.wav, Kick ,,,,,,,,whole clip\n"
        f"{absolute},snare,1.5,2.0,,,mpc,TRAIN,0.5,\n"
        "c.wav,hat,,,4,8,,val,,beats only\n"
        "d.wav,clap,0.5,1,2,3,,,,both\n",
    )
    parsed = read_label_file(manifest)
    assert parsed.format == "manifest"
    assert parsed.rejections == []
    whole, seconds, beats, both = parsed.records
    assert whole.audio_path == tmp_path / "audio" / "a.wav"
    assert whole.label == "Kick"
    assert (whole.start_s, whole.end_s, whole.start_beat, whole.confidence) == (None, None, None, 1.0)
    assert whole.where == "labels.csv:2"
    assert seconds.audio_path == absolute
    assert (seconds.start_s, seconds.end_s) == (1.5, 2.0)
    assert (seconds.source, seconds.split, seconds.confidence) == ("mpc", Split.TRAIN, 0.5)
    assert (beats.start_beat, beats.end_beat, beats.start_s, beats.split) == (4, 8, None, Split.VAL)
    assert (both.start_s, both.end_s, both.start_beat, both.end_beat) == (0.5, 1, 2, 3)
    assert both.where == "labels.csv:5"


def test_csv_manifest_aliases_bom_and_header_case(tmp_path):
    manifest = write(tmp_path / "labels.csv", "File,Class\r\nx.flac,bass\r\n", encoding="utf-8-sig")
    parsed = read_label_file(manifest)
    assert [(r.audio_path, r.label) for r in parsed.records] == [(tmp_path / "x.flac", "bass")]


def test_csv_manifest_keeps_good_rows_and_reports_each_bad_one(tmp_path):
    rows = [
        "path,label,start_s,end_s,start_beat,end_beat,split,confidence",
        "good1.wav,kick,,,,,,",
        ",kick,,,,,,",  # 3: no path
        "a.wav,,,,,,,",  # 4: no label
        "a.wav,kick,abc,1,,,,",  # 5: not a number
        "a.wav,kick,0,inf,,,,",  # 6: not finite
        "a.wav,kick,1,,,,,",  # 7: only start_s
        "a.wav,kick,,,,4,,",  # 8: only end_beat
        "a.wav,kick,2,1,,,,",  # 9: start after end
        "a.wav,kick,,,4,4,,",  # 10: empty beat range
        "a.wav,kick,-1,1,,,,",  # 11: negative start
        "a.wav,kick,,,,,,1.5",  # 12: confidence too high
        "a.wav,kick,,,,,dev,",  # 13: unknown split
        "a.wav,kick,,,,,,,oops",  # 14: more cells than columns
        "good2.wav,snare,0,1,,,test,0",
    ]
    parsed = read_label_file(write(tmp_path / "labels.csv", "\n".join(rows) + "\n"))
    assert [r.audio_path.name for r in parsed.records] == ["good1.wav", "good2.wav"]
    assert parsed.records[1].where == "labels.csv:15"
    assert {r.reason for r in parsed.rejections} == {Reason.BAD_ROW}
    assert all(r.path == str(tmp_path / "labels.csv") for r in parsed.rejections)
    details = by_line(parsed)
    assert sorted(details) == list(range(3, 15))
    assert "path" in details[3]
    assert "label" in details[4]
    assert "start_s" in details[5] and "not a number" in details[5]
    assert "end_s" in details[6] and "finite" in details[6]
    assert details[7] == "start_s given without end_s"
    assert details[8] == "end_beat given without start_beat"
    assert "not before" in details[9]
    assert "start_beat" in details[10] and "not before" in details[10]
    assert "negative" in details[11]
    assert "confidence" in details[12]
    assert "split" in details[13] and "'dev'" in details[13]
    assert "quotes" in details[14]


def test_csv_without_path_and_label_header_is_one_rejection(tmp_path):
    manifest = write(tmp_path / "labels.csv", "a.wav,kick\nb.wav,snare\n")
    parsed = read_label_file(manifest)
    assert parsed.records == []
    [rejection] = parsed.rejections
    assert rejection.line == 1
    assert rejection.reason == Reason.BAD_ROW
    assert "'path'" in rejection.detail and "'label'" in rejection.detail


def test_csv_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path):
    manifest = write(tmp_path / "labels.csv", 'path,label\n\n"a.wav","two\nlines"\nb.wav,\n')
    parsed = read_label_file(manifest)
    assert [r.where for r in parsed.records] == ["labels.csv:3"]
    assert by_line(parsed) == {5: "no label"}


def test_csv_broken_by_an_unclosed_quote_keeps_the_rows_before_it(tmp_path):
    manifest = write(tmp_path / "labels.csv", 'path,label\na.wav,kick\nb.wav,"' + "x" * 200_000)
    parsed = read_label_file(manifest)
    assert [r.label for r in parsed.records] == ["kick"]
    [rejection] = parsed.rejections
    assert rejection.line == 3 and "not valid CSV" in rejection.detail


def test_jsonl_manifest_with_malformed_line(tmp_path):
    lines = [
        json.dumps({"path": "a.wav", "label": "kick", "start_s": 0, "end_s": 0.5, "split": "Test"}),
        "",
        "{not json",
        json.dumps(["a.wav", "kick"]),
        json.dumps({"audio": "sub/b.wav", "class": "snare", "start_beat": 1, "end_beat": 2, "extra": 1}),
        json.dumps({"path": "c.wav", "label": "hat", "confidence": None, "source": ""}),
        json.dumps({"path": "c.wav", "label": "hat", "start_s": True, "end_s": 1}),
    ]
    parsed = read_label_file(write(tmp_path / "labels.jsonl", "\n".join(lines)))
    assert parsed.format == "manifest"
    first, second, third = parsed.records
    assert (first.start_s, first.end_s, first.split, first.where) == (0, 0.5, Split.TEST, "labels.jsonl:1")
    assert (second.audio_path, second.label) == (tmp_path / "sub" / "b.wav", "snare")
    assert (second.start_beat, second.end_beat, second.where) == (1, 2, "labels.jsonl:5")
    assert (third.confidence, third.source) == (1.0, None)
    details = by_line(parsed)
    assert sorted(details) == [3, 4, 7]
    assert "not valid JSON" in details[3]
    assert "expected a JSON object" in details[4]
    assert "start_s" in details[7]


def test_json_list_manifest_reports_the_line_each_object_starts_on(tmp_path):
    document = json.dumps(
        [{"path": "a.wav", "label": "kick"}, {"path": "b.wav"}, {"path": "c.wav", "label": "hat"}], indent=2
    )
    parsed = read_label_file(write(tmp_path / "labels.json", document))
    assert parsed.format == "manifest"
    assert [r.where for r in parsed.records] == ["labels.json:2", "labels.json:9"]
    assert by_line(parsed) == {6: "no label"}


def test_malformed_json_document_is_one_rejection_at_the_error_line(tmp_path):
    parsed = read_label_file(write(tmp_path / "labels.json", '[\n{"path": "a.wav",\n"label": }\n]'))
    assert parsed.records == []
    [rejection] = parsed.rejections
    assert rejection.line == 3 and "not valid JSON" in rejection.detail


# Audacity label tracks


def test_audacity_track_uses_the_sibling_audio(tmp_path):
    write(tmp_path / "song.mp3", "")
    write(tmp_path / "song.flac", "")
    track = write(
        tmp_path / "song.txt",
        "0.5\t1.25\tkick drum\n"
        "\\\t100.0\t2000.0\n"
        "\n"
        "2.000000 \t 2.000000\tsnare\n",
    )
    parsed = read_label_file(track, hit_length_s=0.05)
    assert parsed.format == "audacity"
    assert parsed.rejections == []
    span, point = parsed.records
    assert span.audio_path == tmp_path / "song.flac"
    assert (span.label, span.start_s, span.end_s, span.where) == ("kick drum", 0.5, 1.25, "song.txt:1")
    assert (point.label, point.start_s, point.end_s, point.where) == ("snare", 2.0, 2.05, "song.txt:4")


def test_audacity_track_with_explicit_audio_and_bad_lines(tmp_path):
    track = write(
        tmp_path / "labels.txt",
        "0\t1\tkick\n"
        "x\t1\tkick\n"
        "1\t2\t\n"
        "3\t2\tsnare\n"
        "-1\t2\tsnare\n"
        "justoneword\n"
        "4\t5\that\n",
    )
    parsed = read_label_file(track, audio=Path("/music/take.wav"))
    assert [(r.audio_path, r.label) for r in parsed.records] == [
        (Path("/music/take.wav"), "kick"),
        (Path("/music/take.wav"), "hat"),
    ]
    details = by_line(parsed)
    assert sorted(details) == [2, 3, 4, 5, 6]
    assert "start" in details[2] and "not a number" in details[2]
    assert details[3] == "no label"
    assert "after end" in details[4]
    assert "negative" in details[5]
    assert "tabs" in details[6]


def test_audacity_track_without_sibling_audio_is_one_rejection(tmp_path):
    track = write(tmp_path / "song.txt", "0\t1\tkick\n1\t2\tsnare\n")
    parsed = read_label_file(track)
    assert parsed.records == []
    [rejection] = parsed.rejections
    assert rejection.reason == Reason.MISSING_FILE
    assert rejection.line is None
    assert "song.wav" in rejection.detail and "song.mp3" in rejection.detail
    assert "--audio" in rejection.detail


# Event maps


def test_jsonl_event_map_uses_aliases_and_hit_length(tmp_path):
    write(tmp_path / "beat.wav", "")
    lines = [
        {"onset": 0.5, "component": "kick", "velocity": 100},
        {"t": 1, "instrument": "snare", "path": "other.wav", "source": "midi"},
        {"time_s": 1.5, "class": "hat"},
        {"time": -1, "label": "hat"},
        {"label": "hat"},
        {"time": 2},
    ]
    events = write(tmp_path / "beat.jsonl", "\n".join(json.dumps(line) for line in lines))
    parsed = read_label_file(events, hit_length_s=0.2)
    assert parsed.format == "events"
    kick, snare, hat = parsed.records
    assert (kick.audio_path, kick.label) == (tmp_path / "beat.wav", "kick")
    assert (kick.start_s, kick.end_s) == (0.5, 0.7)
    assert (snare.audio_path, snare.source, snare.where) == (tmp_path / "other.wav", "midi", "beat.jsonl:2")
    assert (hat.start_s, hat.end_s) == (1.5, 1.7)
    details = by_line(parsed)
    assert sorted(details) == [4, 5, 6]
    assert "negative" in details[4]
    assert "no time" in details[5]
    assert details[6] == "no label"


def test_drum_beatmap_object_with_top_level_audio(tmp_path):
    beatmap = {"audio": "stems/drums.wav", "bpm": 120, "events": [{"time": 0, "label": "kick"}, {"t": 0.5}]}
    parsed = read_label_file(write(tmp_path / "map.json", json.dumps(beatmap, indent=1)))
    assert parsed.format == "events"
    [kick] = parsed.records
    assert kick.audio_path == tmp_path / "stems" / "drums.wav"
    assert kick.where == "map.json:5"
    assert by_line(parsed) == {9: "no label"}


def test_audio_argument_wins_over_beatmap_audio(tmp_path):
    beatmap = {"audio": "drums.wav", "events": [{"time": 0, "label": "kick"}]}
    parsed = read_label_file(write(tmp_path / "map.json", json.dumps(beatmap)), audio=Path("/x/take.wav"))
    assert parsed.records[0].audio_path == Path("/x/take.wav")


def test_json_list_of_events(tmp_path):
    events = [{"time": 1, "label": "kick", "audio": "/abs/a.wav"}]
    parsed = read_label_file(write(tmp_path / "events.json", json.dumps(events)))
    assert parsed.format == "events"
    assert parsed.records[0].audio_path == Path("/abs/a.wav")


def test_events_without_any_audio_keep_the_rows_that_name_theirs(tmp_path):
    lines = [{"time": 0, "label": "kick"}, {"time": 1, "label": "snare", "path": "b.wav"}]
    parsed = read_label_file(write(tmp_path / "events.jsonl", "\n".join(json.dumps(line) for line in lines)))
    assert [r.label for r in parsed.records] == ["snare"]
    [rejection] = parsed.rejections
    assert rejection.reason == Reason.MISSING_FILE and "--audio" in rejection.detail


def test_jsonl_with_ranges_is_a_manifest(tmp_path):
    line = {"path": "a.wav", "label": "kick", "time": 3, "start_s": 0, "end_s": 1}
    parsed = read_label_file(write(tmp_path / "labels.jsonl", json.dumps(line)))
    assert parsed.format == "manifest"
    assert (parsed.records[0].start_s, parsed.records[0].end_s) == (0, 1)


# Forced formats


def test_forced_events_on_a_manifest_looking_file(tmp_path):
    write(tmp_path / "x.wav", "")
    line = {"path": "a.wav", "label": "kick", "time": 3, "start_s": 0, "end_s": 1}
    parsed = read_label_file(write(tmp_path / "x.jsonl", json.dumps(line)), format="events")
    assert parsed.format == "events"
    assert (parsed.records[0].start_s, parsed.records[0].end_s) == (3, 3.1)


def test_forced_manifest_on_an_event_looking_file(tmp_path):
    events = write(tmp_path / "x.jsonl", json.dumps({"time": 1, "label": "kick"}))
    parsed = read_label_file(events, format="manifest")
    assert parsed.format == "manifest"
    assert parsed.records == []
    assert "path" in parsed.rejections[0].detail


def test_forced_audacity_on_another_extension(tmp_path):
    track = write(tmp_path / "take.labels", "0\t1\tkick\n")
    parsed = read_label_file(track, audio=tmp_path / "take.wav", format="audacity")
    assert parsed.format == "audacity"
    assert [r.label for r in parsed.records] == ["kick"]


def test_forced_manifest_reads_other_extensions_as_csv(tmp_path):
    manifest = write(tmp_path / "labels.tsv.txt", "path,label\na.wav,kick\n")
    parsed = read_label_file(manifest, format="manifest")
    assert [r.label for r in parsed.records] == ["kick"]


# Whole-file problems


@pytest.mark.parametrize("name", ["labels.csv", "labels.jsonl", "labels.json", "labels.txt"])
def test_empty_file_gives_nothing(tmp_path, name):
    parsed = read_label_file(write(tmp_path / name, "\n"))
    assert (parsed.records, parsed.rejections) == ([], [])


def test_missing_file_raises_input_error_naming_it(tmp_path):
    with pytest.raises(InputError, match="nope.csv"):
        read_label_file(tmp_path / "nope.csv")


def test_non_utf8_file_raises_input_error(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(b"path,label\na.wav,caf\xe9\n")
    with pytest.raises(InputError, match="UTF-8"):
        read_label_file(path)


def test_unknown_extension_lists_supported_ones(tmp_path):
    with pytest.raises(InputError, match=r"\.csv.*\.jsonl.*\.txt"):
        read_label_file(write(tmp_path / "labels.xml", "<labels/>"))


def test_bad_arguments_raise_input_error(tmp_path):
    manifest = write(tmp_path / "labels.csv", "path,label\n")
    with pytest.raises(InputError, match="format"):
        read_label_file(manifest, format="midi")
    with pytest.raises(InputError, match="hit length"):
        read_label_file(manifest, hit_length_s=0)
