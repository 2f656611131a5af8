"""The library: every clip with its labels and the active model's prediction, filtered as you type.

The query runs in a worker thread (the event loop never waits on the database); a newer query
makes older results stale, so typing fast never shows an outdated page.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label

from engine.library.browse import SORTS, Page, browse
from engine.stats import workspace_stats
from tui.widgets.readiness import ReadinessPanel

PAGE_SIZE = 1000
PANEL_MIN_WIDTH = 100  # narrower terminals give the table all the room; `p` shows the panel anyway
COLUMNS = (("clip", 24), ("source", 10), ("sec", 5), ("labels", 13), ("predicted", 12), ("conf", 4))  # fits 80 columns
FILTER_HELP = "filter: words in the path, label:kick source:808 predicted:snare unlabelled low disagrees"


class LibraryScreen(Screen):
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", key_display="/"),
        Binding("escape", "clear_filter", "Clear filter"),
        Binding("s", "next_sort", "Sort"),
        Binding("p", "toggle_panel", "Counts panel"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort = "path"
        self._generation = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="library-main"):
                yield Input(placeholder=FILTER_HELP, id="library-filter")
                yield DataTable(id="library-table", cursor_type="row", zebra_stripes=True)
                yield Label("", id="library-status")
            yield ReadinessPanel(id="library-readiness")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for title, width in COLUMNS:
            table.add_column(title, width=width)
        table.focus()
        self.refresh_page()
        self.refresh_readiness()

    # -- loading ----------------------------------------------------------------------------
    def refresh_page(self) -> None:
        self._generation += 1
        self.load_page(self.query_one(Input).value, self.sort, self._generation)

    @work(thread=True, group="library-page")
    def load_page(self, query: str, sort: str, generation: int) -> None:
        page = browse(self.app.workspace, query, sort=sort, limit=PAGE_SIZE)
        self.app.call_from_thread(self.show_page, page, generation)

    @work(thread=True, group="library-readiness", exclusive=True)
    def refresh_readiness(self) -> None:
        stats = workspace_stats(self.app.workspace)
        self.app.call_from_thread(self.query_one(ReadinessPanel).show, stats.taxonomies if stats.clips_labelled else [])

    def show_page(self, page: Page, generation: int) -> None:
        if generation != self._generation:
            return  # a newer query is on its way
        table = self.query_one(DataTable)
        table.clear()
        table.add_rows(
            (row.name, row.source, f"{row.duration_s:.2f}", row.labels, row.predicted or "",
             "" if row.confidence is None else f"{row.confidence:.2f}")
            for row in page.rows
        )
        shown = f"{len(page.rows)} of {page.total}" if page.total > len(page.rows) else f"{page.total}"
        self.query_one("#library-status", Label).update(f"{shown} clips · sorted by {self.sort}")

    # -- actions ----------------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        self.refresh_page()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one(Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one(Input).value = ""
        self.query_one(DataTable).focus()

    def action_next_sort(self) -> None:
        names = list(SORTS)
        self.sort = names[(names.index(self.sort) + 1) % len(names)]
        self.refresh_page()

    def on_resize(self, event) -> None:
        self.query_one(ReadinessPanel).display = event.size.width >= PANEL_MIN_WIDTH

    def action_toggle_panel(self) -> None:
        panel = self.query_one(ReadinessPanel)
        panel.display = not panel.display

    def action_reload(self) -> None:
        self.refresh_page()
        self.refresh_readiness()
