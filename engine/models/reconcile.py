"""Finishing registrations that a kill cut short.

Registering moves a model folder to models/NAME/vN and inserts its row in one transaction; a kill
between the two leaves a folder no row names. `reconcile_models` (run when a workspace is opened,
before every registration, and by `doctor --repair`) registers such a folder when it is complete
(engine/models/orphans.py) and sets it aside in models/.orphans/ with a note when it is not.
While it looks it holds the workspace database, so it never sees a registration half-way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import WorkbenchError
from engine.features.spec import FeatureSpec
from engine.models.orphans import ORPHANS, has_note, orphans_dir, read_registration, set_aside, write_note
from engine.store import versions

_VERSION_FOLDER = re.compile(r"v\d+")


@dataclass(frozen=True)
class UnregisteredFolder:
    """A model folder no registry row names; `problem` is None when it can be registered."""

    path: Path
    problem: str | None

    def to_dict(self) -> dict:
        return {"path": str(self.path), "complete": self.problem is None, "problem": self.problem}


@dataclass(frozen=True)
class Reconciled:
    """What became of an unregistered folder: registered as `ref`, or set aside at `aside`."""

    found: UnregisteredFolder
    ref: str | None = None
    aside: Path | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return {**self.found.to_dict(), "registered_as": self.ref,
                "set_aside": str(self.aside) if self.aside else None, "reason": self.reason}

    def __str__(self) -> str:
        if self.ref is not None:
            return f"{self.found.path}: registration finished as {self.ref}"
        return f"{self.found.path}: set aside in {self.aside} ({self.reason})"


def _on_disk(workspace) -> list[Path]:
    """models/NAME/vN folders, and folders a reconciliation moved aside to register again (in
    models/.orphans/, without a note)."""
    found = []
    for home in sorted(workspace.models_dir.iterdir()) if workspace.models_dir.is_dir() else []:
        if home.is_dir() and not home.name.startswith(".") and home != workspace.embeddings_dir:
            found += [folder for folder in sorted(home.iterdir())
                      if folder.is_dir() and _VERSION_FOLDER.fullmatch(folder.name)]
    aside = orphans_dir(workspace)
    if aside.is_dir():
        found += [folder for folder in sorted(aside.iterdir()) if folder.is_dir() and not has_note(folder)]
    return found


def _problem(con, folder: Path) -> str | None:
    """Why `folder` cannot be registered (None: it can). A models/NAME/vN folder whose number was
    used up already (the version was deleted, or a later one registered) is not registered again."""
    if folder.parent.name != ORPHANS and int(folder.name[1:]) < versions.next_version_number(con, folder.parent.name):
        return (f"{folder.parent.name}@{folder.name[1:]} is not in the registry and its number is used up "
                "(the version was deleted, or later ones were registered); it is not registered again")
    return read_registration(folder)[1]


def _unregistered(workspace, con) -> list[UnregisteredFolder]:
    """The folders on disk that no version row names."""
    registered = {workspace.root / version.artifact_dir for version in versions.list_versions(con)}
    return [UnregisteredFolder(folder, _problem(con, folder))
            for folder in _on_disk(workspace) if folder not in registered]


def unregistered_folders(workspace) -> list[UnregisteredFolder]:
    """The model folders a cut-short registration left, complete or not; nothing is changed."""
    if not _on_disk(workspace):
        return []
    with workspace.db.transaction() as con:
        return _unregistered(workspace, con)


def reconcile_models(workspace) -> list[Reconciled]:
    """Register every complete unregistered folder as the next version of its name, and set the
    others aside with a note; returns what was done."""
    from engine.models.registry import register

    if not _on_disk(workspace):
        return []
    with workspace.db.transaction() as con:  # no registration can move a folder meanwhile
        found = _unregistered(workspace, con)
        if not found:
            return []
        # out of the way of the next registration, which would reuse the number
        moved = [(folder, folder.path if folder.path.parent.name == ORPHANS else
                  set_aside(workspace, folder.path, folder.problem)) for folder in found]
    done = []
    for folder, place in moved:
        if folder.problem is not None:
            if place == folder.path:  # already in .orphans: give it its note
                write_note(place, "Found incomplete", folder.problem)
            done.append(Reconciled(folder, aside=place, reason=folder.problem))
            continue
        fields, problem = read_registration(place)
        try:
            if problem is not None:
                raise WorkbenchError(problem)
            version = register(workspace, artifact_dir=place, **{
                **fields, "feature_spec": FeatureSpec(**fields["feature_spec"])})
        except (WorkbenchError, OSError, TypeError, ValueError) as error:
            reason = f"its registration could not be finished: {error}"
            write_note(place, f"Set aside from {folder.path}", reason)
            done.append(Reconciled(folder, aside=place, reason=reason))
            continue
        done.append(Reconciled(folder, ref=version.ref))
    return done
