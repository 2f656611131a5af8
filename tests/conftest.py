"""Shared fixtures: workspaces and synthesised audio written to disk."""

from __future__ import annotations

import os
import shutil
import tempfile

# Tests call librosa directly too (not only through the engine, which serialises the first
# compile): give each test process its own numba cache so they cannot race on one.
os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="workbench-tests-numba-"))
# A settings file of the person running the tests (engine/settings.py) must not change them.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="workbench-tests-config-")
# A bug in a TUI worker fails the test instead of becoming a notification (tui/workers.py).
os.environ.setdefault("WORKBENCH_TUI_STRICT", "1")

from pathlib import Path

import numpy as np
import pytest
import soundfile

from engine.audio.synth import DEMO_PACKS, synthesize_hit
from engine.workspace import Workspace


def copy_workspace(template: Path, folder: Path) -> Path:
    """A workspace of the caller's own, copied from a template that tests must not change."""
    copy = folder / "ws"
    shutil.copytree(template, copy)
    return copy


def copy_workspace_with_versions(template: Path, versions, folder: Path) -> Path:
    """A copy of a template workspace with its model versions registered again, each with its own copy
    of the artifacts (versions keep absolute artifact paths, so a plain copy would load, and delete,
    the template's files)."""
    from engine.models.registry import register

    root = copy_workspace(template, folder)
    workspace = Workspace.open(root)
    for v in versions:
        artifact = folder / "artifacts" / f"{v.name}-{v.version}"
        shutil.copytree(v.artifact_dir, artifact)
        register(workspace, name=v.name, task=v.task, kind=v.kind, artifact_dir=artifact, feature_spec=v.spec,
                 classes=v.label_set, label_counts=v.label_counts, hyperparams=v.hyperparams, metrics=v.metrics,
                 dataset_fingerprint=v.dataset_fingerprint, job_id=v.job_id, meta=v.meta)
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "ws")


def write_hits(folder: Path, kind: str, count: int, pack=DEMO_PACKS[0], seed: int = 0, fmt: str = "wav") -> list[Path]:
    """`count` synthesised hits of one class written as files into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        path = folder / f"{kind}_{seed}_{index:02d}.{fmt}"
        soundfile.write(path, synthesize_hit(kind, pack, rng), pack.sample_rate)
        paths.append(path)
    return paths


def write_tone(path: Path, seconds: float = 2.0, rate: int = 22050, channels: int = 1, freq: float = 220.0) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.repeat(tone[:, None], channels, axis=1) if channels > 1 else tone, rate)
    return path


def curated_library(root: Path, classes=("kick", "snare", "hihat_closed"), per_pack: int = 4,
                    packs=DEMO_PACKS[:3]) -> Path:
    for pack_number, pack in enumerate(packs):
        for kind in classes:
            write_hits(root / kind / pack.name, kind, per_pack, pack=pack, seed=pack_number)
    return root


def track_and_hits(workspace: Workspace, folder: Path) -> Workspace:
    """Import a 16-second tone `track.wav` on a 120 bpm grid (beats 0–32, 8 bars) and two
    unlabelled kick hits from `folder`."""
    from engine.audio.beatgrid import BeatGrid
    from engine.library.grids import set_grid
    from engine.library.importer import import_folder

    write_tone(folder / "track.wav", seconds=16.0)
    write_hits(folder / "hits", "kick", 2)
    import_folder(workspace, folder, workers=1)
    set_grid(workspace, "track.wav", BeatGrid.constant(120.0))
    return workspace


def clip_id_of(workspace: Workspace, name: str) -> str:
    """The id of the clip whose path ends with `name`."""
    with workspace.db.transaction() as con:
        return con.execute("SELECT clip_id FROM clips WHERE ends_with(path, ?)", [name]).fetchone()[0]


def curated_workspace_with_dsp(root: Path) -> Path:
    """A workspace of a small curated library (3 classes × 3 packs × 4 hits) with its dsp features
    cached: the template of the screens that train."""
    from engine.features.spec import FeatureSpec
    from engine.library.importer import import_folder
    from engine.training.data import training_data

    curated_library(root / "curated", per_pack=4)
    workspace = Workspace.open(root / "ws")
    import_folder(workspace, root / "curated", curated=True, workers=1)
    training_data(workspace, FeatureSpec.parse("dsp"), min_class_samples=1, workers=1)  # fills the feature cache
    return workspace.root
