"""What every command needs from the global options: the workspace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from engine.workspace import Workspace, default_workspace_path

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
WorkersOption = Annotated[int | None, typer.Option("--workers", min=1, help="Worker processes (default: CPU cores).")]
TaxonomyOption = Annotated[str | None, typer.Option("--taxonomy", "-t", help="Taxonomy (default: the workspace's).")]


@dataclass
class AppState:
    workspace_path: Path | None = None

    def workspace_root(self) -> Path:
        return self.workspace_path or default_workspace_path()


def open_workspace(ctx: typer.Context, *, create: bool = True) -> Workspace:
    state: AppState = ctx.find_root().obj
    return Workspace.open(state.workspace_root(), create=create)
