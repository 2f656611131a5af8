"""Exporting labelled audio as a Hugging Face AudioFolder that `datasets.load_dataset("audiofolder",
data_dir=OUT)` reads.

Layout (as the AudioFolder docs describe it): one folder per split (`train/`, `validation/`,
`test/`), each holding its audio files and a `metadata.csv` whose `file_name` column names them
and whose other columns (label, licence, dataset, source, clip id, segment) become features; a
dataset card `README.md` whose YAML front matter declares the licence(s) and whose text says how
many clips carry each licence and where they came from. A whole-clip label exports the clip's own
bytes; a time or beat range is cut out and written as WAV. The folder is written beside OUT and
swapped into place, so a failed export leaves OUT as it was.
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from engine.audio.decode import decode
from engine.concepts import Reason, Rejection
from engine.datasets.export import split_items, workspace_items
from engine.errors import InputError
from engine.io import write_folder_atomically
from engine.store.provenance import provenance_of

HF_SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}  # workbench split → Hugging Face's name
UNKNOWN_LICENCE = "unknown"  # Hugging Face's id for a licence nobody declared (the workspace's own audio)
METADATA_COLUMNS = ("file_name", "label", "license", "dataset", "source", "clip_id", "start_s", "end_s")


@dataclass
class AudioFolderReport:
    out: str
    clips: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    licenses: dict[str, int] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"out": self.out, "format": "audiofolder", "clips": self.clips, "splits": self.splits,
                "licenses": self.licenses, "rejected": len(self.rejections),
                "rejections": [r.to_dict() for r in self.rejections], "seconds": round(self.seconds, 3)}


def _card(taxonomy: str, licences: Counter, datasets: Counter, splits: dict[str, int]) -> str:
    """The dataset card: YAML front matter with the licence(s), then what the folder holds."""
    names = sorted(licences)
    licence = names[0] if len(names) == 1 else "\n" + "".join(f"- {name}\n" for name in names).rstrip("\n")
    lines = ["---", f"license: {licence}", f"pretty_name: workbench {taxonomy} export",
             "task_categories:", "- audio-classification", "---", "",
             f"# workbench export: taxonomy {taxonomy}", "",
             "Exported by workbench as a Hugging Face AudioFolder: one folder per split, each with a `metadata.csv`",
             "(`file_name`, `label`, `license`, `dataset`, `source`, `clip_id`, `start_s`, `end_s`).", "",
             "## Licences", "", "| licence | clips |", "|---|---|"]
    lines += [f"| {name} | {licences[name]} |" for name in names]
    lines += ["", "Each clip keeps its own licence in the `license` column; `unknown` marks audio that came with",
              "none declared (the workspace's own files). Honour each licence's terms (attribution for CC-BY).", "",
              "## Sources", "", "| dataset | clips |", "|---|---|"]
    lines += [f"| {name} | {count} |" for name, count in sorted(datasets.items())]
    lines += ["", "## Splits", "", *(f"- {split}: {count} clips" for split, count in splits.items()), ""]
    return "\n".join(lines)


def export_audiofolder(workspace, out: Path, *, taxonomy: str | None = None, split_by: str = "clip",
                       val: float = 0.15, test: float = 0.15, seed: int = 0,
                       min_confidence: float = 0.0) -> AudioFolderReport:
    """Write the labelled segments of a taxonomy as an AudioFolder with a card (see the module)."""
    started = time.perf_counter()
    tax = workspace.taxonomy(taxonomy)
    items = workspace_items(workspace, tax.name, min_confidence)
    if not items:
        raise InputError(f"no labelled segments in taxonomy {tax.name} to export")
    splits = split_items(items, split_by=split_by, val=val, test=test, seed=seed)
    with workspace.db.transaction(read_only=True) as con:
        provenance = provenance_of(con, sorted({item.clip_id for item in items}))
    report = AudioFolderReport(str(Path(out).expanduser().resolve()))
    licences: Counter = Counter()
    datasets: Counter = Counter()

    def fill(staging: Path) -> None:
        rows: dict[str, list[dict]] = {}
        for index, (item, split) in enumerate(zip(items, splits)):
            folder = HF_SPLIT_NAMES[str(split)]
            segment = item.segment
            whole = segment.start_s is None
            suffix = Path(item.path).suffix.lower() if whole else ".wav"
            name = f"{index:05d}_{item.clip_id[:12]}{suffix}"
            target = staging / folder / name
            target.parent.mkdir(exist_ok=True)
            try:
                if whole:
                    shutil.copyfile(item.path, target)
                else:
                    samples, rate = decode(item.path, start_s=segment.start_s, end_s=segment.end_s)
                    buffer = io.BytesIO()
                    soundfile.write(buffer, samples, rate, format="WAV")
                    target.write_bytes(buffer.getvalue())
            except (OSError, RuntimeError, ValueError, soundfile.LibsndfileError) as error:
                report.rejections.append(Rejection(item.path, Reason.UNREADABLE, f"not exported ({error})"))
                continue
            origin = provenance.get(item.clip_id)
            licence = origin.license if origin else UNKNOWN_LICENCE
            licences[licence] += 1
            datasets[origin.dataset if origin else "this workspace"] += 1
            rows.setdefault(folder, []).append({
                "file_name": name, "label": item.label, "license": licence,
                "dataset": origin.where if origin else "", "source": item.source,
                "clip_id": item.clip_id, "start_s": "" if whole else segment.start_s,
                "end_s": "" if whole else segment.end_s})
        for folder, lines in rows.items():
            with open(staging / folder / "metadata.csv", "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=METADATA_COLUMNS)
                writer.writeheader()
                writer.writerows(lines)
        report.splits = {folder: len(rows[folder]) for folder in HF_SPLIT_NAMES.values() if folder in rows}
        report.clips = sum(report.splits.values())
        if not report.clips:
            raise InputError(f"no segment of taxonomy {tax.name} could be exported: "
                             + "; ".join(str(r) for r in report.rejections[:3]))
        (staging / "README.md").write_text(_card(tax.name, licences, datasets, report.splits))

    write_folder_atomically(Path(out), fill)
    report.licenses = dict(sorted(licences.items()))
    report.seconds = time.perf_counter() - started
    return report
