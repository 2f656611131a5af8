"""Hugging Face datasets read from a local folder (nothing is downloaded).

Two layouts, as the Hugging Face docs describe them:

- AudioFolder: audio files, labelled by a `metadata.csv` or `metadata.jsonl` beside or above them
  (a `file_name` column with the path relative to the metadata file, and a label column), or by
  the class folder each file sits in; split folders (`train/`, `test/`, …) name the split.
- Parquet shards (`data/train-00000-of-00001.parquet`, `<config>/test/*.parquet`): an audio column
  of `{"bytes", "path"}` structs and a label column, a string or a ClassLabel index whose names
  come from the shard's `huggingface` schema metadata or from the card.

The dataset card (`README.md`, YAML front matter) gives the licence (`license:`), which must be
in the allowlist (CC0 and the CC-BY family unless more are allowed), and optionally `configs:`
with `data_files` patterns per split. Every row or file that cannot be used becomes a Rejection
naming the file and its line or row.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.audio.decode import AUDIO_EXTENSIONS
from engine.concepts import Reason, Rejection, Split
from engine.errors import InputError
from engine.io import read_small_file, write_bytes_atomically

CARD = "README.md"
METADATA_FILES = ("metadata.csv", "metadata.jsonl")
FILE_NAME = "file_name"
DEFAULT_CONFIG = "default"
UNKNOWN_LICENCE = "unknown"
# The splits Hugging Face recognises by folder or file name, and the workbench split each one is.
SPLIT_NAMES = {"train": Split.TRAIN, "training": Split.TRAIN, "validation": Split.VAL, "valid": Split.VAL,
               "val": Split.VAL, "dev": Split.VAL, "test": Split.TEST, "testing": Split.TEST, "eval": Split.TEST}
# The default allowlist: CC0 and the CC-BY family (any version), never NC, ND or SA variants.
ALLOWED_BY_DEFAULT = re.compile(r"cc0-1\.0|cc-by-\d\.\d")
ALLOWED_DESCRIBED = "cc0-1.0, cc-by-*"
MAX_CARD_BYTES = 1 << 20
MAX_METADATA_BYTES = 64 << 20
PARQUET_BATCH_ROWS = 64
MAGIC_EXTENSIONS = ((b"RIFF", ".wav"), (b"RF64", ".wav"), (b"fLaC", ".flac"), (b"OggS", ".ogg"), (b"ID3", ".mp3"),
                    (b"FORM", ".aiff"))


def is_hf_dataset(root: Path) -> bool:
    """Whether a folder is laid out as a Hugging Face dataset: a card with YAML front matter, an
    AudioFolder metadata file, or parquet shards."""
    if not root.is_dir():
        return False
    card = root / CARD
    if card.is_file():
        with open(card, "rb") as handle:
            if handle.read(4).startswith(b"---"):
                return True
    for _, folders, files in os.walk(root):  # one walk, ended at the first sign
        folders[:] = [name for name in folders if not name.startswith(".")]
        if any(name in METADATA_FILES or name.endswith(".parquet") for name in files):
            return True
    return False


# -- the card ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Card:
    path: Path
    licences: list[str]  # lower-case ids; [UNKNOWN_LICENCE] when the card names none
    configs: list[dict]  # [{"config_name", "data_files": [{"split", "path"}]}]
    class_names: dict[str, list[str]]  # a ClassLabel feature's names, by feature (column) name

    @property
    def licence(self) -> str:
        return ",".join(self.licences)


def _front_matter(path: Path) -> dict:
    text = read_small_file(path, "dataset card", MAX_CARD_BYTES).decode("utf-8", errors="replace")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    end = next((n for n, line in enumerate(lines[1:], start=1) if line.strip() in ("---", "...")), None)
    if end is None:
        raise InputError(f"{path}: the YAML front matter opened on line 1 is never closed with '---'")
    import yaml

    try:
        document = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 2}: " if mark is not None else ""
        raise InputError(f"{path}: {where}the YAML front matter is not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(document, dict):
        raise InputError(f"{path}: the YAML front matter is not a mapping of keys")
    return document


def _class_names(info) -> dict[str, list[str]]:
    """ClassLabel names per feature from a card's `dataset_info` (a mapping, or a list per config)."""
    names: dict[str, list[str]] = {}
    for each in info if isinstance(info, list) else [info]:
        features = each.get("features") if isinstance(each, dict) else None
        for feature in features if isinstance(features, list) else []:
            dtype = feature.get("dtype") if isinstance(feature, dict) else None
            labels = dtype.get("class_label", {}).get("names") if isinstance(dtype, dict) else None
            if isinstance(labels, dict):
                names[str(feature.get("name"))] = [str(labels[k]) for k in sorted(labels, key=lambda k: int(k))]
            elif isinstance(labels, list):
                names[str(feature.get("name"))] = [str(label) for label in labels]
    return names


