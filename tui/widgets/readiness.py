"""Counts per label against each label's minimum, whether the set is ready to train, and how fast
labels are made (once some are timed)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.library.stats import LabellingSpeed, TaxonomyStats


class ReadinessPanel(Static):
    def show(self, stats: list[TaxonomyStats], speed: LabellingSpeed | None = None) -> None:
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
        if speed is not None and speed.timed_labels:
            grid.add_row(Text(f"{speed.labels_per_hour:.0f} labels/hour, {speed.seconds_per_label:.1f} s per label"), "")
        self.update(grid)
