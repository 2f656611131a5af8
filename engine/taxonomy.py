"""Taxonomies: the label set of a task, with colours, minimum counts and aliases.

Built-in taxonomies live in the repository's `data/taxonomies/*.toml`; a workspace may add its
own or override a built-in one in `<workspace>/taxonomies/*.toml`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError, NotFound
from engine.io import read_small_file
from engine.settings import load_settings

DEFAULT_TAXONOMY = "drums"
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def builtin_taxonomy_dir() -> Path:
    """`<data>/taxonomies`, where data is the data setting (default: the repository's data/)."""
    return load_settings().data / "taxonomies"


def normalise_label(raw: str) -> str:
    """How labels are compared: 'Hi-Hat Open' → 'hi_hat_open'."""
    return re.sub(r"[\s\-./]+", "_", raw.strip().lower()).strip("_")


@dataclass(frozen=True)
class LabelSpec:
    name: str
    colour: str
    min_count: int
    description: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Taxonomy:
    name: str
    labels: tuple[LabelSpec, ...]
    description: str = ""
    path: Path | None = None
    window_s: float | None = None  # long segments (sections) train and predict on windows this long
    _lookup: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        lookup: dict[str, str] = {}
        for spec in self.labels:
            for spelling in (spec.name, *spec.aliases):
                key = normalise_label(spelling)
                if lookup.get(key, spec.name) != spec.name:
                    raise InputError(f"taxonomy {self.name}: '{spelling}' names both {lookup[key]} and {spec.name}")
                lookup[key] = spec.name
        self._lookup.update(lookup)

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.labels]

    def resolve(self, raw: str) -> str | None:
        """The taxonomy's name for a raw label or alias, or None when it is not in the taxonomy."""
        return self._lookup.get(normalise_label(raw))

    def spec(self, name: str) -> LabelSpec:
        for spec in self.labels:
            if spec.name == name:
                return spec
        raise NotFound(f"taxonomy {self.name} has no label {name!r}")

    def min_count(self, name: str) -> int:
        return self.spec(name).min_count

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "window_s": self.window_s,
            "labels": [
                {"name": s.name, "colour": s.colour, "min_count": s.min_count,
                 "description": s.description, "aliases": list(s.aliases)}
                for s in self.labels
            ],
        }


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"{what} must be lowercase letters, digits or '_' (starting with a letter or digit), got {name!r}")
    return name


_TOP_KEYS = ("name", "description", "min_count", "window_s", "labels")
_LABEL_KEYS = ("colour", "color", "description", "aliases", "min_count")
MAX_FILE_BYTES = 1 << 20  # a taxonomy is a few kilobytes of TOML
MAX_MIN_COUNT = 1_000_000
MAX_WINDOW_S = 3600.0


def _check_keys(table: dict, known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise InputError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(known)})")