def read_card(root: Path) -> Card:
    path = root / CARD
    document = _front_matter(path) if path.is_file() else {}
    licence = document.get("license")
    licences = [licence] if isinstance(licence, str) else licence if isinstance(licence, list) else []
    licences = [str(item).strip().lower() for item in licences if str(item).strip()] or [UNKNOWN_LICENCE]
    configs = document.get("configs") if isinstance(document.get("configs"), list) else []
    return Card(path, licences, [c for c in configs if isinstance(c, dict)], _class_names(document.get("dataset_info")))


def check_licence(card: Card, allowed: Iterable[str] = ()) -> None:
    """InputError unless every licence the card declares is allowed (by default or by `allowed`)."""
    extra = {item.strip().lower() for item in allowed}
    refused = [licence for licence in card.licences
               if licence not in extra and not ALLOWED_BY_DEFAULT.fullmatch(licence)]
    if refused:
        said = "declares no licence" if refused == [UNKNOWN_LICENCE] else f"declares licence {', '.join(refused)}"
        raise InputError(f"{card.path}: the dataset {said}, which is not allowed (allowed: {ALLOWED_DESCRIBED}"
                         f"{''.join(', ' + e for e in sorted(extra))}); nothing imported. If its terms suit you, "
                         f"pass --allow-license {refused[0]}")


# -- where a file sits: config and split ------------------------------------------------------

def _split_of(relative: Path) -> str | None:
    """The split a file's folders or (for shards) name says: train/…, data/test-00000-of-00002.parquet."""
    for part in relative.parts[:-1]:
        if part.lower() in SPLIT_NAMES:
            return part.lower()
    stem = relative.name.split("-")[0].split(".")[0].lower()
    return stem if stem in SPLIT_NAMES else None


def _config_of(relative: Path) -> str:
    """A config's name from a path: a parquet shard's first folder unless that is 'data' or a split
    (`CONFIG/test/….parquet`, as the Hub's parquet conversion writes them); else 'default' (an
    AudioFolder's folders are splits and classes, never configs)."""
    first = relative.parts[0] if len(relative.parts) > 1 and relative.suffix == ".parquet" else None
    return first if first and first != "data" and first.lower() not in SPLIT_NAMES else DEFAULT_CONFIG


def placement(root: Path, card: Card, path: Path) -> tuple[str, str | None]:
    """(config, split) of a file: from the card's `configs` data_files patterns when one matches, else
    from its folders and name."""
    relative = path.relative_to(root)
    for config in card.configs:
        files = config.get("data_files")
        entries = files if isinstance(files, list) else [{"split": "train", "path": files}] if files else []
        for entry in entries:
            patterns = entry.get("path") if isinstance(entry, dict) else entry
            for pattern in patterns if isinstance(patterns, list) else [patterns]:
                if isinstance(pattern, str) and fnmatch.fnmatch(relative.as_posix(), pattern):
                    split = entry.get("split", "train") if isinstance(entry, dict) else "train"
                    return str(config.get("config_name", DEFAULT_CONFIG)), str(split)
    return _config_of(relative), _split_of(relative)


# -- entries: one audio file each, with its label and where it came from -----------------------

@dataclass(frozen=True)
class Entry:
    path: str  # the audio file on disk (for a parquet row, the file its bytes were written to)
    label: str | None
    config: str
    split: str | None
    origin: str  # "train/metadata.csv line 3", "data/train-00000-of-00001.parquet row 7", "train/dog/a.wav"


@dataclass
class DatasetRead:
    entries: list[Entry] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _metadata_rows(path: Path) -> Iterable[tuple[int, dict]]:
    """(line, row) of a metadata.csv or metadata.jsonl; InputError naming the file when unreadable."""
    text = read_small_file(path, "dataset metadata", MAX_METADATA_BYTES).decode("utf-8-sig", errors="replace")
    if path.suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or FILE_NAME not in reader.fieldnames:
            raise InputError(f"{path}: line 1: no {FILE_NAME!r} column (columns: {', '.join(reader.fieldnames or [])})")
        for row in reader:
            yield reader.line_num, row
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            row = {"__error__": f"not valid JSON ({error.msg})"}
        yield number, row if isinstance(row, dict) else {"__error__": "not a JSON object"}


