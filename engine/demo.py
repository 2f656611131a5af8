"""The demo: a synthetic library imported into a workspace, end to end.

Five synthetic drum packs (9 classes, distinct timbres, rates and formats) as a curated folder,
plus two DJ tracks with beat grids and section labels in a manifest. The demo imports them,
sets the grids, labels the sections by beats and extracts dsp features.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from engine.audio.beatgrid import BeatGrid
from engine.audio.synth import DRUM_CLASSES, write_curated_library, synthesize_section_track
from engine.features.service import extract_workspace
from engine.features.spec import FeatureSpec
from engine.library.grids import set_grid
from engine.library.importer import import_folder, import_label_file
from engine.progress import CancelToken, Reporter
from engine.stats import workspace_stats
from engine.workspace import Workspace

TRACK_RATE = 22050
DEMO_TRACKS = {
    "track_a": (124.0, 0.05, [("intro", 8), ("build", 4), ("drop", 8), ("break", 4), ("build", 4), ("drop", 8), ("outro", 4)]),
    "track_b": (118.0, 0.12, [("intro", 4), ("verse", 8), ("chorus", 8), ("break", 4), ("chorus", 8), ("outro", 4)]),
}


@dataclass
class DemoStep:
    name: str
    result: str
    seconds: float


@dataclass
class DemoSummary:
    workspace: str
    steps: list[DemoStep] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    cancelled: bool = False

    def to_dict(self) -> dict:
        return {"workspace": self.workspace, "cancelled": self.cancelled,
                "steps": [{"name": s.name, "result": s.result, "seconds": round(s.seconds, 3)} for s in self.steps],
                "stats": self.stats}


def write_demo_tracks(folder: Path) -> Path:
    """Write the DJ tracks and a sections manifest (beat ranges); returns the manifest's path."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "sections.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "start_beat", "end_beat", "source"])
        for seed, (name, (bpm, offset, sections)) in enumerate(DEMO_TRACKS.items()):
            audio, placed = synthesize_section_track(sections, bpm=bpm, offset_s=offset, sample_rate=TRACK_RATE, seed=seed)
            soundfile.write(folder / f"{name}.flac", audio, TRACK_RATE)
            for section in placed:
                writer.writerow([f"{name}.flac", section["label"], section["start_beat"], section["end_beat"], "demo_tracks"])
    return manifest


def run_demo(root: Path, *, clips_per_class_per_pack: int = 7, workers: int | None = None,
             reporter: Reporter | None = None, cancel: CancelToken | None = None) -> DemoSummary:
    root = Path(root).expanduser()
    workspace = Workspace.open(root)
    summary = DemoSummary(str(workspace.root))

    def step(name: str, started: float, result: str) -> None:
        summary.steps.append(DemoStep(name, result, time.perf_counter() - started))

    started = time.perf_counter()
    library = workspace.root / "demo_library"
    paths = write_curated_library(library / "curated", clips_per_class_per_pack=clips_per_class_per_pack)
    manifest = write_demo_tracks(library / "tracks")
    step("synthesise", started, f"{len(paths)} one-shots in {len(DRUM_CLASSES)} classes, {len(DEMO_TRACKS)} tracks")

    started = time.perf_counter()
    report = import_folder(workspace, library / "curated", curated=True, taxonomy="drums", workers=workers,
                           reporter=reporter, cancel=cancel)
    step("import one-shots", started, f"{report.added} new, {report.unchanged} unchanged, {report.labelled} labels")

    started = time.perf_counter()
    import_folder(workspace, library / "tracks", source="demo_tracks", workers=workers, reporter=reporter, cancel=cancel)
    for name, (bpm, offset, _) in DEMO_TRACKS.items():
        set_grid(workspace, str(library / "tracks" / f"{name}.flac"), BeatGrid.constant(bpm, offset))
    sections = import_label_file(workspace, manifest, taxonomy="sections", workers=workers)
    step("import tracks + sections", started, f"{len(DEMO_TRACKS)} grids, {sections.labelled} beat-range labels")

    started = time.perf_counter()
    extraction = extract_workspace(workspace, FeatureSpec.parse("dsp"), taxonomy="drums", labelled_only=True,
                                   workers=workers, reporter=reporter, cancel=cancel)
    summary.cancelled = extraction.cancelled
    step("extract dsp features", started, f"{extraction.extracted} extracted, {extraction.cached} from cache")

    stats = workspace_stats(workspace)
    summary.stats = stats.to_dict()
    drums = next(t for t in stats.taxonomies if t.taxonomy == "drums")
    step("stats", time.perf_counter(), f"{stats.clips} clips; drums "
         + ("ready for training" if drums.ready else "not ready: " + "; ".join(drums.reasons)))
    return summary
