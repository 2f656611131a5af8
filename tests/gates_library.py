"""A small labelled drum workspace for the gate and triage tests, and ways to plant problems in it.

Three classes from three packs, six hits each (54 clips), imported as a curated folder with dsp
features extracted; built once per test module, copied for each test that changes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from conftest import curated_library, write_hits
from engine.audio.synth import DEMO_PACKS
from engine.concepts import Origin, Segment
from engine.features.service import extract_workspace
from engine.features.spec import FeatureSpec
from engine.gates.core import default_settings, run_gates
from engine.gates.dataset import DatasetContext
from engine.library.importer import import_folder
from engine.store.labels import LabelWrite, upsert_labels
from engine.workspace import Workspace

CLASSES = ("kick", "snare", "hihat_closed")
PACKS = DEMO_PACKS[:3]
PER_PACK = 6
# thresholds a clean small library passes: the taxonomy's minimum of 30 is for real libraries
SMALL = {"dataset.min_class_count": {"floor": 10}}


def build(root: Path) -> Path:
    library = curated_library(root / "library", classes=CLASSES, per_pack=PER_PACK, packs=PACKS)
    workspace = Workspace.open(root / "ws")
    import_folder(workspace, library, curated=True, workers=1)
    extract_workspace(workspace, FeatureSpec.parse("dsp"), workers=1)
    return root / "ws"


def settings(**overrides: dict) -> dict:
    """Default settings with SMALL and the given `{"dataset.x": {...}}` overrides."""
    chosen = default_settings()
    for gate_id, values in {**SMALL, **{k.replace("__", "."): v for k, v in overrides.items()}}.items():
        chosen[gate_id].update(values)
    return chosen


def run(workspace: Workspace, chosen: dict | None = None, taxonomy: str | None = None) -> dict:
    """gate id → result of every dataset gate."""
    context = DatasetContext(workspace, taxonomy, workers=1)
    report = run_gates("dataset", context, chosen or settings(), subject=context.subject())
    return {result.gate: result for result in report.results}


def library_files(root: Path, label: str, pack) -> list[Path]:
    return sorted((root / "library" / label / pack.name).glob("*"))


def import_files(workspace: Workspace, root: Path, files: dict[str, np.ndarray], rate: int = 22050) -> None:
    """Write {relative path under a new curated folder: samples} and import the folder (curated)."""
    folder = root / "planted"
    for relative, samples in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, samples, rate)
    import_folder(workspace, folder, curated=True, workers=1)
    extract_workspace(workspace, FeatureSpec.parse("dsp"), workers=1)


def copy_at_gain(source: Path, destination: Path, gain: float = 0.5) -> Path:
    """The same sound at another level: a different file (and clip) with the same features."""
    samples, rate = soundfile.read(source, dtype="float32")
    destination.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(destination, samples * gain, rate, subtype="FLOAT")
    return destination


def relabel(workspace: Workspace, clip_id: str, label: str, taxonomy: str = "drums",
            segment: Segment = Segment()) -> None:
    with workspace.db.transaction() as con:
        upsert_labels(con, [LabelWrite(clip_id, taxonomy, label, Origin.USER, 1.0, segment)])


def clip_of(workspace: Workspace, path: Path) -> str:
    with workspace.db.transaction(read_only=True) as con:
        return con.execute("SELECT clip_id FROM clip_files WHERE path = ?", [str(path.resolve())]).fetchone()[0]


def more_hits(folder: Path, kind: str, count: int, pack=DEMO_PACKS[3], seed: int = 7) -> list[Path]:
    return write_hits(folder, kind, count, pack=pack, seed=seed)
