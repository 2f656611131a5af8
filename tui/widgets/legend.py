"""One key per class of a taxonomy, and the legend that shows them.

Keys are letters of the class's own name where free (kick → k, snare → s), then its initial in
upper case, then any free letter; keys the screen uses for other things are never given out."""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text
from textual.widgets import Static


def assign_keys(names: Sequence[str], reserved: Iterable[str]) -> dict[str, str]:
    """key → class name, in the order of `names`."""
    taken = set(reserved)
    keys: dict[str, str] = {}
    for name in names:
        letters = [c for c in name.lower() if c in string.ascii_lowercase]
        candidates = letters + [letters[0].upper()] if letters else []
        candidates += list(string.ascii_lowercase) + list(string.ascii_uppercase)
        key = next(c for c in candidates if c not in taken)
        taken.add(key)
        keys[key] = name
    return keys


class KeyLegend(Static):
    def show_keys(self, taxonomy: str, keys: dict[str, str], colours: dict[str, str]) -> None:
        grid = Table.grid(padding=(0, 1))
        grid.add_column()
        grid.add_column()
        entries = [Text.assemble((key, "bold reverse"), " ", (name, colours.get(name, ""))) for key, name in keys.items()]
        rows = (len(entries) + 1) // 2
        for row in range(rows):
            grid.add_row(*(entries[row + rows * col] if row + rows * col < len(entries) else "" for col in range(2)))
        self.border_title = f"{taxonomy} · t switches"
        self.update(grid)
