"""What every command needs from the global options: the workspace."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from cli.output import stderr
from engine.errors import NotFound, WorkbenchError
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
    check_writable(root)
    workspace = Workspace.open(root, create=create)
    for problem in workspace.taxonomies.problems:
        stderr.print(f"warning: taxonomy skipped: {problem}", markup=False)
    return workspace


def check_writable(root: Path) -> None:
    """A workspace is written by every command (its database, jobs, cache): a folder this user cannot
    write is an error that names it, before anything is opened (or created inside the nearest folder
    that exists)."""
    root = folder = root.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    database = root / DATABASE_FILE
    writable = os.access(folder, os.W_OK | os.X_OK) and (not database.exists() or os.access(database, os.W_OK))
    if folder.is_dir() and not writable:  # a file where the folder should be: Workspace.open says so
        fix = "Fix its permissions or choose another with --workspace"
        if folder != root:
            raise WorkbenchError(f"cannot create the workspace {root}: {folder} is not writable (permission denied). "
                                 f"{fix}")
        raise WorkbenchError(f"{root}: workspace folder is not writable (permission denied); workbench writes its "
                             f"database, jobs and cache there. {fix}")


def no_workspace_message(root: Path, *, given: bool) -> str:
    where = f" --workspace {shlex.quote(str(root.absolute()))}" if given else ""
    default = "" if given else " (the default; choose another with --workspace or $WORKBENCH_WORKSPACE)"
    return f"no workspace at {root.absolute()}{default}; `workbench --headless{where} import FOLDER` starts one"
