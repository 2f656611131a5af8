"""The workbench terminal app: modes over the engine, built by one factory for the CLI and tests."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen

from engine.workspace import Workspace
from tui.commands import binding_commands
from tui.screens.help import HelpScreen
from tui.screens.library import LibraryScreen

STYLES = Path(__file__).resolve().parents[1] / "styles"


MODE_KEYS = {"library": "1", "label": "2", "train": "3", "gates": "4", "models": "5", "sweeps": "6"}


def _on_first_visit(module: str, name: str) -> Callable[[], Screen]:
    """A mode's screen, imported when the mode is first opened: the library shows sooner."""
    return lambda: getattr(importlib.import_module(module), name)()


def _mode(mode: str, make: Callable[[], Screen]) -> Callable[[], Screen]:
    """The mode's screen, titled with the mode's name: its header lights that mode's key."""
    def titled() -> Screen:
        screen = make()
        screen.title = mode
        return screen
    return titled


class WorkbenchApp(App):
    """Six modes, one key each: library, label, train, gates, models, sweeps; ctrl+p finds any action."""

    CSS_PATH = [STYLES / f"{sheet}.tcss"
                for sheet in ("app", "dialogs", "label", "train", "gates", "models", "sweeps")]
    TITLE = "workbench"
    MODES = {"library": _mode("library", LibraryScreen),
             "label": _mode("label", _on_first_visit("tui.screens.label", "LabelScreen")),
             "train": _mode("train", _on_first_visit("tui.screens.train", "TrainScreen")),
             "gates": _mode("gates", _on_first_visit("tui.screens.gates", "GatesScreen")),
             "models": _mode("models", _on_first_visit("tui.screens.models", "ModelsScreen")),
             "sweeps": _mode("sweeps", _on_first_visit("tui.screens.sweeps", "SweepsScreen"))}
    # the mode keys and ? live in every screen's header (format_title), so the footer keeps its
    # width for the screen's own keys
    BINDINGS = [
        *(Binding(key, f"switch_mode('{mode}')", mode.capitalize(), show=False) for mode, key in MODE_KEYS.items()),
        Binding("question_mark", "help", "Help", key_display="?", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.sub_title = str(workspace.root)

    def on_mount(self) -> None:
        self.switch_mode("library")

    def format_title(self, title: str, sub_title: str) -> Content:
        """Every screen's header: the mode keys with the current mode lit, as k9s and lazygit keep
        their views in view (at 80 columns too), then the workspace."""
        parts: list[tuple[str, str] | str] = []
        for mode, key in MODE_KEYS.items():
            lit = mode == title
            parts += [(f" {key}", "bold reverse" if lit else "bold"),
                      (f" {mode.capitalize()} ", "reverse" if lit else "")]
        parts += [(" ?", "bold"), " Help "]
        if sub_title:
            parts += [("· ", "dim"), (sub_title, "dim")]
        return Content.assemble(*parts)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from binding_commands(screen, self)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))


def make_app(workspace_path: Path) -> WorkbenchApp:
    """The app over the workspace at `workspace_path` (created if new)."""
    return WorkbenchApp(Workspace.open(workspace_path))
