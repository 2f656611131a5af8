"""Short-lived DuckDB connections with a bounded wait for a busy workspace.

DuckDB lets one process at a time hold a database file open for writing. Every engine call
therefore opens the file, runs one transaction and closes it again, so that a long job in one
process (which writes progress now and then) and a quick `stats` in another both get their
turn. A process that cannot get the file within `busy_timeout_s` gets `WorkspaceBusy`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from engine.errors import WorkspaceBusy
from engine.settings import load_settings
from engine.store.schema import migrate

def _is_lock_conflict(error: duckdb.Error) -> bool:
    text = str(error)
    if isinstance(error, (duckdb.ConnectionException, duckdb.ResourceInUseException)):
        # This process holds the file open the other way (read-only vs read-write) in another
        # thread, e.g. the TUI saving a label while a screen reads: wait for it like for a lock.
        return "different configuration" in text or "already attached" in text
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set lock" in text)


class Database:
    """The workspace database file; hands out one transaction at a time."""

    def __init__(self, path: Path, busy_timeout_s: float | None = None) -> None:
        self.path = Path(path)
        self.busy_timeout_s = load_settings().busy_timeout if busy_timeout_s is None else busy_timeout_s

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.busy_timeout_s
        pause = 0.01
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException, duckdb.ResourceInUseException) as error:
                if not _is_lock_conflict(error):
                    raise
                if time.monotonic() >= deadline:
                    raise WorkspaceBusy(
                        f"workspace busy: {self.path} is held by another workbench process "
                        f"(waited {self.busy_timeout_s:g} s). Try again when it finishes, or raise "
                        "WORKBENCH_BUSY_TIMEOUT."
                    ) from error
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 0.2)

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction on a fresh connection: committed on success, rolled back on error."""
        connection = self._open(read_only)
        try:
            connection.execute("BEGIN TRANSACTION")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    def migrate(self) -> int:
        """Bring the schema up to date; returns the schema version."""
        with self.transaction() as connection:
            return migrate(connection)
