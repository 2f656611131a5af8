"""`doctor`: check a workspace the way `git fsck` checks a repository, and with `repair` fix
what can be fixed without losing anything.

Checks, in order: the database opens and its schema is current (migrating it if not); no job is
recorded as running whose process is gone or silent; each model version's folder and files are
there and match the SHA-256 recorded when it was trained; no model folder is left unregistered;
the feature cache's entries decode; each clip's file is where it was, of the size and time it
had (and with `deep`, of the same content). Repairs: stale jobs are marked interrupted,
unregistered model folders are registered or set aside (engine/models/reconcile.py), unreadable
cache entries are dropped (features are extracted again when next needed). Missing or changed
audio and damaged model files are reported, never touched.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import lmdb

from engine.errors import InputError, WorkbenchError, WorkspaceBusy
from engine.jobs.log import interrupt_stale_jobs, stale_jobs
from engine.io import file_sha256
from engine.models.orphans import has_note, orphans_dir
from engine.models.reconcile import reconcile_models, unregistered_folders
from engine.models.registry import DAMAGED, NO_HASHES, list_versions, verify
from engine.progress import CancelToken, Reporter
from engine.store.clips import all_clips, known_files
from engine.store.schema import schema_version
from engine.workspace import DATABASE_FILE, Workspace


@dataclass(frozen=True)
class Finding:
    """One problem, and how it was fixed (None: it is still there)."""

    problem: str
    fixed: str | None = None

    def to_dict(self) -> dict:
        return {"problem": self.problem, "fixed": self.fixed}


@dataclass
class Check:
    name: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.fixed is None]

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": not self.remaining, "findings": [f.to_dict() for f in self.findings],
                "notes": self.notes}


@dataclass
class DoctorReport:
    workspace: Path
    repair: bool
    checks: list[Check] = field(default_factory=list)
    cancelled: bool = False

    @property
    def found(self) -> int:
        return sum(len(check.findings) for check in self.checks)

    @property
    def fixed(self) -> int:
        return sum(finding.fixed is not None for check in self.checks for finding in check.findings)

    @property
    def ok(self) -> bool:
        """Nothing wrong is left (every problem found was fixed)."""
        return not any(check.remaining for check in self.checks)

    def to_dict(self) -> dict:
        return {"workspace": str(self.workspace), "repair": self.repair, "ok": self.ok, "found": self.found,
                "fixed": self.fixed, "cancelled": self.cancelled, "checks": [check.to_dict() for check in self.checks]}


def _database(workspace: Workspace) -> Check:
    check = Check("database")
    try:
        with workspace.db.transaction() as con:
            before = schema_version(con)
        after = workspace.db.migrate()
    except WorkspaceBusy:
        raise
    except (duckdb.Error, WorkbenchError, OSError) as error:
        check.findings.append(Finding(f"{workspace.db.path}: cannot be opened or migrated: {error}"))
        return check
    check.notes.append(f"schema version {after}" + (f" (migrated from {before})" if before != after else ""))
    return check


def _jobs(workspace: Workspace, repair: bool) -> Check:
    check = Check("jobs")
    stale = interrupt_stale_jobs(workspace) if repair else stale_jobs(workspace)
    for job, reason in stale:
        check.findings.append(Finding(f"job {job.job_id} ({job.kind}) is recorded as {job.state} but {reason}",
                                      "marked interrupted" if repair else None))
    return check


def _models(workspace: Workspace, cancel: CancelToken) -> Check:
    check = Check("models")
    versions = list_versions(workspace)
    unhashed = 0
    for version in versions:
        if cancel.cancelled:
            break
        files = verify(version)
        if files.status == DAMAGED:
            check.findings.append(Finding(f"{version.ref}: model files damaged: {Path(files.file).name} ({files.problem})"))
        elif files.status == NO_HASHES:
            unhashed += 1
    check.notes.append(f"{len(versions)} version(s)")
    if unhashed:
        check.notes.append(f"{unhashed} version(s) trained before files were hashed: checked by loading them only")
    return check


def _orphans(workspace: Workspace, repair: bool) -> Check:
    check = Check("model folders")
    if repair:
        for outcome in reconcile_models(workspace):
            check.findings.append(Finding(f"{outcome.found.path} is in no registry row"
                                          + (f" ({outcome.found.problem})" if outcome.found.problem else ""),
                                          f"registered as {outcome.ref}" if outcome.ref else f"set aside in {outcome.aside}"))
    else:
        for folder in unregistered_folders(workspace):
            state = "complete: --repair registers it" if folder.problem is None else f"{folder.problem}: --repair sets it aside"
            check.findings.append(Finding(f"{folder.path} is in no registry row ({state})"))
    aside = orphans_dir(workspace)
    kept = [folder for folder in aside.iterdir() if has_note(folder)] if aside.is_dir() else []
    if kept:
        check.notes.append(f"{len(kept)} folder(s) kept in {aside}, each with a NOTE.txt saying why")
    return check


def _cache(workspace: Workspace, repair: bool, sample: int | None, reporter: Reporter | None,
           cancel: CancelToken) -> Check:
    check = Check("feature cache")
    if not workspace.cache_dir.is_dir():
        check.notes.append("no feature cache yet")
        return check
    try:
        cache = workspace.cache
    except lmdb.Error as error:
        check.findings.append(Finding(f"{workspace.cache_dir} cannot be opened: {error}"))
        return check
    try:
        read, bad = cache.unreadable(sample=sample, reporter=reporter, cancel=cancel)
        if repair and bad:
            cache.delete(bad)
    finally:
        cache.close()
    check.notes.append(f"{read} entr{'y' if read == 1 else 'ies'} read" + (" (a sample)" if sample else ""))
    for key in bad:
        check.findings.append(Finding(f"cache entry {key} cannot be decoded",
                                      "dropped (extracted again when next needed)" if repair else None))
    return check


def _clips(workspace: Workspace, deep: bool, reporter: Reporter | None, cancel: CancelToken) -> Check:
    check = Check("clips")
    with workspace.db.transaction() as con:
        clips = all_clips(con)
        recorded = known_files(con, [clip.path for clip in clips])
    if reporter is not None:
        reporter.start("checking clips' files", len(clips))
    for clip in clips:
        if cancel.cancelled:
            break
        problem = _clip_problem(Path(clip.path), clip.size_bytes, recorded.get(clip.path), clip.clip_id, deep)
        if problem is not None:
            check.findings.append(Finding(f"clip {clip.short_id} {clip.path}: {problem}"))
        if reporter is not None:
            reporter.advance(1)
    check.notes.append(f"{len(clips)} clip(s)" + (", contents compared" if deep else ", sizes and times compared"))
    return check


def _clip_problem(path: Path, size: int, recorded, clip_id: str, deep: bool) -> str | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return "file missing"
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if not stat.S_ISREG(status.st_mode):
        return "not a regular file"
    if status.st_size != size:
        return f"changed since import ({size} bytes then, {status.st_size} now)"
    if deep:
        try:
            return None if file_sha256(path) == clip_id else "changed since import (its contents differ)"
        except OSError as error:
            return f"cannot be read ({error.strerror})"
    if recorded is not None and recorded.mtime_ns != status.st_mtime_ns:
        return "modified since import (its time changed; --deep compares contents)"
    return None


def run_doctor(root: Path, *, repair: bool = False, deep: bool = False, cache_sample: int | None = None,
               reporter: Reporter | None = None, cancel: CancelToken | None = None) -> DoctorReport:
    """Check the workspace at `root` (and with `repair` fix what can be fixed); see the module's text."""
    root = Path(root).expanduser()
    if not (root / DATABASE_FILE).is_file():
        raise InputError(f"{root}: not a workbench workspace (no {DATABASE_FILE})")
    cancel = cancel or CancelToken()
    workspace = Workspace(root)  # not Workspace.open: that would reconcile model folders unasked
    report = DoctorReport(workspace.root, repair)
    report.checks.append(_database(workspace))
    if report.checks[0].remaining:
        return report  # the other checks read the database
    report.checks += [_jobs(workspace, repair), _models(workspace, cancel), _orphans(workspace, repair)]
    report.checks.append(_cache(workspace, repair, cache_sample, reporter, cancel))
    report.checks.append(_clips(workspace, deep, reporter, cancel))
    report.cancelled = cancel.cancelled
    return report

