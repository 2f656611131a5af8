"""The `workbench` command: the TUI with no arguments, scripted commands with --headless."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from cli import (commands_features, commands_gates, commands_library, commands_models, commands_suggest,
                 commands_sweeps, commands_triage, commands_workspace)
from cli.context import AppState, check_writable
from cli.output import ExitCode, JsonUsageErrorsGroup, stderr
from engine.errors import WorkbenchError

HELP = """A workbench for turning your own labelled audio into classifiers you trust.

Run `workbench` for the terminal UI (library, labelling, training, gates and models), or
`workbench --headless COMMAND` for scripts and cron.
The workspace is --workspace, else $WORKBENCH_WORKSPACE, else ~/.local/share/workbench/workspace.
Exit codes: 0 ok, 1 failed, 2 usage, 3 partial (some inputs rejected), 130 cancelled, 141 output
cut off (its reader closed the pipe, as `| head` does).
"""


@contextmanager
def reader_may_leave() -> Iterator[None]:
    """End quietly when stdout's reader goes away (`workbench --headless stats | head -2`), as
    Python's documentation advises: stdout is pointed at /dev/null so the flush at exit cannot
    fail again, and the command exits with ExitCode.CUT_OFF."""
    try:
        yield
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(int(ExitCode.CUT_OFF)) from None


class WorkbenchGroup(JsonUsageErrorsGroup):
    """The root command, which ends quietly when its output is cut off, whether that is a
    command's output or --help (printed while the arguments are parsed)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        with reader_may_leave():
            return super().parse_args(ctx, args)

    def invoke(self, ctx: typer.Context):
        with reader_may_leave():
            return super().invoke(ctx)


app = typer.Typer(cls=WorkbenchGroup, help=HELP, no_args_is_help=False, add_completion=False,
                  rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]})


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    headless: Annotated[bool, typer.Option("--headless", help="Run a command without the TUI.")] = False,
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", envvar="WORKBENCH_WORKSPACE",
                                                   help="Workspace folder.", show_envvar=True)] = None,
) -> None:
    ctx.obj = AppState(workspace_path=workspace)
    if ctx.invoked_subcommand is None:
        if headless:
            typer.echo(ctx.get_help())
            typer.echo("\n--headless needs a command, e.g. `workbench --headless demo`.", err=True)
            raise typer.Exit(2)
        from tui.app import make_app

        root = ctx.obj.workspace_root().expanduser()
        try:
            check_writable(root)
        except WorkbenchError as error:
            stderr.print(f"error: {error}", markup=False)
            raise typer.Exit(int(ExitCode.FAILED)) from None
        make_app(root).run()


commands_library.register(app)
commands_features.register(app)
commands_models.register(app)
commands_workspace.register(app)
commands_gates.register(app)
commands_triage.register(app)
commands_suggest.register(app)
commands_sweeps.register(app)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
