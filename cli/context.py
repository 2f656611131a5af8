"""What every command needs from the global options: the workspace."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from engine.errors import NotFound
from engine.workspace import DATABASE_FILE, Workspace, default_workspace_path

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
WorkersOption = Annotated[int | None, typer.Option("--workers", min=1, help="Worker processes (default: CPU cores).")]
TaxonomyOption = Annotated[str | None, typer.Option("--taxonomy", "-t", help="Taxonomy (default: the workspace's).")]


@dataclass
class AppState:
    workspace_path: Path | None = None

    def workspace_root(self) -> Path:
        return self.workspace_path or default_workspace_path()


def open_workspace(ctx: typer.Context, *, create: bool = False) -> Workspace:
    """The workspace the command works on. Only commands that bring content in from nothing (import,
    labels import, taxonomy create, embeddings install-aisfx) pass create=True; for every other
    command a path that holds no workspace, a mistyped --workspace say, is an error that names it,
    and nothing is created there."""
    state: AppState = ctx.find_root().obj
    root = state.workspace_root().expanduser()
    if not create and not (root / DATABASE_FILE).is_file():
        raise NotFound(no_workspace_message(root, given=state.workspace_path is not None))
    return Workspace.open(root, create=create)


def no_workspace_message(root: Path, *, given: bool) -> str:
    where = f" --workspace {shlex.quote(str(root.absolute()))}" if given else ""
    default = "" if given else " (the default; choose another with --workspace or $WORKBENCH_WORKSPACE)"
    return f"no workspace at {root.absolute()}{default}; `workbench --headless{where} import FOLDER` starts one"
