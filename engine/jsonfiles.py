"""JSON documents on disk: written atomically (temp file + rename), read back with an error that
names the file and says what it should have been."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.atomic import write_bytes_atomically
from engine.errors import InputError


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
