"""Property-based tests: thousands of generated label files and taxonomies, never a traceback.

Every label-file parser (manifest CSV, JSON lines and JSON; Audacity label tracks; event maps as
JSON lines, JSON lists and beatmap objects; Label Studio exports) and the taxonomy loader are fed rows that are
structured but wrong (known fields holding values of every JSON type, huge and non-finite numbers,
odd paths) and raw text and bytes. The only outcomes allowed are the module's own: records that
make sense, rejections naming the file and a line inside it, or an InputError naming the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from engine.errors import InputError
from engine.library.labelfiles import (EVENT_LABEL_FIELDS, LABEL_FIELDS, MANIFEST_OPTIONAL_FIELDS, PATH_FIELDS,
                                       TIME_FIELDS, read_label_file)
from engine.taxonomy import load_taxonomy_file

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIELDS = sorted({*PATH_FIELDS, *LABEL_FIELDS, *EVENT_LABEL_FIELDS, *TIME_FIELDS, *MANIFEST_OPTIONAL_FIELDS,
                 "events", "audio"})
# Text that means something to some field, or nearly does.
TOKENS = ["", " ", "kick", "Snare", "hihat_closed", "train", "TEST", "nan", "-inf", "Infinity", "1e999", "-1", "0",
          "0.5", "1.5", "2", "1_000", "0x10", "1e-320", "~", "~nobody_at_all/x.wav", "a\x00b.wav", "/abs/x.wav",
          "x.wav", "../up.wav", "\ufeff", "\u202e", "[b]", ",", '"', "\t", "\r", "9" * 400]
text_values = st.sampled_from(TOKENS) | st.text(max_size=12)
numbers = (st.integers() | st.integers(min_value=-(10**400), max_value=10**400)
           | st.floats(allow_nan=True, allow_infinity=True))
json_scalars = st.none() | st.booleans() | numbers | text_values
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), inner, max_size=3),
                           max_leaves=8)
field_names = st.sampled_from(FIELDS) | st.sampled_from(FIELDS).map(str.upper) | st.sampled_from(FIELDS).map(" {} ".format)
rows = st.dictionaries(field_names, json_values, max_size=7)
row_or_value = st.one_of(rows, rows, rows, json_values)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("labelfiles")


def check_parse(path: Path, data: bytes, **options) -> None:
    """Write `data` to `path` and read it: records that make sense and rejections that point into
    the file, or an InputError that names it. Anything else fails the test."""
    path.write_bytes(data)
    try:
        parsed = read_label_file(path, **options)
    except InputError as error:
        assert str(path) in str(error), error
        return
    lines = data.count(b"\n") + 1
    for rejection in parsed.rejections:
        assert rejection.path == str(path) and rejection.detail, rejection
        assert rejection.line is None or 1 <= rejection.line <= lines, (rejection, lines)
    for record in parsed.records:
        assert isinstance(record.label, str) and record.label.strip(), record
        assert isinstance(record.audio_path, Path) and "\x00" not in str(record.audio_path), record
        for start, end in ((record.start_s, record.end_s), (record.start_beat, record.end_beat)):
            assert (start is None) == (end is None), record
            if start is not None:
                assert math.isfinite(start) and math.isfinite(end) and start < end, record
        assert record.start_s is None or record.start_s >= 0, record
        assert 0 <= record.confidence <= 1 and (record.source is None or isinstance(record.source, str)), record


def options(folder: Path):
    return st.fixed_dictionaries({
        "format": st.sampled_from(["auto", "manifest", "events", "audacity"]),
        "audio": st.sampled_from([None, folder / "track.wav"]),
    })


# -- structured but wrong ---------------------------------------------------------------------

@SETTINGS
@given(items=st.lists(row_or_value, max_size=6), junk=st.sampled_from(["", "{", "]", "nan", "\x00", "[1,"]),
       opts=st.data())
def test_json_lines(folder, items, junk, opts):
    text = "\n".join([json.dumps(item) for item in items] + [junk])
    for suffix in (".jsonl", ".ndjson"):
        check_parse(folder / f"labels{suffix}", text.encode(), **opts.draw(options(folder)))


@SETTINGS
@given(items=st.lists(row_or_value, max_size=6), indent=st.sampled_from([None, 0, 2]), opts=st.data())
def test_json_list(folder, items, indent, opts):
    check_parse(folder / "labels.json", json.dumps(items, indent=indent).encode(), **opts.draw(options(folder)))


@SETTINGS
@given(events=st.lists(row_or_value, max_size=6) | json_values, audio=json_values, extra=rows,
       indent=st.sampled_from([None, 1]), opts=st.data())
def test_beatmap_object(folder, events, audio, extra, indent, opts):
    document = {**extra, "events": events, "audio": audio}
    check_parse(folder / "beatmap.json", json.dumps(document, indent=indent).encode(), **opts.draw(options(folder)))


@SETTINGS
@given(document=json_values, opts=st.data())
def test_any_json_document(folder, document, opts):
    check_parse(folder / "labels.json", json.dumps(document).encode(), **opts.draw(options(folder)))


@SETTINGS
@given(header=st.lists(field_names | text_values, max_size=8), body=st.lists(st.lists(text_values, max_size=9), max_size=6),
       newline=st.sampled_from(["\n", "\r\n", "\r"]), opts=st.data())
def test_csv(folder, header, body, newline, opts):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=newline)
    for cells in [header, *body]:
        writer.writerow(cells)
    chosen = opts.draw(options(folder))
    if chosen["format"] == "audacity":
        chosen["format"] = "auto"
    check_parse(folder / "labels.csv", buffer.getvalue().encode(), **chosen)


number_tokens = st.sampled_from(TOKENS) | numbers.map(str)
audacity_lines = st.tuples(number_tokens, st.sampled_from(["\t", " ", "", "\t\t"]), number_tokens,
                           st.sampled_from(["\t", " ", ""]), text_values).map("".join)


@SETTINGS
@given(lines=st.lists(audacity_lines | st.sampled_from(["\\ 0.5 0.6", "", "   "]) | st.text(max_size=20), max_size=8),
       newline=st.sampled_from(["\n", "\r\n"]), opts=st.data())
def test_audacity_track(folder, lines, newline, opts):
    chosen = opts.draw(options(folder))
    chosen["format"] = "audacity" if chosen["format"] != "auto" else "auto"
    check_parse(folder / "track.txt", newline.join(lines).encode(), **chosen)


ls_audio = st.sampled_from(["/data/upload/1/0a1b2c3d-track.wav", "track.wav", "/data/local-files/?d=track.wav",
                            "https://x/y/none.wav", "?d=", "/data/upload/1/", ""]) | json_values
ls_value = st.fixed_dictionaries({}, optional={"start": json_values | numbers, "end": json_values | numbers,
                                                "labels": json_values, "choices": json_values, "channel": json_values})
ls_result = st.fixed_dictionaries({}, optional={"type": st.sampled_from(["labels", "choices", "textarea"]) | json_values,
                                                 "value": ls_value | json_values, "from_name": json_values})
ls_annotation = st.fixed_dictionaries({}, optional={"result": st.lists(ls_result, max_size=3) | json_values,
                                                     "was_cancelled": json_scalars})
ls_task = st.fixed_dictionaries({"data": st.fixed_dictionaries({}, optional={"audio": ls_audio}) | rows},
                                optional={"id": json_values, "annotations": st.lists(ls_annotation, max_size=2) | json_values})
ls_min_row = st.fixed_dictionaries({"annotation_id": json_values}, optional={
    "audio": ls_audio, "id": json_values, "label": st.lists(ls_value | json_values, max_size=3) | json_values,
    "choice": json_values})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks=st.lists(ls_task | ls_min_row | row_or_value, max_size=4), indent=st.sampled_from([None, 1]),
       forced=st.booleans())
def test_label_studio_export(folder, tasks, indent, forced):
    (folder / "track.wav").write_bytes(b"")
    check_parse(folder / "export.json", json.dumps(tasks, indent=indent).encode(),
                format="label-studio" if forced else "auto", root=folder)


# -- raw text and bytes -----------------------------------------------------------------------

@settings(max_examples=600, deadline=None)
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
       name=st.sampled_from(["labels.csv", "labels.json", "labels.jsonl", "track.txt", "labels.tsv", "labels"]),
       opts=st.data())
def test_raw_bytes(folder, data, name, opts):
    check_parse(folder / name, data, **opts.draw(options(folder)))


HOSTILE_FILES = {  # what generated inputs rarely reach: deep nesting, huge numbers, odd paths
    "deep list": ("labels.json", b"[" * 100_000),
    "deep events": ("labels.json", b'{"events": ' + b"[" * 100_000),
    "deep line": ("labels.jsonl", b"[" * 100_000 + b"\n"),
    "5000-digit number": ("labels.json", b'[{"path": "x.wav", "label": "kick", "start_s": ' + b"9" * 5000
                          + b', "end_s": 2}]'),
    "400-digit number": ("labels.json", b'[{"path": "x.wav", "label": "kick", "start_s": 1' + b"0" * 400
                         + b', "end_s": 2}]'),
    "400-digit label": ("labels.jsonl", b'{"time": 0.5, "label": 1' + b"0" * 400 + b"}"),
    "unknown user's home": ("labels.csv", b"path,label\n~nobody_at_all/x.wav,kick\n"),
    "beatmap audio in an unknown home": ("labels.json", b'{"events": [{"time": 1, "label": "kick"}], '
                                         b'"audio": "~nobody_at_all/x.wav"}'),
    "NUL in a CSV path": ("labels.csv", b"path,label\nx\x00.wav,kick\n"),
    "NUL in a JSON path": ("labels.jsonl", b'{"path": "a\\u0000b.wav", "label": "kick"}'),
}


@pytest.mark.parametrize("name, data", HOSTILE_FILES.values(), ids=HOSTILE_FILES)
def test_hostile_label_files(folder, name, data):
    check_parse(folder / name, data)


# -- taxonomies -------------------------------------------------------------------------------

BARE_KEY = set(string.ascii_letters + string.digits + "_-")


def toml_key(key: str) -> str:
    return key if key and set(key) <= BARE_KEY else json.dumps(key)


def toml_value(value) -> str:
    """`value` as TOML (inline tables and arrays), for generating taxonomy files."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


