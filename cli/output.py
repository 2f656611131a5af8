"""How headless commands speak: exit codes, JSON documents on stdout, human text, and errors.

With --json a command prints exactly one JSON document on stdout and nothing else; progress and
messages go to stderr. Exit codes are part of the interface (see ExitCode).
"""

from __future__ import annotations

import functools
import json
import sys
from contextlib import contextmanager
from enum import IntEnum
from typing import Any, Callable, Iterator

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from engine.errors import Cancelled, WorkbenchError, WorkspaceBusy
from engine.text import printable

try:  # newer typer parses with its own copy of click, whose errors are not click's
    from typer._click.exceptions import UsageError
except ImportError:
    from click.exceptions import UsageError


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    PARTIAL = 3  # the command worked, but some inputs were rejected
    CANCELLED = 130  # stopped by Ctrl-C; finished work was kept
    CUT_OFF = 141  # stdout's reader left early (`| head`); 128 + SIGPIPE, as a shell reports it


class _Console(Console):
    """Rich's console, except that a closed pipe raises BrokenPipeError, so that the root command
    ends the same way whoever wrote (rich's own handling exits 1, as if the command failed), and
    that no control character of a string it prints reaches the terminal raw: the line breaks the
    command writes are kept, any other control character is shown (`printable`). Text from outside
    goes through `shown` first, which shows line breaks too and escapes markup."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError("stdout was closed by its reader")

    def render_str(self, text: str, **options: Any):
        return super().render_str("\n".join(printable(line) for line in text.split("\n")), **options)


def shown(value: Any) -> str:
    """A file name, label, source or message from outside, ready to go into console markup or a
    table cell: printed literally (`[b]` stays `[b]`), on one line, no control character raw."""
    return escape(printable(str(value)))


stdout = _Console(highlight=False, soft_wrap=True)
stderr = _Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_error_json(code: int, error_type: str, message: str, *, busy: bool = False) -> None:
    """The JSON document of a failed command (with --json): the same shape for every error."""
    print_json({"ok": False, "exit_code": int(code),
                "error": {"type": error_type, "message": message, "busy": busy}})


def finish(document: dict, json_out: bool, *, partial: bool = False, cancelled: bool = False,
           render: Callable[[], None] | None = None) -> None:
    """Print the result (JSON or human) and leave with the matching exit code."""
    code = ExitCode.CANCELLED if cancelled else ExitCode.PARTIAL if partial else ExitCode.OK
    if json_out:
        print_json({"ok": code == ExitCode.OK, "exit_code": int(code), **document})
    elif render is not None:
        render()
    if cancelled:
        stderr.print("[yellow]Cancelled[/]; finished work was kept.")
    raise typer.Exit(int(code))


def handles_errors(command: Callable) -> Callable:
    """Turn engine errors, and a file or folder this user may not read or write, into a clear message
    (and a JSON error document with --json) and exit 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        json_out = bool(kwargs.get("json_out"))
        try:
            return command(*args, **kwargs)
        except (WorkbenchError, KeyboardInterrupt, PermissionError) as error:
            cancelled = isinstance(error, (Cancelled, KeyboardInterrupt))
            message = ("cancelled" if isinstance(error, KeyboardInterrupt)
                       else f"{error.filename}: permission denied" if isinstance(error, PermissionError)
                       else str(error))
            code = ExitCode.CANCELLED if cancelled else ExitCode.FAILED
            if json_out:
                print_error_json(code, type(error).__name__, message, busy=isinstance(error, WorkspaceBusy))
            stderr.print(f"[bold red]error:[/] {shown(message)}" if not cancelled else f"[yellow]{shown(message)}[/]")
            raise typer.Exit(int(code)) from None

    return wrapper


class BadArguments(UsageError):
    """Options or arguments that are each valid but not together, or one a command cannot do without
    that click cannot require by itself: a usage error (exit 2, click's usage line on stderr)."""


@contextmanager
def usage_errors_as_json(json_out: bool) -> Iterator[None]:
    """With --json, a usage error also prints the JSON error document on stdout; click then says it
    on stderr and exits 2 as usual."""
    try:
        yield
    except UsageError as error:
        if json_out:
            print_error_json(error.exit_code, type(error).__name__, error.format_message())  # 2
        raise


class JsonUsageErrorsGroup(TyperGroup):
    """The root command: a usage error, found while parsing any command's arguments or raised by the
    command itself, honours --json anywhere on the command line."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        ctx.meta["json_out"] = "--json" in args  # meta is shared with every subcommand's context
        with usage_errors_as_json(ctx.meta["json_out"]):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: typer.Context) -> Any:
        with usage_errors_as_json(ctx.meta.get("json_out", False)):
            return super().invoke(ctx)


def render_rejections(rejections: list, limit: int = 20) -> None:
    if not rejections:
        return
    stderr.print(f"[yellow]{len(rejections)} rejected:[/]")
    for rejection in rejections[:limit]:
        stderr.print(f"  {printable(str(rejection))}", markup=False)
    if len(rejections) > limit:
        stderr.print(f"  … and {len(rejections) - limit} more (use --json for the full list)")
