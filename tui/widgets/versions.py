"""Model versions, one row each: active marker, version, kind, features, test accuracy and
macro-F1 with their 95% CIs, created. A version marked for comparison carries a diamond.
`VersionsWatch` tells a screen that lists versions when they change."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable

from engine.errors import WorkbenchError
from engine.evaluation.metrics import format_with_ci
from engine.models.registry import ModelVersion, versions_stamp
from tui.workers import ReportsWorkerErrors, in_thread

WATCH_S = 1.0  # how often a screen on view looks whether the versions changed

COLUMNS = (("", 2), ("version", 12), ("kind", 6), ("features", 9), ("accuracy", 13), ("macro-F1", 13),
           ("created", 11))


def _marks(version: ModelVersion, marked: str | None) -> Text:
    return Text.assemble(("●" if version.is_active else " ", "green"), ("◆" if version.ref == marked else "", "yellow"))


class VersionsTable(DataTable):
    class Highlighted(Message):
        def __init__(self, ref: str | None) -> None:
            super().__init__()
            self.ref = ref

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.versions: dict[str, ModelVersion] = {}

    def on_mount(self) -> None:
        for title, width in COLUMNS:
            self.add_column(title, width=width)

    @property
    def highlighted(self) -> ModelVersion | None:
        if not self.versions or self.row_count == 0:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.versions.get(key)

    def show(self, versions: list[ModelVersion], marked: str | None) -> None:
        """All rows again, the cursor staying on the version it was on when that version is still there."""
        current = self.highlighted.ref if self.highlighted else None
        self.versions = {v.ref: v for v in versions}
        self.clear()
        for v in versions:
            test = v.metrics.get("test")
            self.add_row(_marks(v, marked), v.ref, v.kind, str(v.spec), format_with_ci(test, "accuracy", sign=False),
                         format_with_ci(test, "macro_f1", sign=False), v.created_at.strftime("%m-%d %H:%M"), key=v.ref)
        refs = list(self.versions)
        if current in refs:
            self.move_cursor(row=refs.index(current))
        self.post_message(self.Highlighted(self.highlighted.ref if self.highlighted else None))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.cursor_row == self.cursor_row:
            self.post_message(self.Highlighted(event.row_key.value))


class VersionsWatch(ReportsWorkerErrors, Widget):
    """Posts `Changed` when the workspace's versions change (a training job registered one, the
    CLI activated or deleted one, a gate run reported on one): every WATCH_S, while its screen is
    on view, it reads their stamp in a worker thread."""

    DEFAULT_CSS = "VersionsWatch { display: none; }"

    class Changed(Message):
        """The versions differ from the last look."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._stamp: tuple | None = None

    def on_mount(self) -> None:
        self.look()
        self.set_interval(WATCH_S, self._tick)

    def _tick(self) -> None:
        if self.screen.is_current:
            self.look()

    @in_thread("versions-watch", exclusive=True)
    def look(self) -> None:
        try:
            stamp = versions_stamp(self.app.workspace)
        except WorkbenchError:
            return  # a busy workspace: the next look sees it
        self.app.call_from_thread(self._compare, stamp)

    def _compare(self, stamp: tuple) -> None:
        if self._stamp is not None and stamp != self._stamp:
            self.post_message(self.Changed())
        self._stamp = stamp
