"""The process's settings: one typed object, read from a settings file and the environment.

Each setting has a key; it is read, later ones winning, from

  1. its default (below),
  2. the settings file `$XDG_CONFIG_HOME/workbench/settings.toml` (default
     `~/.config/workbench/settings.toml`), a TOML table of `key = value`, e.g. `busy_timeout = 30`,
  3. the environment variable `WORKBENCH_<KEY>`, e.g. `WORKBENCH_BUSY_TIMEOUT=30`,

and a command-line option (`--workspace`) wins over all three. A key the settings file does not know,
or a value of the wrong kind, is an `InputError` that names the file or variable and the key.

These are settings of the program on this machine. A workspace's own preferences (its default
taxonomy, say) live in its database, not here.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from engine.errors import InputError

ENV_PREFIX = "WORKBENCH_"
_REPOSITORY_DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class Settings:
    """Every setting of workbench, typed; `load_settings()` gives the ones in force."""

    workspace: Path | None = None
    """The workspace when no --workspace is given; None means `<data home>/workspace`."""
    busy_timeout: float = 15.0
    """Seconds to wait for a workspace database another process holds before giving up (≥ 0)."""
    sound: bool = True
    """Whether the label screen plays audio; off stops it even where an output device exists."""
    data: Path = _REPOSITORY_DATA
    """The folder of built-in data: `<data>/taxonomies/*.toml` are the built-in taxonomies."""
    tui_strict: bool = False
    """A failed TUI worker raises instead of showing a notification (the tests turn this on)."""
    threads: int | None = None
    """CPU threads for training (torch, LightGBM) and worker processes for extraction and import;
    None means every core this process may run on."""


@dataclass(frozen=True)
class _Kind:
    """How a setting's text (an environment variable) or TOML value (in the settings file) is read."""
    parse: Callable[[str], object]  # raises ValueError for a bad text
    toml_type: type | tuple[type, ...]
    in_environment: str  # what the variable must be, for the error
    in_file: str  # what the file's value must be, for the error


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
        raise ValueError(text)
    return lowered in {"1", "true", "yes", "on"}


def _seconds(text: str) -> float:
    seconds = float(text)
    if not 0 <= seconds < math.inf:
        raise ValueError(text)
    return seconds


def _count(text: str) -> int:
    count = int(text)
    if count < 1:
        raise ValueError(text)
    return count


def _folder(text: str) -> Path:
    if not text.strip():
        raise ValueError(text)
    return Path(text).expanduser()


_FLAG = _Kind(_flag, bool, "on or off (or 1/0, yes/no, true/false)", "true or false")
_SECONDS = _Kind(_seconds, (int, float), "a number of seconds", "a number of seconds")
_FOLDER = _Kind(_folder, str, "a folder", "a folder (a string)")
_COUNT = _Kind(_count, int, "a whole number of at least 1", "a whole number of at least 1")
_KINDS = {"workspace": _FOLDER, "busy_timeout": _SECONDS, "sound": _FLAG, "data": _FOLDER, "tui_strict": _FLAG,
          "threads": _COUNT}


def env_name(key: str) -> str:
    """The environment variable of a setting: busy_timeout → WORKBENCH_BUSY_TIMEOUT."""
    return ENV_PREFIX + key.upper()


def _from_environment(key: str, text: str) -> object:
    kind = _KINDS[key]
    try:
        return kind.parse(text)
    except ValueError:
        raise InputError(f"{env_name(key)} must be {kind.in_environment}, not {text!r}") from None


def _from_toml(path: Path, key: str, raw: object) -> object:
    kind = _KINDS[key]
    # TOML's true and false only for a flag (Python counts a bool as an int, so say it twice).
    if isinstance(raw, kind.toml_type) and isinstance(raw, bool) == (kind is _FLAG):
        if kind is _FLAG:
            return raw
        try:
            return kind.parse(str(raw))
        except ValueError:
            pass
    raise InputError(f"{path}: {key} must be {kind.in_file}, not {raw!r}")


def config_home(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def data_home(environ: Mapping[str, str] | None = None) -> Path:
    """Where workbench keeps its own files: $XDG_DATA_HOME/workbench (~/.local/share/workbench)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "workbench"


def settings_file(environ: Mapping[str, str]) -> Path:
    return config_home(environ) / "workbench" / "settings.toml"


def _from_file(path: Path) -> dict[str, object]:
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"{path}: cannot read the settings file: {error}") from None
    unknown = sorted(set(table) - set(_KINDS))
    if unknown:
        raise InputError(f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(_KINDS))})")
    return {key: _from_toml(path, key, raw) for key, raw in table.items()}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings now: defaults, then the settings file, then WORKBENCH_* variables of `environ`
    (default: this process's environment). Read afresh on each call, so a changed environment counts."""
    environ = os.environ if environ is None else environ
    values = _from_file(settings_file(environ))
    for key in _KINDS:
        text = environ.get(env_name(key))
        if text:  # an empty variable is the same as an unset one
            values[key] = _from_environment(key, text)
    return replace(Settings(), **values)


def cpu_threads(settings: Settings | None = None) -> int:
    """How many CPU threads (or worker processes) work may use: the `threads` setting, else the cores
    this process may run on (its affinity, which a container or `taskset` may narrow)."""
    chosen = (settings or load_settings()).threads
    if chosen is not None:
        return chosen
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
