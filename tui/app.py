"""The workbench terminal app: modes over the engine, built by one factory for the CLI and tests."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding

from engine.workspace import Workspace
from tui.screens.help import HelpScreen
from tui.screens.label import LabelScreen
from tui.screens.library import LibraryScreen
from tui.screens.models import ModelsScreen
from tui.screens.train import TrainScreen

STYLES = Path(__file__).resolve().parents[1] / "styles"


class WorkbenchApp(App):
    """Library first; more modes (label, train, gates, models) join as they are built."""

    CSS_PATH = [STYLES / "app.tcss", STYLES / "train.tcss", STYLES / "dialogs.tcss", STYLES / "models.tcss", STYLES / "label.tcss"]
    TITLE = "workbench"
    MODES = {"library": LibraryScreen, "label": LabelScreen, "train": TrainScreen, "models": ModelsScreen}
    BINDINGS = [
        Binding("1", "switch_mode('library')", "Library"),
        Binding("2", "switch_mode('label')", "Label"),
        Binding("3", "switch_mode('train')", "Train"),
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

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))


def make_app(workspace_path: Path) -> WorkbenchApp:
    """The app over the workspace at `workspace_path` (created if new)."""
    return WorkbenchApp(Workspace.open(workspace_path))
