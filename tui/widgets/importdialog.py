"""Importing from the TUI: a dialog asks for a folder and the options `import` takes, and another
lists what an import job rejected. Neither touches the workspace; the library screen runs the job."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, DataTable, Input, Label, Select


@dataclass(frozen=True)
class ImportRequest:
    """What to import, as the params of an import job."""

    folder: str
    curated: bool = False
    source: str | None = None
    taxonomy: str | None = None

    @property
    def params(self) -> dict:
        return asdict(self)


class ImportDialog(ModalScreen[ImportRequest | None]):
    """Enter in a text field imports; escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, taxonomies: list[str], default_taxonomy: str) -> None:
        super().__init__()
        self.taxonomies = taxonomies
        self.default_taxonomy = default_taxonomy

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="import-dialog"):
            yield Label("Import audio (wav, flac, ogg, mp3, aiff) from a folder, searched recursively, or one file:",
                        classes="dialog-question")
            yield Input(placeholder="folder, e.g. ~/samples/808", id="import-folder")
            yield Checkbox("curated: class folders name the labels (FOLDER/kick/…)", id="import-curated",
                           compact=True)
            with Horizontal(id="import-taxonomy-row"):
                yield Label("taxonomy of the labels ")
                yield Select([(name, name) for name in self.taxonomies], value=self.default_taxonomy,
                             allow_blank=False, id="import-taxonomy", compact=True)
            yield Input(placeholder="source/pack name (default: each file's top folder)", id="import-source")
            yield Label("enter imports · tab moves · space ticks · escape cancels", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        folder = self.query_one("#import-folder", Input)
        path = Path(folder.value.strip()).expanduser()
        if not folder.value.strip():
            self.notify("Type the folder to import, or press escape to cancel.", severity="warning")
        elif not path.exists():
            self.notify(f"{path}: no such file or folder", severity="error")
            folder.focus()
        else:
            source = self.query_one("#import-source", Input).value.strip()
            self.dismiss(ImportRequest(str(path.resolve()), self.query_one("#import-curated", Checkbox).value,
                                       source or None, str(self.query_one("#import-taxonomy", Select).value)))

    def action_cancel(self) -> None:
        self.dismiss(None)


class RejectionsDialog(ModalScreen[None]):
    """The files an import left out, each with why; escape or enter closes."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, summary: str, rejections: list[dict]) -> None:
        super().__init__()
        self.summary = summary
        self.rejections = rejections

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="rejections-dialog"):
            yield Label(f"{self.summary}. Left out:", classes="dialog-question")
            yield DataTable(id="import-rejections", cursor_type="row", zebra_stripes=True)
            yield Label("escape closes", classes="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("file", "why")
        for rejection in self.rejections:
            why = rejection["reason"] + (f": {rejection['detail']}" if rejection.get("detail") else "")
            table.add_row(Path(rejection["path"]).name, why)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
