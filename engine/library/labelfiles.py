"""Reading the label files users keep next to their audio.

Four formats are understood:

- a manifest: one label per row, naming its audio file (CSV with a header, JSON lines, or a
  JSON list of objects);
- an Audacity label track: `start<TAB>end<TAB>label` lines for one audio file;
- an event map: onset times with a label each (JSON lines, a JSON list, or a drum beatmap
  object with an `events` list), every event becoming a short hit segment;
- a Label Studio export of audio tasks (its JSON or JSON-MIN): `labels` regions become seconds
  ranges, `choices` whole-clip labels; each task's audio is found below a root folder.

(MIDI drum tracks are read by `engine.library.midifiles`, which builds on this module.)

Rows become LabelRecords, not yet tied to clips; every bad row becomes a Rejection with its line
number, and the good rows around it are kept.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import re
import sys
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from engine.concepts import LabelRecord, Reason, Rejection, Split
from engine.errors import InputError
from engine.library.scan import scan_folder
from engine.techniques import parse_techniques_text

# The order in which a label file's sibling audio is looked for: lossless formats first.
SIBLING_AUDIO_ORDER = (".wav", ".flac", ".aiff", ".aif", ".aifc", ".ogg", ".mp3")
AUDIO_EXTENSIONS: frozenset[str] = frozenset(SIBLING_AUDIO_ORDER)

FORMATS = ("manifest", "audacity", "events", "label-studio")
LABEL_FILE_EXTENSIONS = (".csv", ".json", ".jsonl", ".ndjson", ".txt")
JSON_LINES_EXTENSIONS = (".jsonl", ".ndjson")

PATH_FIELDS = ("path", "file", "audio")
LABEL_FIELDS = ("label", "class")
EVENT_LABEL_FIELDS = ("label", "component", "class", "instrument")
TIME_FIELDS = ("time", "onset", "t", "time_s")
MANIFEST_OPTIONAL_FIELDS = ("start_s", "end_s", "start_beat", "end_beat", "source", "split", "confidence",
                            "techniques")

Row = dict[str, Any]
RowItem = TypeVar("RowItem")


@dataclass
class ParsedLabels:
    records: list[LabelRecord]
    rejections: list[Rejection]
    format: str  # "manifest", "audacity", "events", "label-studio" or "midi"


def read_label_file(
    path: Path,
    *,
    audio: Path | None = None,
    hit_length_s: float = 0.1,
    format: str = "auto",
    root: Path | None = None,
) -> ParsedLabels:
    """Read one label file into records and rejections.

    `audio` names the audio file for formats that do not name it per row (Audacity tracks, event
    maps); without it the sibling audio file with the same stem is used. Point labels and events
    become hits of `hit_length_s` seconds. `format` forces "manifest", "audacity", "events" or
    "label-studio". `root` is the folder below which a Label Studio task's audio is looked for
    (default: the label file's folder).
    """
    path = Path(path)
    if format != "auto" and format not in FORMATS:
        raise InputError(f"unknown label file format {format!r}; choose one of auto, {', '.join(FORMATS)}, midi")
    if not (math.isfinite(hit_length_s) and hit_length_s > 0):
        raise InputError(f"hit length must be a positive number of seconds, got {hit_length_s!r}")
    if root is not None and not Path(root).expanduser().is_dir():
        raise InputError(f"{root}: no such folder (--root names the folder that holds the audio)")
    syntax = _syntax(path, format)
    label_file = _LabelFile(path, Path(audio) if audio is not None else None, hit_length_s,
                            Path(root).expanduser().resolve() if root is not None else path.parent)
    text = _read_text(path)
    if syntax == "audacity":
        _read_audacity(label_file, text)
        return label_file.result("audacity")
    if syntax == "csv":
        chosen = "manifest" if format == "auto" else format
        rows, beatmap_audio = _csv_rows(label_file, text, chosen), None
    else:
        read_json = _json_lines if syntax == "json lines" else _json_document
        content = read_json(label_file, text)
        rows, beatmap_audio = _object_rows(label_file, content.items), content.beatmap_audio
        chosen = format if format != "auto" else _json_format(rows, content.is_beatmap)
    if chosen == "events":
        _read_events(label_file, rows, beatmap_audio)
    elif chosen == "label-studio":
        _read_label_studio(label_file, rows)
    else:
        label_file.add_rows(rows, partial(_manifest_record, folder=path.parent))
    return label_file.result(chosen)


class _BadRow(Exception):
    """A row that cannot become a record; the message says why."""


class _NotJson(Exception):
    """A text that cannot be read as JSON; the message says why, `line` where (None: unknown)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class _LabelFile:
    """A label file being read, with the records and rejections found so far."""

    path: Path
    audio: Path | None
    hit_length_s: float
    root: Path | None = None  # where a Label Studio task's audio is looked for
    records: list[LabelRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, detail: str, line: int | None = None, reason: Reason = Reason.BAD_ROW) -> None:
        self.rejections.append(Rejection(str(self.path), reason, detail, line))

    def add_rows(
        self, rows: Iterable[tuple[int, RowItem]], to_record: Callable[[RowItem, str], LabelRecord]
    ) -> None:
        for line, row in rows:
            try:
                self.records.append(to_record(row, f"{self.path.name}:{line}"))
            except _BadRow as bad:
                self.reject(str(bad), line)

    def default_audio(self, named_in_file: Path | None = None) -> Path | None:
        return self.audio or named_in_file or _sibling_audio(self.path)

    def reject_missing_audio(self, what: str) -> None:
        tried = ", ".join(self.path.stem + extension for extension in SIBLING_AUDIO_ORDER)
        self.reject(
            f"{what} no audio file; looked next to it for {tried}; name the audio with --audio",
            reason=Reason.MISSING_FILE,
        )

    def result(self, format: str) -> ParsedLabels:
        return ParsedLabels(self.records, self.rejections, format)


# Reading the file


def _syntax(path: Path, format: str) -> str:
    """How the file's text is laid out: "audacity", "csv", "json" or "json lines"."""
    suffix = path.suffix.lower()
    if format == "audacity" or (format == "auto" and suffix == ".txt"):
        return "audacity"
    if suffix == ".json":
        return "json"
    if suffix in JSON_LINES_EXTENSIONS:
        return "json lines"
    if format == "auto" and suffix != ".csv":
        raise InputError(
            f"{path}: unsupported label file type {suffix or '(no extension)'!r}; "
            f"supported: {', '.join(LABEL_FILE_EXTENSIONS)}"
        )
    return "csv"


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise InputError(f"cannot read label file {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise InputError(f"label file {path} is not UTF-8 text (bad byte at offset {error.start})") from error


def _sibling_audio(label_path: Path) -> Path | None:
    """The audio file next to the label file with the same stem, in SIBLING_AUDIO_ORDER
    (extensions matched in any case)."""
    try:
        neighbours = sorted(label_path.parent.iterdir())
    except OSError:
        return None
    by_extension = {
        neighbour.suffix.lower(): neighbour
        for neighbour in neighbours
        if neighbour.stem == label_path.stem and neighbour.is_file()
    }
    return next((by_extension[ext] for ext in SIBLING_AUDIO_ORDER if ext in by_extension), None)


# Audacity label tracks

_AUDACITY_LINE = re.compile(r"\s*(?P<start>\S+)\s+(?P<end>\S+)(?:\s+(?P<label>.*))?")


def _read_audacity(label_file: _LabelFile, text: str) -> None:
    lines = [
        (number, content.rstrip("\r"))
        for number, content in enumerate(text.split("\n"), start=1)
        if content.strip() and not content.startswith("\\")
    ]
    if not lines:
        return
    audio = label_file.default_audio()
    if audio is None:
        label_file.reject_missing_audio("label track has")
        return
    to_record = partial(_audacity_record, audio=audio, hit_length_s=label_file.hit_length_s)
    label_file.add_rows(lines, to_record)


def _audacity_record(content: str, where: str, *, audio: Path, hit_length_s: float) -> LabelRecord:
    match = _AUDACITY_LINE.fullmatch(content)
    if match is None:
        raise _BadRow("expected start, end and label separated by tabs")
    start = _parse_number(match["start"], "start")
    end = _parse_number(match["end"], "end")
    label = (match["label"] or "").strip()
    if not label:
        raise _BadRow("no label")
    _check_not_negative(start, "start")
    if end < start:
        raise _BadRow(f"start {start:g} is after end {end:g}")
    if end == start:
        end = _hit_end(start, hit_length_s)
    return LabelRecord(audio_path=audio, label=label, start_s=start, end_s=end, where=where)


# Manifests and event maps: rows of named fields


def _csv_rows(label_file: _LabelFile, text: str, format: str) -> list[tuple[int, Row]]:
    required = (PATH_FIELDS, LABEL_FIELDS) if format == "manifest" else (TIME_FIELDS, EVENT_LABEL_FIELDS)
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    rows: list[tuple[int, Row]] = []
    next_line = 1
    try:
        for cells in reader:
            line, next_line = next_line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in cells]
                if not all(set(names) & set(header) for names in required):
                    label_file.reject(_expected_header(format, cells), line)
                    return []
            elif any(cell.strip() for cell in cells[len(header) :]):
                label_file.reject(
                    f"{len(cells)} cells but the header names {len(header)} columns "
                    "(a value containing a comma needs quotes)",
                    line,
                )
            else:
                rows.append((line, dict(zip(header, cells))))
    except csv.Error as error:
        label_file.reject(f"not valid CSV: {error}", next_line)
    return rows


def _expected_header(format: str, found: list[str]) -> str:
    if format == "manifest":
        expected = f"'path' and 'label' columns (optional: {', '.join(MANIFEST_OPTIONAL_FIELDS)})"
    else:
        expected = "'time' and 'label' columns (optional: path, source)"
    return f"expected a header row with {expected}; found: {', '.join(found)}"


@dataclass
class _JsonContent:
    """The row items of a JSON file, each with the line it starts on."""

    items: list[tuple[int, Any]] = field(default_factory=list)
    is_beatmap: bool = False
    beatmap_audio: Path | None = None


def _json_lines(label_file: _LabelFile, text: str) -> _JsonContent:
    content = _JsonContent()
    for line, line_text in enumerate(text.split("\n"), start=1):
        if not line_text.strip():
            continue
        try:
            content.items.append((line, _json_value(line_text)))
        except _NotJson as error:
            label_file.reject(f"not valid JSON: {error}", line)
    return content


def _json_document(label_file: _LabelFile, text: str) -> _JsonContent:
    """A top-level list of rows, or a beatmap object with an `events` list and maybe an `audio`."""
    if not text.strip():
        return _JsonContent()
    try:
        document = _json_value(text)
    except _NotJson as error:
        label_file.reject(f"not valid JSON: {error}", error.line or 1)
        return _JsonContent()
    document_start = _JSON_SPACE.match(text).end()
    if isinstance(document, list):
        return _JsonContent(_with_lines(text, document_start, document))
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        events_start = dict(_json_child_offsets(text, document_start))["events"]
        named_audio = _field(document, ("audio",))
        beatmap_audio = None
        if isinstance(named_audio, str):
            try:
                beatmap_audio = _resolve(named_audio, label_file.path.parent)
            except _BadRow as bad:
                label_file.reject(f"audio: {bad}", line=1)
        return _JsonContent(_with_lines(text, events_start, document["events"]), True, beatmap_audio)
    label_file.reject(
        f"expected a list of rows or an object with an 'events' list, got {_json_type(document)}", line=1
    )
    return _JsonContent()


def _json_value(text: str) -> Any:
    """`json.loads(text)`; a text that is not JSON, nests deeper than Python can read or holds a
    number longer than it reads raises _NotJson."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _NotJson(f"{error.msg} at column {error.colno}", error.lineno) from None
    except RecursionError:
        raise _NotJson("nested too deeply", None) from None
    except ValueError:  # an integer longer than sys.get_int_max_str_digits()
        raise _NotJson(f"a number has more than {sys.get_int_max_str_digits()} digits", None) from None


def _object_rows(label_file: _LabelFile, items: list[tuple[int, Any]]) -> list[tuple[int, Row]]:
    """The items that are JSON objects, with their keys in lower case; the others rejected."""
    rows = []
    for line, item in items:
        if isinstance(item, dict):
            rows.append((line, {str(key).strip().lower(): value for key, value in item.items()}))
        else:
            label_file.reject(f"expected a JSON object, got {_json_type(item)}", line)
    return rows


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_DECODER = json.JSONDecoder()


def _json_child_offsets(text: str, start: int) -> list[tuple[str | None, int]]:
    """The offsets where the values inside the JSON array or object at text[start] begin, with
    their keys (None for array items). The text must already be known to be valid JSON."""
    is_object = text[start] == "{"
    children: list[tuple[str | None, int]] = []
    position = _JSON_SPACE.match(text, start + 1).end()
    while text[position] not in "]}":
        key = None
        if is_object:
            key, position = _JSON_DECODER.raw_decode(text, position)
            position = _JSON_SPACE.match(text, position).end() + 1  # past the colon
            position = _JSON_SPACE.match(text, position).end()
        children.append((key, position))
        _, position = _JSON_DECODER.raw_decode(text, position)
        position = _JSON_SPACE.match(text, position).end()
        if text[position] == ",":
            position = _JSON_SPACE.match(text, position + 1).end()
    return children


def _with_lines(text: str, array_start: int, items: list[Any]) -> list[tuple[int, Any]]:
    """The items of the JSON array at text[array_start], each with the line it starts on."""
    newlines = [match.start() for match in re.finditer("\n", text)]
    offsets = [offset for _, offset in _json_child_offsets(text, array_start)]
    return [(bisect.bisect_left(newlines, offset) + 1, item) for offset, item in zip(offsets, items)]


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), "null" if value is None else "a number"
    )


def _json_format(rows: list[tuple[int, Row]], is_beatmap: bool) -> str:
    """Events if the file is a beatmap or its first row has a time and no range; Label Studio if
    its first row is a task (a `data` object) or a JSON-MIN row (an `annotation_id` or
    `annotator`); else manifest."""
    if is_beatmap:
        return "events"
    if not rows:
        return "manifest"
    _, first = rows[0]
    if isinstance(first.get("data"), dict) or "annotation_id" in first or "annotator" in first:
        return "label-studio"
    is_event = _field(first, TIME_FIELDS) is not None and _field(first, ("start_s", "start_beat")) is None
    return "events" if is_event else "manifest"


def _manifest_record(row: Row, where: str, *, folder: Path) -> LabelRecord:
    audio_path = _text(row, PATH_FIELDS)
    if audio_path is None:
        raise _BadRow("no audio path (expected a 'path' field)")
    label = _text(row, LABEL_FIELDS)
    if label is None:
        raise _BadRow("no label")
    start_s, end_s = _range(row, "start_s", "end_s")
    if start_s is not None:
        _check_not_negative(start_s, "start_s")
    start_beat, end_beat = _range(row, "start_beat", "end_beat")
    return LabelRecord(
        audio_path=_resolve(audio_path, folder),
        label=label,
        start_s=start_s,
        end_s=end_s,
        start_beat=start_beat,
        end_beat=end_beat,
        source=_text(row, ("source",)),
        split=_split(row),
        confidence=_confidence(row),
        where=where,
        techniques=_techniques(row),
    )


def _read_events(label_file: _LabelFile, rows: list[tuple[int, Row]], beatmap_audio: Path | None) -> None:
    default_audio = label_file.default_audio(beatmap_audio)
    if default_audio is None and any(_field(row, PATH_FIELDS) is None for _, row in rows):
        label_file.reject_missing_audio("events without their own path have")
        rows = [(line, row) for line, row in rows if _field(row, PATH_FIELDS) is not None]
    to_record = partial(
        _event_record,
        default_audio=default_audio,
        folder=label_file.path.parent,
        hit_length_s=label_file.hit_length_s,
    )
    label_file.add_rows(rows, to_record)


def _event_record(
    row: Row, where: str, *, default_audio: Path | None, folder: Path, hit_length_s: float
) -> LabelRecord:
    time = _parse_number(_field(row, TIME_FIELDS), "time")
    if time is None:
        raise _BadRow(f"no time (expected one of the fields {', '.join(TIME_FIELDS)})")
    _check_not_negative(time, "time")
    label = _text(row, EVENT_LABEL_FIELDS)
    if label is None:
        raise _BadRow("no label")
    own_path = _text(row, PATH_FIELDS)
    return LabelRecord(
        audio_path=_resolve(own_path, folder) if own_path is not None else default_audio,
        label=label,
        start_s=time,
        end_s=_hit_end(time, hit_length_s),
        source=_text(row, ("source",)),
        where=where,
        techniques=_techniques(row),
    )


# Label Studio exports

# The fields of a JSON-MIN row that say who annotated it and when, never a label.
LABEL_STUDIO_META_FIELDS = frozenset({"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time"})
# Label Studio stores an uploaded file as "<8 hex digits>-<its name>".
_UPLOAD_PREFIX = re.compile(r"[0-9a-f]{8}-(?=.)")


def _read_label_studio(label_file: _LabelFile, rows: list[tuple[int, Row]]) -> None:
    """Each task (a JSON export's task, or a JSON-MIN row) labels one audio file: its `labels`
    regions become seconds ranges, its `choices` whole-clip labels. A full export's cancelled
    annotations and its predictions are left out."""
    audio_files = _AudioByName(label_file.root or label_file.path.parent)
    for line, row in rows:
        task = f"task {row['id']}" if isinstance(row.get("id"), (int, str)) else "task"
        try:
            data = row["data"] if isinstance(row.get("data"), dict) else row
            audio = audio_files.find(_label_studio_audio(data))
            results = _label_studio_results(row)
        except _BadRow as bad:
            label_file.reject(f"{task}: {bad}", line)
            continue
        for result in results:
            try:
                label_file.records.extend(_label_studio_records(
                    result, audio, f"{label_file.path.name}:{line} ({task})", label_file.hit_length_s))
            except _BadRow as bad:
                label_file.reject(f"{task}: {bad}", line)


def _label_studio_audio(data: Row) -> str:
    """The audio a task's data names: its `audio` field, else the one field that names an audio file."""
    value = data.get("audio")
    if isinstance(value, str) and value.strip():
        return value.strip()
    named = [v for v in data.values() if isinstance(v, str) and _audio_name(v).lower().endswith(tuple(AUDIO_EXTENSIONS))]
    if len(named) == 1:
        return named[0].strip()
    raise _BadRow("no audio (expected a data.audio field naming the file)")


def _audio_name(value: str) -> str:
    """The file name at the end of a task's audio path or URL; Label Studio's local-files URLs
    (`/data/local-files/?d=folder/name.wav`) name it in their `d` parameter."""
    return urllib.parse.unquote(Path(_local_file(value) or urllib.parse.urlsplit(value).path).name)


def _local_file(value: str) -> str | None:
    """The path relative to the storage root that a local-files URL names, else None."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(value).query)
    return query["d"][0] if query.get("d") else None


class _AudioByName:
    """Finds a task's audio below the root folder: a local-files URL's path relative to the root,
    else an existing absolute path as it is, else the one file below the root with the path's file
    name, or with that name less Label Studio's upload prefix ("1a2b3c4d-kick.wav" → "kick.wav")."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_name: dict[str, list[Path]] | None = None

    def find(self, value: str) -> Path:
        relative = _local_file(value)
        if relative is not None and (self.root / relative).is_file():
            return self.root / relative
        if relative is None and "://" not in value and Path(value).is_absolute() and Path(value).is_file():
            return Path(value)
        name = _audio_name(value)
        names = [name] + ([_UPLOAD_PREFIX.sub("", name, count=1)] if _UPLOAD_PREFIX.match(name) else [])
        for candidate in names:
            found = self._files().get(candidate, [])
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise _BadRow(f"audio {value!r}: {len(found)} files named {candidate!r} below {self.root}")
        raise _BadRow(f"audio {value!r}: no file named {' or '.join(map(repr, names))} below {self.root} "
                      "(give the folder that holds the audio with --root)")

    def _files(self) -> dict[str, list[Path]]:
        if self._by_name is None:
            self._by_name = {}
            for file in scan_folder(self.root).files if self.root.is_dir() else []:
                self._by_name.setdefault(file.name, []).append(file)
        return self._by_name


def _label_studio_results(row: Row) -> list[Row]:
    """A task's results as `{"type", "value"}` objects: the results of its annotations that were not
    cancelled (a full export), or its result fields (a JSON-MIN row)."""
    if isinstance(row.get("data"), dict):
        annotations = row.get("annotations") or []
        if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
            raise _BadRow("annotations must be a list of objects")
        results = []
        for annotation in annotations:
            if annotation.get("was_cancelled"):
                continue
            result = annotation.get("result") or []
            if not isinstance(result, list):
                raise _BadRow(f"an annotation's result must be a list, got {_json_type(result)}")
            results += result
        return results
    results = []
    for name, value in row.items():
        if name in LABEL_STUDIO_META_FIELDS or name == "audio" or isinstance(value, (int, float, bool)) or value is None:
            continue
        if isinstance(value, str) and _audio_name(value).lower().endswith(tuple(AUDIO_EXTENSIONS)):
            continue  # the audio, named by another field than `audio`
        if isinstance(value, str):  # one choice
            results.append({"type": "choices", "value": {"choices": [value]}, "from_name": name})
        elif isinstance(value, dict) and "choices" in value:  # several choices
            results.append({"type": "choices", "value": value, "from_name": name})
        elif isinstance(value, list):  # regions
            results += [{"type": "labels", "value": region, "from_name": name} for region in value]
        else:
            results.append({"type": None, "value": value, "from_name": name})
    return results


def _label_studio_records(result: Any, audio: Path, where: str, hit_length_s: float) -> list[LabelRecord]:
    if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
        raise _BadRow("a result must be an object with a 'value' object")
    kind, value, name = result.get("type"), result["value"], result.get("from_name", "?")
    if kind == "choices":
        choices = _label_list(value, "choices", name)
        return [LabelRecord(audio_path=audio, label=choice, where=where) for choice in choices]
    if kind == "labels":
        labels = _label_list(value, "labels", name)
        start = _parse_number(value.get("start"), "start")
        end = _parse_number(value.get("end"), "end")
        if start is None or end is None:
            raise _BadRow(f"{name}: a region needs a start and an end in seconds")
        _check_not_negative(start, "start")
        if end < start:
            raise _BadRow(f"{name}: start {start:g} is after end {end:g}")
        end = end if end > start else _hit_end(start, hit_length_s)
        return [LabelRecord(audio_path=audio, label=label, start_s=start, end_s=end, where=where) for label in labels]
    raise _BadRow(f"{name}: result type {kind!r} is not imported (only labels and choices are)")


def _label_list(value: Row, key: str, name: str) -> list[str]:
    labels = value.get(key)
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) and label.strip() for label in labels):
        raise _BadRow(f"{name}: expected a non-empty list of label names in '{key}'")
    return [label.strip() for label in labels]


