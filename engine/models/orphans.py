"""What a model folder says about itself, and where folders that cannot be registered go.

Before a training registers its model folder it writes `registration.json` into it: every field
the registry row needs, and each file's size and SHA-256. A folder whose registration.json is
there and whose files all match it is complete: a registration a kill cut short can be finished
from it alone. A folder that cannot be registered is set aside in `models/.orphans/` with a
note saying why; nothing is deleted.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from engine.io import file_sha256, write_bytes_atomically, write_json_atomically

REGISTRATION_FILE = "registration.json"
NOTE_FILE = "NOTE.txt"
ORPHANS = ".orphans"
REGISTRATION_FIELDS = ("name", "task", "kind", "feature_spec", "classes", "label_counts", "hyperparams", "metrics",
                       "dataset_fingerprint", "job_id", "meta")


def orphans_dir(workspace) -> Path:
    return workspace.models_dir / ORPHANS


def _artifact_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*")
                  if path.is_file() and path.name not in (REGISTRATION_FILE, NOTE_FILE))


def write_registration(folder: Path, fields: dict[str, Any]) -> None:
    """Record in `folder` what registering it needs (`fields`: REGISTRATION_FIELDS, the feature
    spec as a dict) and the size and SHA-256 of each of its files."""
    missing = [key for key in REGISTRATION_FIELDS if key not in fields]
    if missing:
        raise ValueError(f"a registration needs {', '.join(missing)}")
    files = {str(path.relative_to(folder)): {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
             for path in _artifact_files(folder)}
    write_json_atomically(folder / REGISTRATION_FILE, {**fields, "files": files}, default=str)


def read_registration(folder: Path) -> tuple[dict | None, str | None]:
    """(the registration fields, None) when `folder` is complete, else (None, what is wrong)."""
    path = folder / REGISTRATION_FILE
    if not path.is_file():
        return None, f"no {REGISTRATION_FILE}: nothing records what this folder holds"
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return None, f"{REGISTRATION_FILE} is unreadable ({error})"
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict) or not document["files"]:
        return None, f"{REGISTRATION_FILE} names no files"
    missing = [key for key in REGISTRATION_FIELDS if key not in document]
    if missing:
        return None, f"{REGISTRATION_FILE} lacks {', '.join(missing)}"
    for name, expected in document["files"].items():
        file = folder / name
        if not file.is_file():
            return None, f"{name} is missing"
        if not isinstance(expected, dict) or file.stat().st_size != expected.get("bytes"):
            return None, f"{name} has {file.stat().st_size} bytes, not the {expected.get('bytes')} recorded"
        if file_sha256(file) != expected.get("sha256"):
            return None, f"{name} changed after training (its SHA-256 differs from the one recorded)"
    return {key: document[key] for key in REGISTRATION_FIELDS}, None


def has_note(folder: Path) -> bool:
    return (folder / NOTE_FILE).is_file()


def set_aside(workspace, folder: Path, reason: str | None) -> Path:
    """Move `folder` into models/.orphans/ (as NAME-vN-TIME), with a note saying why when a
    `reason` is given (a folder set aside without one is to be registered again). Returns its
    new place."""
    home = orphans_dir(workspace)
    home.mkdir(parents=True, exist_ok=True)
    stem = "-".join(Path(folder).relative_to(workspace.models_dir).parts) + time.strftime("-%Y%m%d-%H%M%S")
    target, number = home / stem, 1
    while target.exists():
        number += 1
        target = home / f"{stem}-{number}"
    os.replace(folder, target)
    if reason is not None:
        write_note(target, f"Set aside from {folder}", reason)
    return target


def write_note(folder: Path, what: str, reason: str) -> None:
    """A NOTE.txt in a set-aside folder: what happened, when and why; it is then never registered."""
    write_bytes_atomically(folder / NOTE_FILE, (
        f"{what} on {time.strftime('%Y-%m-%d %H:%M:%S %z')}.\n{reason}\n"
        "workbench keeps it here and never registers it; delete it when you no longer need it.\n").encode())
