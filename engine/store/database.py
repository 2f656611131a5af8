"""Short-lived attachments of the workspace's DuckDB file, with a bounded wait for a busy workspace.

DuckDB lets one process at a time hold a database file open for writing. Every engine call
therefore takes the file, runs one transaction and lets it go again, so that a long job in one
process (which writes progress now and then) and a quick `stats` in another both get their
turn. A process that cannot get the file within `busy_timeout_s` gets `WorkspaceBusy`.

Taking the file is an ATTACH to one in-memory DuckDB kept per process, and letting it go a
DETACH when the process's last transaction on it ends: starting a DuckDB costs about 15 ms,
attaching a file to a running one about 1 ms. Transactions of several threads share the
attachment (a read-only one waits for the file while this process has it attached read-only).
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from dataclasses import dataclass
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


@dataclass
class _Attachment:
    key: tuple[int, str]  # (pid, the file's resolved path): the entry in `_attached`
    alias: str
    read_only: bool
    users: int = 0


_guard = threading.Condition()  # the attachments and the process's DuckDB: changed by one thread at a time
_instances: dict[int, duckdb.DuckDBPyConnection] = {}  # by pid: a forked child starts its own
_attached: dict[tuple[int, str], _Attachment] = {}
_aliases = itertools.count()


def _instance() -> duckdb.DuckDBPyConnection:
    pid = os.getpid()
    if pid not in _instances:
        _instances[pid] = duckdb.connect(":memory:")
    return _instances[pid]


class Database:
    """The workspace database file; hands out one transaction at a time."""

    def __init__(self, path: Path, busy_timeout_s: float | None = None) -> None:
        self.path = Path(path)
        self.busy_timeout_s = load_settings().busy_timeout if busy_timeout_s is None else busy_timeout_s

    def _key(self) -> tuple[int, str]:
        return os.getpid(), str(self.path.resolve())

    def _attach(self, read_only: bool) -> tuple[_Attachment, duckdb.DuckDBPyConnection]:
        """This process's attachment of the file (made now if it has none), counted as used, and a
        connection of the process's DuckDB to run the transaction on."""
        deadline = time.monotonic() + self.busy_timeout_s
        pause = 0.01
        key = self._key()
        with _guard:
            while True:
                attachment = _attached.get(key)
                if attachment is not None and (read_only or not attachment.read_only):
                    attachment.users += 1
                    return attachment, _instance().cursor()
                if attachment is None:
                    alias = f"workspace_{next(_aliases)}"
                    quoted = str(self.path).replace("'", "''")
                    try:
                        _instance().execute(f"ATTACH '{quoted}' AS {alias}" + (" (READ_ONLY)" if read_only else ""))
                    except (duckdb.IOException, duckdb.ConnectionException, duckdb.ResourceInUseException,
                            duckdb.BinderException) as error:
                        if not _is_lock_conflict(error):
                            raise
                    else:
                        _attached[key] = attachment = _Attachment(key, alias, read_only, users=1)
                        return attachment, _instance().cursor()
                if time.monotonic() >= deadline:  # another process holds the file, or this one read-only
                    raise WorkspaceBusy(
                        f"workspace busy: {self.path} is held by another workbench process "
                        f"(waited {self.busy_timeout_s:g} s). Try again when it finishes, or raise "
                        "WORKBENCH_BUSY_TIMEOUT."
                    )
                _guard.wait(pause * (0.5 + random.random()))
                pause = min(pause * 2, 0.2)

    def _release(self, attachment: _Attachment) -> None:
        """One use of the attachment less; the last detaches the file, so other processes can take it."""
        with _guard:
            attachment.users -= 1
            if attachment.users == 0:
                del _attached[attachment.key]
                _instance().execute(f"DETACH {attachment.alias}")
                _guard.notify_all()

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction: committed on success, rolled back on error."""
        attachment, connection = self._attach(read_only)
        try:
            connection.execute(f"USE {attachment.alias}")
            connection.execute("BEGIN TRANSACTION")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()
            self._release(attachment)

    def migrate(self) -> int:
        """Bring the schema up to date; returns the schema version."""
        with self.transaction() as connection:
            return migrate(connection)