# Shared row validation


def _field(row: Row, names: Iterable[str]) -> Any:
    """The first of the named fields holding a value; blank text and null count as absent."""
    for name in names:
        value = row.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value is not None and value != "":
            return value
    return None


def _text(row: Row, names: tuple[str, ...]) -> str | None:
    value = _field(row, names)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _BadRow(f"{names[0]} must be text, got {_json_type(value)}")


def _parse_number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _BadRow(f"{name} {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _BadRow(f"{name} {value!r} is not a number") from None
    except OverflowError:  # an integer beyond the floats
        raise _BadRow(f"{name} is not a finite number ({len(str(abs(value)))} digits)") from None
    if not math.isfinite(number):
        raise _BadRow(f"{name} {value!r} is not a finite number")
    return number


def _range(row: Row, start_name: str, end_name: str) -> tuple[float, float] | tuple[None, None]:
    start = _parse_number(_field(row, (start_name,)), start_name)
    end = _parse_number(_field(row, (end_name,)), end_name)
    if start is None and end is None:
        return None, None
    if end is None:
        raise _BadRow(f"{start_name} given without {end_name}")
    if start is None:
        raise _BadRow(f"{end_name} given without {start_name}")
    if not start < end:
        raise _BadRow(f"{start_name} {start:g} is not before {end_name} {end:g}")
    return start, end


def _check_not_negative(value: float, name: str) -> None:
    if value < 0:
        raise _BadRow(f"{name} {value:g} is negative")


def _hit_end(start: float, hit_length_s: float) -> float:
    """Where a hit that starts at `start` ends; a start so large that the hit's length is lost in
    rounding makes a bad row."""
    end = start + hit_length_s
    if not (math.isfinite(end) and end > start):
        raise _BadRow(f"time {start:g} is too large to hold a {hit_length_s:g} s hit")
    return end


def _techniques(row: Row) -> tuple[str, ...]:
    """A row's technique tags: a JSON list of names, or text separated by ';' (or ',' or '|')."""
    value = _field(row, ("techniques", "technique"))
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(item.strip() for item in value if item.strip())
    if isinstance(value, str):
        return tuple(parse_techniques_text(value))
    raise _BadRow(f"techniques must be text or a list of names, got {_json_type(value)}")


def _confidence(row: Row) -> float:
    confidence = _parse_number(_field(row, ("confidence",)), "confidence")
    if confidence is None:
        return 1.0
    if not 0 <= confidence <= 1:
        raise _BadRow(f"confidence {confidence:g} is outside 0–1")
    return confidence


def _split(row: Row) -> Split | None:
    split = _text(row, ("split",))
    if split is None:
        return None
    try:
        return Split(split.lower())
    except ValueError:
        raise _BadRow(f"split {split!r} is not one of {', '.join(Split)}") from None


def _resolve(audio_path: str, folder: Path) -> Path:
    if "\x00" in audio_path:
        raise _BadRow(f"path {audio_path!r} holds a NUL character, which no file name can")
    try:
        path = Path(audio_path).expanduser()
    except RuntimeError:  # "~someone" whose home folder is unknown
        raise _BadRow(f"path {audio_path!r}: no home folder for {audio_path.split('/')[0]!r}") from None
    return path if path.is_absolute() else folder / path
