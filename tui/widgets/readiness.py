"""Counts per label against each label's minimum, and whether the set is ready to train."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.library.stats import TaxonomyStats


class ReadinessPanel(Static):
    def show(self, stats: list[TaxonomyStats]) -> None:
        if not stats:
            self.update("No labels yet.")
            return
        grid = Table.grid(padding=(0, 1))
        for taxonomy in stats:
            grid.add_row(Text(taxonomy.taxonomy, style="bold"), "")
            for count in taxonomy.labels:
                mark = Text("✓", style="green") if count.ready else Text("✗", style="red")
                grid.add_row(Text(f"■ {count.label}", style=count.colour), Text(f"{count.count}/{count.minimum} ") + mark)
            verdict = Text("ready to train", style="green") if taxonomy.ready else Text(
                "not ready: " + "; ".join(taxonomy.reasons), style="red")
            grid.add_row(verdict, "")
            grid.add_row("", "")
        self.update(grid)
