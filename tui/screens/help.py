"""`?`: every key of the screen underneath and of the app, in one modal list that scrolls (↓ ↑,
PageDown PageUp, Home End), so every row can be reached however small the terminal."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label

from tui.commands import bindings_of


class KeyList(DataTable):
    """The list of keys: Home and End go to its first and last row."""

    BINDINGS = [Binding("home", "scroll_top", "First row", show=False),
                Binding("end", "scroll_bottom", "Last row", show=False)]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Label("Keys — ↓ PageDown End scroll · escape closes", id="help-title")
            yield KeyList(id="help-keys", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(KeyList)
        table.add_columns("key", "does", "where")
        seen = set()
        for where, node in (("this screen", self.under), ("everywhere", self.app)):
            for binding in bindings_of(node):
                if binding.key in seen:
                    continue
                seen.add(binding.key)
                table.add_row(binding.key_display or binding.key, binding.description or binding.action, where)
        for key, does in getattr(self.under, "help_rows", list)():  # keys a screen assigns at run time
            table.add_row(key, does, "this screen")

    def action_dismiss(self) -> None:
        self.dismiss(None)