def _text(value, where: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{where} must be text, got {value!r}")
    return value


def _min_count(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MIN_COUNT:
        raise InputError(f"{where}: min_count must be a positive whole number (at most {MAX_MIN_COUNT:,}), "
                         f"got {value!r}")
    return value


def _label_spec(origin: str, label_name: str, entry, default_min: int) -> LabelSpec:
    check_name(label_name, f"{origin}: label name")
    where = f"{origin}: label {label_name}"
    if not isinstance(entry, dict):
        raise InputError(f"{where} must be a table ([labels.{label_name}] with colour, aliases, …), got {entry!r}")
    _check_keys(entry, _LABEL_KEYS, where)
    colour = entry.get("colour", entry.get("color", "#9ca3af"))
    if not isinstance(colour, str) or not _COLOUR.match(colour):
        raise InputError(f"{where}: colour must look like #12abef, got {colour!r}")
    min_count = _min_count(entry.get("min_count", default_min), where)
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and normalise_label(a) for a in aliases):
        raise InputError(f"{where}: aliases must be a list of non-empty strings, got {aliases!r}")
    description = _text(entry.get("description", ""), f"{where}: description")
    return LabelSpec(label_name, colour, min_count, description, tuple(aliases))


def parse_taxonomy(data: dict, origin: str) -> Taxonomy:
    """Build a taxonomy from its TOML table; `origin` names the file in error messages. Every value is
    checked: its type, numbers finite and positive, no unknown keys."""
    _check_keys(data, _TOP_KEYS, origin)
    name = check_name(data.get("name"), f"{origin}: 'name'")
    default_min = _min_count(data.get("min_count", 10), origin)
    labels_table = data.get("labels")
    if not isinstance(labels_table, dict) or len(labels_table) < 2:
        raise InputError(f"{origin}: a taxonomy needs a [labels.<name>] table for at least two labels")
    specs = [_label_spec(origin, label_name, entry, default_min) for label_name, entry in labels_table.items()]
    window_s = data.get("window_s")
    if window_s is not None and (isinstance(window_s, bool) or not isinstance(window_s, (int, float))
                                 or not 0 < window_s <= MAX_WINDOW_S):  # also false for nan
        raise InputError(f"{origin}: window_s must be a positive number of seconds (at most {MAX_WINDOW_S:g}), "
                         f"got {window_s!r}")
    description = _text(data.get("description", ""), f"{origin}: description")
    try:
        return Taxonomy(name=name, labels=tuple(specs), description=description,
                        window_s=float(window_s) if window_s is not None else None)
    except InputError as error:  # two labels share a spelling
        raise InputError(f"{origin}: {error}") from None


def load_taxonomy_file(path: Path) -> Taxonomy:
    """A taxonomy from its TOML file; InputError naming the file and the problem."""
    text = read_small_file(path, "taxonomy", MAX_FILE_BYTES)
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(f"{path}: not valid TOML ({error})") from error
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text (bad byte at offset {error.start})") from None
    except RecursionError:
        raise InputError(f"{path}: not valid TOML (nested too deeply)") from None
    taxonomy = parse_taxonomy(data, str(path))
    return Taxonomy(taxonomy.name, taxonomy.labels, taxonomy.description, path=path, window_s=taxonomy.window_s)


def taxonomy_toml(name: str, labels: list[str], min_count: int, description: str = "") -> str:
    """A TOML text for a new taxonomy with default colours, for `taxonomy create`."""
    palette = ["#ef4444", "#f97316", "#eab308", "#84cc16", "#22c55e", "#14b8a6",
               "#3b82f6", "#6366f1", "#a855f7", "#ec4899", "#64748b", "#78716c"]
    lines = [f'name = "{name}"', f'description = "{description}"', f"min_count = {min_count}", ""]
    for index, label in enumerate(labels):
        lines += [f"[labels.{label}]", f'colour = "{palette[index % len(palette)]}"', "aliases = []", ""]
    return "\n".join(lines)


class TaxonomyRegistry:
    """The taxonomies a workspace can use: built-in ones, overridden by the workspace's own. A file
    that is not a valid taxonomy is skipped and kept in `problems`, so the others still work."""

    def __init__(self, *folders: Path) -> None:
        self.folders = folders
        self._by_name: dict[str, Taxonomy] | None = None
        self._bad: dict[Path, str] = {}  # file → what is wrong with it

    def _load(self) -> dict[str, Taxonomy]:
        if self._by_name is None:
            found: dict[str, Taxonomy] = {}
            for folder in self.folders:
                for path in sorted(Path(folder).glob("*.toml")):
                    try:
                        taxonomy = load_taxonomy_file(path)
                    except InputError as error:
                        self._bad[path] = str(error)
                        continue
                    found[taxonomy.name] = taxonomy
            self._by_name = found
        return self._by_name

    @property
    def problems(self) -> list[str]:
        """Why each skipped taxonomy file was skipped (each message names its file)."""
        self._load()
        return list(self._bad.values())

    def names(self) -> list[str]:
        return sorted(self._load())

    def get(self, name: str) -> Taxonomy:
        try:
            return self._load()[name]
        except KeyError:
            problems = [problem for path, problem in self._bad.items() if path.stem == name]
            if problems:
                raise InputError(f"taxonomy {name!r} cannot be used: {problems[-1]}") from None
            raise NotFound(f"no taxonomy named {name!r}; available: {', '.join(self.names()) or 'none'}") from None
