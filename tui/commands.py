"""The command palette's entries (ctrl+p): every mode, and every key of the screen you are on and
of the app, by its description — so anything reachable by a key is also reachable by name."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen


def bindings_of(node) -> Iterable[Binding]:
    """A screen's, widget's or app's own BINDINGS, each as a Binding (they may be written as tuples)."""
    for binding in getattr(node, "BINDINGS", []):
        yield binding if isinstance(binding, Binding) else Binding(*binding)


def binding_commands(screen: Screen, app) -> Iterable[SystemCommand]:
    """One palette entry per described key of the screen (and its focused widget) and of the app."""
    seen: set[str] = set()
    sources = [(screen.focused, "this field"), (screen, "this screen"), (app, "everywhere")]
    for node, where in sources:
        if node is None:
            continue
        for binding in bindings_of(node):
            if not binding.description or binding.description in seen or binding.action == "command_palette":
                continue
            seen.add(binding.description)
            key = binding.key_display or binding.key.split(",")[0]
            yield SystemCommand(binding.description, f"key {key} · {where}",
                                partial(node.run_action, binding.action))
