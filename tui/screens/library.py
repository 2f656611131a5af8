"""The library: every clip with its labels and the active model's prediction, filtered as you type.

The query runs in a worker thread (the event loop never waits on the database) a moment after the
last key of a filter; a newer query makes older results stale, so typing fast never shows an
outdated list. The table holds every matching row and draws only those on screen. `i` imports a
folder as a job in a process of its own, followed in a status line; its rejections are listed.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, Label

from engine.concepts import JobState
from engine.errors import WorkbenchError
from engine.jobs.log import spawn_job
from engine.library.browse import SORTS, ClipRow, Page, browse, library_stamp
from engine.library.walk import ClipWalk
from engine.library.stats import workspace_stats
from tui.widgets.cliptable import ClipTable
from tui.widgets.importdialog import ImportDialog, ImportRequest, RejectionsDialog
from tui.widgets.jobline import JobLine
from tui.widgets.readiness import ReadinessPanel
from tui.workers import ReportsWorkerErrors, in_thread

PANEL_MIN_WIDTH = 100  # narrower terminals give the table all the room; `p` shows the panel anyway
FIRST_SCREENFUL = 200  # rows fetched before the whole list when the table is empty
FILTER_DELAY_S = 0.12  # a filter query starts once typing pauses this long
FILTER_HELP = "filter: words in the path, label:kick source:808 predicted:snare unlabelled low disagrees"
NO_MATCH = "no clips match; escape clears the filter"
NO_CLIPS = "no clips yet: i imports a folder (or run workbench --headless import FOLDER)"


class LibraryScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", key_display="/"),
        Binding("i", "import", "Import"),
        Binding("escape", "clear_filter", "Clear filter"),
        Binding("s", "next_sort", "Sort"),
        Binding("p", "toggle_panel", "Counts panel"),
        Binding("r", "reload", "Reload"),
        Binding("c", "cancel_import", "Cancel import", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort = "path"
        self.page = Page([], 0)
        self._generation = 0
        self._filter_timer: Timer | None = None
        self._counts_requested = False
        self._stamp: tuple | None = None  # library_stamp of the rows shown
        self.only: tuple[list[str], str] | None = None  # clip ids another screen asked to show, and why
        self._status = "loading…"  # the status line's count and order

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="library-main"):
                yield Input(placeholder=FILTER_HELP, id="library-filter")
                yield ClipTable(id="library-table", empty_text=NO_MATCH)
                yield Label("loading…", id="library-status")
                yield JobLine(id="library-job", message_id="library-job-message", progress_id="library-job-progress")
            yield ReadinessPanel(id="library-readiness")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ClipTable).focus()
        self.refresh_page()  # the counts panel follows once the rows are on screen

    def on_screen_resume(self) -> None:
        if self._stamp is not None:  # else the first load is still on its way
            self.reload_if_changed()  # labels may have changed on another screen (not after a dialog)

    @in_thread("library-stamp")
    def reload_if_changed(self) -> None:
        if library_stamp(self.app.workspace) != self._stamp:
            self.app.call_from_thread(self.action_reload)

    # -- loading ----------------------------------------------------------------------------
    def refresh_page(self) -> None:
        self._generation += 1
        self.load_page(self.query_one(Input).value, self.sort, self._generation, self.only[0] if self.only else None)

    @in_thread("library-page")
    def load_page(self, query: str, sort: str, generation: int, clip_ids: list[str] | None) -> None:
        if generation != self._generation:
            return  # typing went on while this waited for a thread
        stamp = library_stamp(self.app.workspace)  # taken first: a change while reading shows as stale
        if not self.page.rows:  # the first screenful first, so a big library is usable at once
            first = browse(self.app.workspace, query, sort=sort, limit=FIRST_SCREENFUL, clip_ids=clip_ids)
            if len(first.rows) == first.total:
                self.app.call_from_thread(self.show_page, first, generation, stamp=stamp)
                return
            self.app.call_from_thread(self.show_page, first, generation, loading=True)
        page = browse(self.app.workspace, query, sort=sort, limit=None, clip_ids=clip_ids)
        self.app.call_from_thread(self.show_page, page, generation, stamp=stamp)

    @in_thread("library-readiness", exclusive=True)
    def refresh_readiness(self) -> None:
        stats = workspace_stats(self.app.workspace)
        self.app.call_from_thread(self.query_one(ReadinessPanel).show, stats.taxonomies if stats.clips_labelled else [],
                                  stats.labelling)

    def show_page(self, page: Page, generation: int, loading: bool = False, stamp: tuple | None = None) -> None:
        if generation != self._generation:
            return  # a newer query is on its way
        if stamp is not None:
            self._stamp = stamp
        table = self.query_one(ClipTable)
        table.empty_text = NO_MATCH if self.query_one(Input).value or self.only else NO_CLIPS
        current = table.current
        table.show_rows(page.rows, keep_clip=current.clip_id if current else None)
        self.page = page
        among = f" of the {len(self.only[0]):,} from {self.only[1]} (escape shows all)" if self.only else ""
        shown = f"first {len(page.rows)} of {page.total:,} clips, loading the rest…" if loading else f"{page.total:,} clips"
        self._status = f"{shown}{among} · sorted by {self.sort}"
        self.show_status(table.current)
        if not loading and not self._counts_requested:
            self._counts_requested = True
            self.refresh_readiness()

    def show_status(self, row: ClipRow | None) -> None:
        """The status line: the count and order, and where the highlighted clip came from when it was
        imported from a dataset (its dataset, config, split and licence)."""
        provenance = f" · {row.provenance}" if row is not None and row.provenance else ""
        self.query_one("#library-status", Label).update(f"{self._status}{provenance}")

    def on_clip_table_highlighted(self, event: ClipTable.Highlighted) -> None:
        self.show_status(event.row)

    # -- actions ----------------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_DELAY_S, self.refresh_page)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(ClipTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one(Input).focus()

    def action_clear_filter(self) -> None:
        if self.only and not self.query_one(Input).value:
            self.only = None
            self.refresh_page()
        self.query_one(Input).value = ""
        self.query_one(ClipTable).focus()

    def show_only(self, clip_ids: list[str], why: str) -> None:
        """List just these clips (e.g. the ones behind a failing gate) until escape."""
        self.only = (list(clip_ids), why)
        self.query_one(Input).value = ""
        self.refresh_page()

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

    async def on_clip_table_opened(self, event: ClipTable.Opened) -> None:
        """Enter opens the clip in the label screen, whose next/previous walk this filtered list."""
        await self.app.switch_mode("label")
        order = [row.clip_id for row in self.page.rows]
        self.app.screen.open_clip(event.row.clip_id, ClipWalk(order, self.query_one(Input).value))

    # -- importing --------------------------------------------------------------------------
    def action_import(self) -> None:
        if self.query_one(JobLine).job_id is not None:
            self.notify("an import is already running; c cancels it", severity="warning")
            return
        self.ask_what_to_import()

    @in_thread("library-import")
    def ask_what_to_import(self) -> None:
        workspace = self.app.workspace
        names, default = workspace.taxonomies.names(), workspace.default_taxonomy_name
        self.app.call_from_thread(self.app.push_screen, ImportDialog(names, default), self._import_chosen)

    def _import_chosen(self, request: ImportRequest | None) -> None:
        if request is not None:
            self.start_import(request)

    @in_thread("library-import")
    def start_import(self, request: ImportRequest) -> None:
        try:
            job_id = spawn_job(self.app.workspace, "import", request.params)
        except WorkbenchError as error:
            self.app.call_from_thread(self.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self._follow_import, job_id, request.folder)

    def _follow_import(self, job_id: str, folder: str) -> None:
        line = self.query_one(JobLine)
        line.display = True
        line.follow(job_id, f"importing {folder}")

    def action_cancel_import(self) -> None:
        if not self.query_one(JobLine).cancel():
            self.notify("no import is running")

    def on_job_line_ended(self, message: JobLine.Ended) -> None:
        job = message.job
        result = job.result or {}
        summary = result.get("summary")
        if job.state == JobState.COMPLETED:
            message.line.say(f"imported {result.get('root', '')}: {summary}")
        else:
            message.line.say(f"import {job.state}: {job.error or ''}")
            self.notify(f"import {job.state}: {job.error or ''}", severity="error" if job.state == JobState.FAILED else "warning")
        if result.get("rejections"):
            self.app.push_screen(RejectionsDialog(f"Imported {summary}", result["rejections"]))
        self.action_reload()
