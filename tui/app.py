"""The workbench terminal app: modes over the engine, built by one factory for the CLI and tests."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from engine.workspace import Workspace
from tui.commands import binding_commands
from tui.screens.help import HelpScreen
from tui.screens.library import LibraryScreen

STYLES = Path(__file__).resolve().parents[1] / "styles"


def _on_first_visit(module: str, name: str) -> Callable[[], Screen]:
    """A mode's screen, imported when the mode is first opened: the library shows sooner."""
    return lambda: getattr(importlib.import_module(module), name)()


class WorkbenchApp(App):
    """Five modes, one key each: library, label, train, gates, models; ctrl+p finds any action."""

    CSS_PATH = [STYLES / f"{sheet}.tcss" for sheet in ("app", "dialogs", "label", "train", "gates", "models")]
    TITLE = "workbench"
    MODES = {"library": LibraryScreen,
             "label": _on_first_visit("tui.screens.label", "LabelScreen"),
             "train": _on_first_visit("tui.screens.train", "TrainScreen"),
             "gates": _on_first_visit("tui.screens.gates", "GatesScreen"),
             "models": _on_first_visit("tui.screens.models", "ModelsScreen")}
    BINDINGS = [
        Binding("1", "switch_mode('library')", "Library"),
        Binding("2", "switch_mode('label')", "Label"),
        Binding("3", "switch_mode('train')", "Train"),
        Binding("4", "switch_mode('gates')", "Gates"),
        Binding("5", "switch_mode('models')", "Models"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.sub_title = str(workspace.root)

    def on_mount(self) -> None:
        self.switch_mode("library")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from binding_commands(screen, self)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))


def make_app(workspace_path: Path) -> WorkbenchApp:
    """The app over the workspace at `workspace_path` (created if new)."""
    return WorkbenchApp(Workspace.open(workspace_path))
