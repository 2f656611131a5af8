"""Reading a MIDI drum track as drum-hit labels for its audio.

Every note-on of the percussion channel (channel 10, `channel=9` as mido counts) becomes a hit of
`hit_length_s` seconds at its onset, labelled through the General MIDI percussion map (GM_DRUM_MAP)
or a per-note override file. Onsets are in seconds through every tempo change of the file (mido
applies them), moved by `offset_s` (the audio's time of the MIDI file's start).

An override file maps note numbers to labels, or to "ignore" (also an empty label or null):
a JSON object (`{"37": "snare", "54": "ignore"}`) or a CSV with a `note,label` header.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from pathlib import Path

import mido

from engine.concepts import LabelRecord, Reason
from engine.errors import InputError
from engine.io import read_small_file
from engine.library.labelfiles import ParsedLabels, _BadRow, _hit_end, _json_value, _LabelFile, _NotJson

MIDI_EXTENSIONS = (".mid", ".midi")
PERCUSSION_CHANNEL = 9  # MIDI channel 10, counted from 0
MAX_MIDI_BYTES = 16 * 1024 * 1024
MAX_NOTE_MAP_BYTES = 1024 * 1024
IGNORE = "ignore"

# General MIDI level 1 percussion key map, to the labels of the drums taxonomy.
GM_DRUM_MAP: dict[int, str] = {
    35: "kick", 36: "kick",  # acoustic bass drum, bass drum 1
    38: "snare", 40: "snare",  # acoustic snare, electric snare
    39: "clap",  # hand clap
    42: "hihat_closed", 44: "hihat_closed",  # closed hi-hat, pedal hi-hat
    46: "hihat_open",
    41: "tom", 43: "tom", 45: "tom", 47: "tom", 48: "tom", 50: "tom",  # low floor … high tom
    49: "crash", 57: "crash",  # crash cymbal 1 and 2
    51: "ride", 59: "ride",  # ride cymbal 1 and 2
}


def is_midi_file(path: Path) -> bool:
    return Path(path).suffix.lower() in MIDI_EXTENSIONS


def read_note_map(path: Path) -> dict[int, str | None]:
    """An override file: note number → label, or None for a note to ignore. InputError naming the
    file and line of a bad entry."""
    path = Path(path).expanduser()
    try:
        text = read_small_file(path, "note map", MAX_NOTE_MAP_BYTES).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: note map is not UTF-8 text (bad byte at offset {error.start})") from None
    if path.suffix.lower() == ".json":
        try:
            document = _json_value(text)
        except _NotJson as error:
            raise InputError(f"{path}:{error.line or 1}: not valid JSON: {error}") from None
        if not isinstance(document, dict):
            raise InputError(f"{path}: expected a JSON object of note → label")
        entries = [(1, note, label) for note, label in document.items()]
    elif path.suffix.lower() == ".csv":
        rows = [(number, row) for number, row in enumerate(csv.reader(io.StringIO(text)), start=1)
                if any(cell.strip() for cell in row)]
        header = [cell.strip().lower() for cell in rows[0][1]] if rows else []
        if header[:2] != ["note", "label"]:
            raise InputError(f"{path}:1: expected a header row 'note,label'")
        entries = [(number, row[0], row[1] if len(row) > 1 else "") for number, row in rows[1:]]
    else:
        raise InputError(f"{path}: a note map is a .json or .csv file")
    mapping: dict[int, str | None] = {}
    for line, note, label in entries:
        where = f"{path}:{line}" if path.suffix.lower() == ".csv" else f"{path}"
        try:
            number = int(str(note).strip())
        except ValueError:
            raise InputError(f"{where}: note {note!r} is not a MIDI note number") from None
        if not 0 <= number <= 127:
            raise InputError(f"{where}: note {number} is outside 0–127")
        if label is not None and not isinstance(label, str):
            raise InputError(f"{where}: the label of note {number} must be text or null")
        label = (label or "").strip()
        mapping[number] = None if label.lower() in ("", IGNORE) else label
    return mapping


def read_midi_file(path: Path, *, audio: Path | None = None, offset_s: float = 0.0, hit_length_s: float = 0.1,
                   note_map: dict[int, str | None] | None = None) -> ParsedLabels:
    """The drum hits of a MIDI file as records for `audio` (default: the sibling audio file of the
    same stem). `note_map` overrides GM_DRUM_MAP note by note. A note the map does not name, a hit
    before the audio starts and a file mido cannot read are rejections."""
    path = Path(path)
    if not math.isfinite(offset_s):
        raise InputError(f"offset must be a finite number of seconds, got {offset_s!r}")
    if not (math.isfinite(hit_length_s) and hit_length_s > 0):
        raise InputError(f"hit length must be a positive number of seconds, got {hit_length_s!r}")
    label_file = _LabelFile(path, Path(audio) if audio is not None else None, hit_length_s)
    mapping: dict[int, str | None] = {**GM_DRUM_MAP, **(note_map or {})}
    try:
        onsets = _percussion_onsets(read_small_file(path, "MIDI file", MAX_MIDI_BYTES))
    except _BadRow as bad:
        label_file.reject(str(bad), reason=Reason.CORRUPT)
        return label_file.result("midi")
    if not onsets.notes:
        label_file.reject(f"no notes on channel 10 (percussion); {onsets.other_channels} notes on other channels",
                          reason=Reason.EMPTY)
        return label_file.result("midi")
    target = label_file.default_audio()
    if target is None:
        label_file.reject_missing_audio("MIDI file has")
        return label_file.result("midi")
    unmapped: Counter[int] = Counter()
    first_unmapped: dict[int, float] = {}
    too_early = []
    for time, note in onsets.notes:
        if note not in mapping:
            unmapped[note] += 1
            first_unmapped.setdefault(note, time)
            continue
        label = mapping[note]
        if label is None:
            continue
        start = time + offset_s
        if start < 0:
            too_early.append(time)
            continue
        where = f"{path.name}: note {note} at {time:.3f} s"
        try:
            label_file.records.append(LabelRecord(audio_path=target, label=label, start_s=start,
                                                  end_s=_hit_end(start, hit_length_s), where=where))
        except _BadRow as bad:
            label_file.reject(f"note {note} at {time:.3f} s: {bad}")
    for note, count in sorted(unmapped.items()):
        label_file.reject(f"note {note} ({count} hits, first at {first_unmapped[note]:.3f} s) is not in the "
                          "General MIDI drum map; name it in a note map (--note-map) or ignore it there",
                          reason=Reason.UNKNOWN_LABEL)
    if too_early:
        label_file.reject(f"{len(too_early)} hits fall before the audio starts with offset {offset_s:g} s "
                          f"(the first at {min(too_early):.3f} s)", reason=Reason.OUT_OF_RANGE)
    return label_file.result("midi")


class _Onsets:
    def __init__(self) -> None:
        self.notes: list[tuple[float, int]] = []  # (seconds from the file's start, note number)
        self.other_channels = 0


def _percussion_onsets(data: bytes) -> _Onsets:
    """The note-ons (velocity above 0) of the percussion channel, in seconds through the file's tempo map."""
    onsets = _Onsets()
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
        time = 0.0
        for message in midi:  # delta times in seconds, tempo changes applied
            time += message.time
            if message.type == "note_on" and message.velocity > 0:
                if message.channel == PERCUSSION_CHANNEL:
                    onsets.notes.append((time, message.note))
                else:
                    onsets.other_channels += 1
    except TypeError as error:  # a type 2 file: its tracks have no common time line
        raise _BadRow(f"not a readable MIDI file: {error}") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError) as error:
        raise _BadRow(f"not a readable MIDI file: {error or type(error).__name__}") from None
    return onsets
