"""A workspace: one folder holding a library's database, feature cache, models, runs and reports.

    <workspace>/
      workbench.duckdb   clips, labels, beat grids, jobs, model versions, predictions, gate reports
      cache.lmdb/        cached features, keyed by (clip hash, segment, extractor, params, code version)
      models/            model versions; models/embeddings/ holds ONNX embedding models
      runs/              job logs and scratch files
      tracking/          experiment logs (`train --log`): TensorBoard events, mlflow.db, W&B offline runs
      reports/           gate and health reports
      taxonomies/        the workspace's own taxonomies (TOML), next to the built-in ones
      techniques/        the workspace's own technique catalogues (JSON, one per taxonomy)
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from engine.errors import InputError
from engine.settings import data_home, load_settings
from engine.store.database import Database
from engine.store.settings import get_setting, set_setting
from engine.taxonomy import DEFAULT_TAXONOMY, Taxonomy, TaxonomyRegistry, builtin_taxonomy_dir
from engine.techniques import TechniqueCatalogue, builtin_technique_dir, catalogue_for

DATABASE_FILE = "workbench.duckdb"


def default_workspace_path() -> Path:
    """The workspace setting ($WORKBENCH_WORKSPACE, or the settings file), else ~/.local/share/workbench/workspace."""
    return load_settings().workspace or data_home() / "workspace"


def default_demo_path() -> Path:
    return data_home() / "demo"


class Workspace:
    def __init__(self, root: Path, busy_timeout_s: float | None = None) -> None:
        self.root = Path(root).resolve()
        self.db = Database(self.root / DATABASE_FILE, busy_timeout_s)

    @classmethod
    def open(cls, root: Path, *, create: bool = True, busy_timeout_s: float | None = None) -> Workspace:
        """Open (and if asked, create) a workspace; runs schema migrations."""
        root = Path(root).expanduser()
        database = root / DATABASE_FILE
        if not database.exists():
            if not create:
                raise InputError(f"{root}: not a workbench workspace (no {DATABASE_FILE})")
            if root.exists() and not root.is_dir():
                raise InputError(f"{root}: is a file, not a workspace folder")
            if root.exists() and any(root.iterdir()):
                raise InputError(
                    f"{root}: folder is not empty and holds no workspace; choose an empty or new folder"
                )
        workspace = cls(root, busy_timeout_s)
        for folder in (workspace.root, workspace.models_dir, workspace.embeddings_dir, workspace.runs_dir,
                       workspace.reports_dir, workspace.taxonomies_dir):
            folder.mkdir(parents=True, exist_ok=True)
        workspace.db.migrate()
        from engine.models.reconcile import reconcile_models

        reconcile_models(workspace)  # a registration a kill cut short is finished, or set aside with a note
        return workspace

    # -- folders -------------------------------------------------------------------------
    @property
    def cache_dir(self) -> Path:
        return self.root / "cache.lmdb"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def embeddings_dir(self) -> Path:
        return self.models_dir / "embeddings"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def tracking_dir(self) -> Path:
        """Experiment logs written by `train --log` (engine/training/tracking.py); made on first use."""
        return self.root / "tracking"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def taxonomies_dir(self) -> Path:
        return self.root / "taxonomies"

    # -- feature cache -------------------------------------------------------------------
    @cached_property
    def cache(self):
        from engine.features.cache import FeatureCache

        return FeatureCache(self.cache_dir)

    # -- settings ------------------------------------------------------------------------
    def setting(self, key: str, default: str | None = None) -> str | None:
        with self.db.transaction() as con:
            value = get_setting(con, key)
        return default if value is None else value

    def set_setting(self, key: str, value: str) -> None:
        with self.db.transaction() as con:
            set_setting(con, key, value)

    # -- taxonomies ----------------------------------------------------------------------
    @cached_property
    def taxonomies(self) -> TaxonomyRegistry:
        return TaxonomyRegistry(builtin_taxonomy_dir(), self.taxonomies_dir)

    @property
    def default_taxonomy_name(self) -> str:
        return self.setting("default_taxonomy", DEFAULT_TAXONOMY)

    def taxonomy(self, name: str | None = None) -> Taxonomy:
        return self.taxonomies.get(name or self.default_taxonomy_name)

    @property
    def techniques_dir(self) -> Path:
        return self.root / "techniques"

    def technique_catalogue(self, taxonomy: str | None = None) -> TechniqueCatalogue:
        """The technique catalogue of a taxonomy: the workspace's own, else the built-in one."""
        return catalogue_for(self.taxonomy(taxonomy), builtin_technique_dir(), self.techniques_dir)
