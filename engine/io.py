"""Files on disk: atomic writes (a temp file in the target's folder, then a rename over the target),
and JSON documents written that way and read back with an error that names the file.

The temp file is created the way `open(path, "w")` creates a file, so the result has the mode a
plain write would give: a new file gets 0666 less the umask (and any default ACL of the folder),
an existing file keeps its mode."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import InputError


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary_path)`, then move the result onto `path`; on any failure the target is
    untouched and the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = create_beside(path)
    try:
        write(temporary)
        if path.exists():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def create_beside(path: Path, *, folder: bool = False) -> Path:
    """A new empty file (or folder) with a fresh hidden name in `path`'s folder, created with the
    mode `open(..., "w")` (or `mkdir`) gives, for a write that is then renamed onto `path`."""
    path = Path(path)
    while True:
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            if folder:
                candidate.mkdir()
            else:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate


def write_folder_atomically(out: Path, fill: Callable[[Path], None]) -> Path:
    """Call `fill(staging)` on a fresh folder beside `out`, then swap it into place (an existing `out`
    is replaced); on any failure `out` is untouched and the staging folder is removed."""
    out = Path(out).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = create_beside(out, folder=True)
    try:
        fill(staging)
        if out.exists():
            previous = out.with_name(f".{out.name}.old-{secrets.token_hex(4)}")
            out.rename(previous)
            staging.rename(out)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def write_bytes_atomically(path: Path, data: bytes) -> Path:
    return write_atomically(path, lambda temporary: temporary.write_bytes(data))


def write_json_atomically(path: Path, document: Any, *, default: Callable[[Any], Any] | None = None) -> Path:
    """`document` as indented JSON at `path` (a `~` is expanded); `default` converts what JSON
    cannot hold, as in `json.dumps`."""
    text = json.dumps(document, indent=2, default=default) + "\n"
    return write_bytes_atomically(Path(path).expanduser(), text.encode())


def read_json_file(path: Path, what: str) -> Any:
    """The JSON document at `path`; `what` names it in errors ("gate report", "weights file")."""
    path = Path(path).expanduser()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not a readable {what} ({error})") from None


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks (memory does not grow with its length)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_small_file(path: Path, what: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (a FIFO or device is never read); InputError
    naming the file otherwise. `what` names the file's role in errors: "taxonomy", "the model's settings"."""
    try:
        if not path.is_file():
            raise InputError(f"{path}: not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise InputError(f"{path}: cannot read {what} ({error.strerror})") from error
    if len(data) > max_bytes:
        raise InputError(f"{path}: too large for {what} (over {max_bytes // 1024} KiB)")
    return data
