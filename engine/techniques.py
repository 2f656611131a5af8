"""Technique catalogues: the playing techniques a taxonomy's labels may be tagged with (a snare hit
played as a `flam`, a closed hi-hat as a `hihat_bark`).

A catalogue is a JSON file per taxonomy, `<data>/techniques/<taxonomy>.json` built in, overridden by
`<workspace>/techniques/<taxonomy>.json`:

    {"taxonomy": "drums",
     "description": "…",
     "techniques": {"flam": {"description": "…", "labels": ["snare", "tom"]}, …}}

`labels` (optional) names the labels a technique applies to; without it, it applies to every label.
A taxonomy with no catalogue file has no techniques, and a label tagged with one is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.io import read_small_file
from engine.settings import load_settings
from engine.taxonomy import Taxonomy, check_name, normalise_label

MAX_FILE_BYTES = 1 << 20
_TOP_KEYS = ("taxonomy", "description", "techniques")
_TECHNIQUE_KEYS = ("description", "labels")


def builtin_technique_dir() -> Path:
    """`<data>/techniques`, where data is the data setting (default: the repository's data/)."""
    return load_settings().data / "techniques"


@dataclass(frozen=True)
class Technique:
    name: str
    description: str = ""
    labels: tuple[str, ...] = ()  # the labels it applies to; empty: every label


@dataclass(frozen=True)
class TechniqueCatalogue:
    taxonomy: str
    techniques: tuple[Technique, ...] = ()
    description: str = ""
    path: Path | None = None

    @property
    def names(self) -> list[str]:
        return [technique.name for technique in self.techniques]

    def technique(self, name: str) -> Technique | None:
        key = normalise_label(name)
        return next((technique for technique in self.techniques if technique.name == key), None)

    def check(self, raw_names: Iterable[str], label: str | None = None) -> tuple[str, ...]:
        """The catalogue's names for `raw_names`, sorted and without repeats; InputError naming the
        first one the catalogue lacks, or that does not apply to `label`."""
        checked = set()
        for raw in raw_names:
            technique = self.technique(raw)
            if technique is None:
                known = ", ".join(self.names) or f"none: taxonomy {self.taxonomy} has no technique catalogue"
                raise InputError(f"technique {raw!r} is not in the {self.taxonomy} technique catalogue (known: {known})")
            if label is not None and technique.labels and label not in technique.labels:
                raise InputError(f"technique {technique.name} does not apply to {label} "
                                 f"(it applies to {', '.join(technique.labels)})")
            checked.add(technique.name)
        return tuple(sorted(checked))


def parse_techniques_text(text: str) -> list[str]:
    """Technique names as a label file's `techniques` cell holds them: separated by ';', ',' or '|'."""
    for separator in ",|":
        text = text.replace(separator, ";")
    return [part.strip() for part in text.split(";") if part.strip()]


def parse_catalogue(data: object, origin: str, taxonomy: Taxonomy) -> TechniqueCatalogue:
    """A catalogue from its JSON value, checked against `taxonomy`; `origin` names the file in errors."""
    if not isinstance(data, dict):
        raise InputError(f"{origin}: a technique catalogue is a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise InputError(f"{origin}: unknown keys {', '.join(map(repr, unknown))} (known: {', '.join(_TOP_KEYS)})")
    if data.get("taxonomy") != taxonomy.name:
        raise InputError(f"{origin}: 'taxonomy' must be {taxonomy.name!r}, got {data.get('taxonomy')!r}")
    entries = data.get("techniques")
    if not isinstance(entries, dict) or not entries:
        raise InputError(f"{origin}: 'techniques' must be an object of at least one technique")
    techniques = []
    for name, entry in entries.items():
        where = f"{origin}: technique {name!r}"
        check_name(name, where)
        if not isinstance(entry, dict):
            raise InputError(f"{where} must be an object with a description and labels, got {entry!r}")
        unknown = sorted(set(entry) - set(_TECHNIQUE_KEYS))
        if unknown:
            raise InputError(f"{where}: unknown keys {', '.join(map(repr, unknown))} (known: description, labels)")
        description = entry.get("description", "")
        if not isinstance(description, str):
            raise InputError(f"{where}: description must be text")
        raw_labels = entry.get("labels", [])
        if not isinstance(raw_labels, list) or not all(isinstance(label, str) for label in raw_labels):
            raise InputError(f"{where}: labels must be a list of label names")
        labels = []
        for raw in raw_labels:
            resolved = taxonomy.resolve(raw)
            if resolved is None:
                raise InputError(f"{where}: label {raw!r} is not in taxonomy {taxonomy.name}")
            labels.append(resolved)
        techniques.append(Technique(name, description, tuple(labels)))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise InputError(f"{origin}: description must be text")
    return TechniqueCatalogue(taxonomy.name, tuple(techniques), description)


def load_catalogue_file(path: Path, taxonomy: Taxonomy) -> TechniqueCatalogue:
    text = read_small_file(path, "technique catalogue", MAX_FILE_BYTES)
    try:
        data = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text (bad byte at offset {error.start})") from None
    except (ValueError, RecursionError) as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None
    catalogue = parse_catalogue(data, str(path), taxonomy)
    return TechniqueCatalogue(catalogue.taxonomy, catalogue.techniques, catalogue.description, path)


def catalogue_for(taxonomy: Taxonomy, *folders: Path) -> TechniqueCatalogue:
    """The taxonomy's catalogue from the last of `folders` that holds `<taxonomy>.json`; an empty
    catalogue when none does."""
    for folder in reversed(folders):
        path = Path(folder) / f"{taxonomy.name}.json"
        if path.is_file():
            return load_catalogue_file(path, taxonomy)
    return TechniqueCatalogue(taxonomy.name)