toml_scalars = (st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
                | st.floats(allow_nan=True, allow_infinity=True) | text_values
                | st.sampled_from(["#ff0000", "#12abEF", "red", "#fff"]))
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
label_names = st.sampled_from(["kick", "snare", "hat", "Kick", "bad name", "_x", "9", ""]) | st.text(max_size=6)
label_entries = st.fixed_dictionaries({}, optional={
    "colour": toml_values, "color": toml_values, "min_count": toml_values, "aliases": toml_values,
    "description": toml_values}) | toml_values
taxonomy_documents = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["drums", "my_set", "Bad Name", ""]) | toml_values,
    "description": toml_values,
    "min_count": toml_values,
    "window_s": toml_values,
    "labels": st.dictionaries(label_names, label_entries, max_size=4) | toml_values,
})


def check_taxonomy(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        taxonomy = load_taxonomy_file(path)
    except InputError as error:
        assert str(path) in str(error), error
        return
    assert len(taxonomy.labels) >= 2
    assert taxonomy.window_s is None or (math.isfinite(taxonomy.window_s) and taxonomy.window_s > 0), taxonomy
    for spec in taxonomy.labels:
        assert type(spec.min_count) is int and spec.min_count >= 1, spec
        assert isinstance(spec.description, str) and all(isinstance(a, str) for a in spec.aliases), spec


@settings(max_examples=800, deadline=None)
@given(document=taxonomy_documents)
@example(document={"name": "drums", "labels": {"kick": "x", "snare": {}}})
@example(document={"name": "drums", "window_s": math.nan, "labels": {"kick": {}, "snare": {}}})
@example(document={"name": "drums", "labels": {"kick": {"aliases": ["bd"]}, "snare": {"aliases": ["BD"]}}})
def test_taxonomy_documents(folder, document):
    text = "\n".join(f"{toml_key(key)} = {toml_value(value)}" for key, value in document.items())
    check_taxonomy(folder / "generated.toml", text.encode())


@settings(max_examples=600, deadline=None)
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@example(data=b"a = " + b"[" * 5_000)
@example(data=b"name = \"drums\"\n\xff\xfe")
def test_taxonomy_raw_bytes(folder, data):
    check_taxonomy(folder / "raw.toml", data)
