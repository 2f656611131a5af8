"""A saved model's files: their SHA-256 hashes, and reading them so that nothing damaged is parsed.

At registration the registry records, for each file of a model folder, its size and SHA-256
(`file_hashes`). Loading reads each file once through `ModelFiles`: only regular files are opened
(a FIFO or a device never blocks or floods a load), and a file whose size or hash differs from the
recorded one is refused before any parser (LightGBM, safetensors, JSON) sees its bytes. The kinds
then check what they parsed (types, shapes, class counts) and report a problem through `damaged`,
so every bad model folder ends as one `ModelFilesDamaged` naming the file.

Folders registered before hashes were kept load without the hash check; their files still go
through the same reading and checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from engine.errors import WorkbenchError

MAX_FILE_BYTES = 1 << 30  # no model file of any kind comes near this; a larger one is not read


class ModelFilesDamaged(WorkbenchError):
    """A model file is missing, not a regular file, changed since registration, or not what its
    kind writes."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"model files damaged: {path} ({problem})")
        self.path, self.problem = Path(path), problem


def _read_regular(path: Path, size: int | None = None) -> bytes:
    """The bytes of a regular file of `size` bytes (when given; else at most MAX_FILE_BYTES); raises
    ModelFilesDamaged otherwise. Opened non-blocking and checked before reading, so a FIFO or device
    is never read, nor a file of the wrong size."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ModelFilesDamaged(path, "missing") from None
    except OSError as error:
        raise ModelFilesDamaged(path, f"cannot be opened: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ModelFilesDamaged(path, "not a regular file")
        if size is not None and info.st_size != size:
            raise ModelFilesDamaged(path, f"{info.st_size} bytes where {size} were registered")
        if info.st_size > MAX_FILE_BYTES:
            raise ModelFilesDamaged(path, f"{info.st_size} bytes, more than any model file ({MAX_FILE_BYTES})")
        try:
            return handle.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise ModelFilesDamaged(path, f"cannot be read: {error.strerror}") from None


def _hash_entry(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def file_hashes(folder: Path) -> dict[str, dict[str, Any]]:
    """{relative path: {"sha256", "bytes"}} for every file under `folder` (what registration records)."""
    folder = Path(folder)
    return {path.relative_to(folder).as_posix(): _hash_entry(_read_regular(path))
            for path in sorted(folder.rglob("*")) if not path.is_dir()}


class ModelFiles:
    """The files of one model folder, each read (and, with `hashes`, checked) when first asked for."""

    def __init__(self, folder: Path, hashes: dict[str, dict[str, Any]] | None = None) -> None:
        self.folder = Path(folder)
        self.hashes = hashes

    def damaged(self, name: str, problem: str) -> ModelFilesDamaged:
        """The error for a problem found in one of the folder's files (raise it)."""
        return ModelFilesDamaged(self.folder / name, problem)

    def read(self, name: str) -> bytes:
        """A file's bytes; with recorded hashes, only when its size and SHA-256 are the recorded ones."""
        path = self.folder / name
        if self.hashes is None:
            return _read_regular(path)
        recorded = self.hashes.get(name)
        if recorded is None:
            raise self.damaged(name, "not among the files recorded at registration")
        data = _read_regular(path, recorded["bytes"])
        if hashlib.sha256(data).hexdigest() != recorded["sha256"]:
            raise self.damaged(name, "SHA-256 differs from the one recorded at registration")
        return data

    def text(self, name: str) -> str:
        try:
            return self.read(name).decode("utf-8")
        except UnicodeDecodeError as error:
            raise self.damaged(name, f"not UTF-8 text ({error.reason} at byte {error.start})") from None

    def json(self, name: str, required: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
        """A JSON object holding at least `required` keys, each of the given type(s)."""
        try:
            document = json.loads(self.text(name))
        except json.JSONDecodeError as error:
            raise self.damaged(name, f"not valid JSON ({error})") from None
        if not isinstance(document, dict):
            raise self.damaged(name, "not a JSON object")
        for key, kind in required.items():
            value = document.get(key)
            if not isinstance(value, kind) or isinstance(value, bool) and bool not in _types(kind):
                raise self.damaged(name, f"{key!r} is missing or not {_type_names(kind)}")
        return document

    def verify_all(self) -> None:
        """Check every recorded file (raises ModelFilesDamaged at the first that differs)."""
        for name in self.hashes or {}:
            self.read(name)


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _type_names(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", int: "an integer", str: "a string", float: "a number"}
    return " or ".join(names.get(each, each.__name__) for each in _types(kind))