def _label_text(value) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def read_audiofolder(root: Path, card: Card, audio_files: list[Path], label_column: str) -> DatasetRead:
    """Entries for the audio files below `root`: labelled by the metadata file that lists them, else by
    their class folder (a folder that is neither the root nor a split folder)."""
    read = DatasetRead()
    listed: dict[Path, tuple[str | None, str]] = {}
    for metadata in sorted(p for name in METADATA_FILES for p in root.rglob(name)):
        where = metadata.relative_to(root).as_posix()
        try:
            rows = list(_metadata_rows(metadata))
        except InputError as error:
            read.rejections.append(Rejection(str(metadata), Reason.UNREADABLE, str(error).split(": ", 1)[-1]))
            continue
        for line, row in rows:
            problem = row.get("__error__")
            name = row.get(FILE_NAME)
            if problem is None and not isinstance(name, str) or problem is None and not name.strip():
                problem = f"no {FILE_NAME}"
            if problem is None:
                target = (metadata.parent / name.strip()).resolve()
                if not target.is_relative_to(root):
                    problem = f"{FILE_NAME} {name!r} points outside the dataset folder"
                elif not target.is_file():
                    problem = f"{FILE_NAME} {name!r}: no such file"
            if problem is not None:
                read.rejections.append(Rejection(str(metadata), Reason.BAD_ROW, problem, line=line))
                continue
            listed[target] = (_label_text(row.get(label_column)), f"{where} line {line}")
    for path in audio_files:
        relative = path.relative_to(root)
        config, split = placement(root, card, path)
        if path.resolve() in listed:
            label, origin = listed[path.resolve()]
        else:
            folder = relative.parts[-2] if len(relative.parts) > 1 else None
            label = folder if folder and folder.lower() not in SPLIT_NAMES else None
            origin = relative.as_posix()
        read.entries.append(Entry(str(path), label, config, split, origin))
    return read


def _extension(data: bytes, declared: str | None) -> str:
    suffix = Path(declared or "").suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        return suffix
    return next((ext for magic, ext in MAGIC_EXTENSIONS if data.startswith(magic)), ".audio")


def _shard_class_names(schema, label_column: str) -> list[str] | None:
    """A ClassLabel's names from a shard's `huggingface` schema metadata (what `datasets` writes)."""
    raw = (schema.metadata or {}).get(b"huggingface")
    try:
        feature = json.loads(raw)["info"]["features"][label_column] if raw else None
    except (ValueError, KeyError, TypeError):
        return None
    names = feature.get("names") if isinstance(feature, dict) else None
    return [str(n) for n in names] if isinstance(names, list) else None


def read_parquet(root: Path, card: Card, shards: list[Path], clips_dir: Path, *, audio_column: str,
                 label_column: str) -> DatasetRead:
    """Entries for every row of the shards: its audio bytes written (atomically, named by their
    SHA-256) into `clips_dir`, its label read as text or through the ClassLabel names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    read = DatasetRead()
    for shard in shards:
        where = shard.relative_to(root).as_posix()
        try:
            handle = pq.ParquetFile(shard)
        except (pa.ArrowException, OSError) as error:
            read.rejections.append(Rejection(str(shard), Reason.UNREADABLE, f"not a readable parquet file ({error})"))
            continue
        schema = handle.schema_arrow
        if audio_column not in schema.names:
            read.rejections.append(Rejection(str(shard), Reason.UNREADABLE, f"no {audio_column!r} column "
                                                                             f"(columns: {', '.join(schema.names)})"))
            continue
        columns = [audio_column] + ([label_column] if label_column in schema.names else [])
        names = _shard_class_names(schema, label_column) or card.class_names.get(label_column)
        config, split = placement(root, card, shard)
        row = 0
        try:
            for batch in handle.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
                for record in batch.to_pylist():
                    row += 1
                    entry = _parquet_entry(record, row, shard, where, clips_dir, audio_column, label_column, names,
                                           config, split, read)
                    if entry is not None:
                        read.entries.append(entry)
        except (pa.ArrowException, OSError) as error:
            read.rejections.append(Rejection(str(shard), Reason.UNREADABLE, f"row {row + 1}: cannot be read ({error})"))
    return read


def _parquet_entry(record: dict, row: int, shard: Path, where: str, clips_dir: Path, audio_column: str,
                   label_column: str, names: list[str] | None, config: str, split: str | None,
                   read: DatasetRead) -> Entry | None:
    def reject(problem: str) -> None:
        read.rejections.append(Rejection(str(shard), Reason.BAD_ROW, f"row {row}: {problem}"))

    audio = record.get(audio_column)
    data = audio.get("bytes") if isinstance(audio, dict) else None
    if not isinstance(data, bytes) or not data:
        reject(f"{audio_column!r} holds no audio bytes")
        return None
    label = record.get(label_column)
    if isinstance(label, bool) or label is not None and not isinstance(label, (int, str)):
        reject(f"{label_column!r} is {type(label).__name__}, not a class name or index")
        return None
    if isinstance(label, int):
        if label == -1:  # Hugging Face's "no label"
            label = None
        elif names is None:
            reject(f"{label_column!r} is the index {label}, and neither the shard nor the card names its classes")
            return None
        elif not 0 <= label < len(names):
            reject(f"{label_column!r} is {label}, outside the {len(names)} class names")
            return None
        else:
            label = names[label]
    digest = hashlib.sha256(data).hexdigest()
    target = clips_dir / digest[:2] / f"{digest}{_extension(data, audio.get('path'))}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(target, data)
    return Entry(str(target), _label_text(label), config, split, f"{where} row {row}")
