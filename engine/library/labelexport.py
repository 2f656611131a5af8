"""Writing a taxonomy's labels out for other tools: Label Studio tasks, Audacity label tracks, JAMS.

- Label Studio (`tasks.json`): one task per clip with its labels (`data.audio`, one annotation whose
  results are `labels` regions for ranges and `choices` for whole-clip labels) and the active model's
  predictions of the taxonomy (`predictions`, each with its `model_version` and score); beside it a
  labelling config (`tasks.label-config.xml`) that names the same controls. Importing the file again
  gives the same labels.
- Audacity (one `.txt` per clip in a folder): `start<TAB>end<TAB>label` lines for sections and hits,
  a hit (a seconds range no longer than the hit length) as a point label (start == end).
- JAMS (one `.jams` per clip in a folder): the clip's beat grid as a `beat` annotation (each beat's
  value its position in the bar, 1-based) and its sections as a `segment_open` annotation.

Effective labels are written (the user's, else the imported one), never a model's labels: those go
to Label Studio as predictions. Every file is written atomically.
"""

from __future__ import annotations

import math
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

from engine.audio.beatgrid import BeatGrid
from engine.concepts import Clip, Label, Origin
from engine.errors import InputError
from engine.io import write_bytes_atomically, write_json_atomically
from engine.store.clips import all_clips
from engine.store.grids import grids_by_clip
from engine.store.labels import query_labels
from engine.store.predictions import Prediction, predictions_of
from engine.store.versions import list_versions

EXPORT_FORMATS = ("label-studio", "audacity", "jams")
JAMS_VERSION = "0.3.4"
# Label Studio's local-files storage serves a file below its document root at this URL.
LOCAL_FILES_URL = "/data/local-files/?d="
# The names of the controls in the exported tasks and config.
AUDIO_NAME, REGIONS_NAME, CHOICE_NAME = "audio", "label", "choice"


@dataclass
class ExportReport:
    format: str
    out: str
    taxonomy: str
    clips: int = 0
    labels: int = 0
    predictions: int = 0
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"format": self.format, "out": self.out, "taxonomy": self.taxonomy, "clips": self.clips,
                "labels": self.labels, "predictions": self.predictions, "files": self.files}


@dataclass
class _ClipLabels:
    clip: Clip
    grid: BeatGrid | None
    labels: list[Label]
    predictions: list[tuple[str, list[Prediction]]] = field(default_factory=list)  # (model version, its predictions)


def export_labels(workspace, format: str, out: Path, *, taxonomy: str | None = None, root: Path | None = None,
                  hit_length_s: float = 0.1) -> ExportReport:
    """Write the labels of `taxonomy` (default: the workspace's) in `format` to `out` (a file for
    Label Studio, a folder for Audacity and JAMS). `root`: Label Studio's local-files document root,
    which `data.audio` is made relative to. Returns what was written."""
    if format not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if not (math.isfinite(hit_length_s) and hit_length_s > 0):
        raise InputError(f"hit length must be a positive number of seconds, got {hit_length_s!r}")
    tax = workspace.taxonomy(taxonomy)
    out = Path(out).expanduser()
    with workspace.db.transaction(read_only=True) as con:
        clips = {clip.clip_id: clip for clip in all_clips(con)}
        grids = grids_by_clip(con)
        labels = defaultdict(list)
        for label in query_labels(con, taxonomy=tax.name):
            if label.origin != Origin.MODEL and label.clip_id in clips:
                labels[label.clip_id].append(label)
        active = [v for v in list_versions(con) if v.is_active and v.task == tax.name] if format == "label-studio" else []
        predicted = [(version.ref, predictions_of(con, version.model_id)) for version in active]
    items = {clip_id: _ClipLabels(clips[clip_id], grids.get(clip_id), found) for clip_id, found in labels.items()}
    for ref, predictions in predicted:
        by_clip = defaultdict(list)
        for prediction in predictions:
            by_clip[prediction.clip_id].append(prediction)
        for clip_id, found in by_clip.items():
            if clip_id in clips:
                items.setdefault(clip_id, _ClipLabels(clips[clip_id], grids.get(clip_id), [])).predictions.append((ref, found))
    ordered = sorted(items.values(), key=lambda item: item.clip.path)
    report = ExportReport(format, str(out), tax.name)
    if format == "label-studio" and out.is_dir():
        raise InputError(f"{out}: a folder; a Label Studio export is one file (--out tasks.json)")
    if format != "label-studio" and out.exists() and not out.is_dir():
        raise InputError(f"{out}: not a folder (Audacity and JAMS exports write one file per clip into a folder)")
    try:
        if format == "label-studio":
            _write_label_studio(ordered, out, root, tax.names, report)
        else:
            write = _write_audacity if format == "audacity" else _write_jams
            names = _file_names(ordered)
            for item in ordered:
                write(item, out / names[item.clip.clip_id], hit_length_s, report)
    except PermissionError:
        raise
    except OSError as error:
        raise InputError(f"{error.filename or out}: cannot write the export ({error.strerror or error})") from error
    return report


def _is_hit(label: Label, hit_length_s: float) -> bool:
    segment = label.segment
    return not segment.is_beat_range and not segment.is_whole and segment.end_s - segment.start_s <= hit_length_s + 1e-9


def _file_names(items: list[_ClipLabels]) -> dict[str, str]:
    """Each clip's file stem, made unique with its id's first characters where two clips share a name."""
    stems = defaultdict(list)
    for item in items:
        stems[Path(item.clip.path).stem].append(item.clip.clip_id)
    return {clip_id: stem if len(ids) == 1 else f"{stem}-{clip_id[:8]}"
            for stem, ids in stems.items() for clip_id in ids}


# Label Studio


def _audio_url(path: str, root: Path | None) -> str:
    if root is None:
        return path
    try:
        relative = Path(path).relative_to(root)
    except ValueError:
        return path
    return LOCAL_FILES_URL + urllib.parse.quote(relative.as_posix())


def _region(region_id: str, start_s: float, end_s: float, label: str) -> dict:
    return {"id": region_id, "from_name": REGIONS_NAME, "to_name": AUDIO_NAME, "type": "labels",
            "value": {"start": start_s, "end": end_s, "channel": 0, "labels": [label]}}


def _choice(region_id: str, label: str) -> dict:
    return {"id": region_id, "from_name": CHOICE_NAME, "to_name": AUDIO_NAME, "type": "choices",
            "value": {"choices": [label]}}


def _result(region_id: str, segment, label: str) -> dict:
    return _choice(region_id, label) if segment.is_whole else _region(region_id, segment.start_s, segment.end_s, label)


def _write_label_studio(items: list[_ClipLabels], out: Path, root: Path | None, names: list[str],
                        report: ExportReport) -> None:
    root = Path(root).expanduser().resolve() if root is not None else None
    tasks = []
    for number, item in enumerate(items, start=1):
        results = [_result(f"wb-{label.label_id}", label.segment, label.label) for label in item.labels]
        predictions = []
        for ref, found in item.predictions:
            result = [{**_result(f"wb-p{index}", p.segment, p.label), "score": p.confidence}
                      for index, p in enumerate(found)]
            predictions.append({"model_version": ref, "score": sum(p.confidence for p in found) / len(found),
                                "result": result})
            report.predictions += len(found)
        tasks.append({"id": number, "data": {AUDIO_NAME: _audio_url(item.clip.path, root), "clip_id": item.clip.clip_id},
                      "annotations": [{"result": results, "was_cancelled": False, "ground_truth": False}] if results else [],
                      "predictions": predictions})
        report.labels += len(results)
    report.clips = len(tasks)
    write_json_atomically(out, tasks)
    config = out.with_name(f"{out.stem}.label-config.xml")
    write_bytes_atomically(config, _label_config(names).encode())
    report.files = [str(out), str(config)]


def _label_config(names: list[str]) -> str:
    """A Label Studio labelling config with the controls the exported tasks use."""
    labels = "\n".join(f"    <Label value={quoteattr(name)}/>" for name in names)
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in names)
    return (f'<View>\n  <Audio name="{AUDIO_NAME}" value="${AUDIO_NAME}"/>\n'
            f'  <Labels name="{REGIONS_NAME}" toName="{AUDIO_NAME}">\n{labels}\n  </Labels>\n'
            f'  <Choices name="{CHOICE_NAME}" toName="{AUDIO_NAME}" choice="single">\n{choices}\n  </Choices>\n'
            "</View>\n")


# Audacity


def _write_audacity(item: _ClipLabels, stem: Path, hit_length_s: float, report: ExportReport) -> None:
    ranges = sorted((label for label in item.labels if not label.segment.is_whole),
                    key=lambda label: (label.segment.start_s, label.segment.end_s))
    if not ranges:
        return
    lines = []
    for label in ranges:
        start, end = label.segment.start_s, label.segment.end_s
        end = start if _is_hit(label, hit_length_s) else end
        lines.append(f"{start:.6f}\t{end:.6f}\t{label.label}\n")
    path = stem.with_name(stem.name + ".txt")
    write_bytes_atomically(path, "".join(lines).encode())
    report.clips += 1
    report.labels += len(lines)
    report.files.append(str(path))


# JAMS


def _jams_annotation(namespace: str, data: list[dict], duration: float, source: str) -> dict:
    return {"annotation_metadata": {"curator": {"name": "", "email": ""}, "annotator": {}, "version": "",
                                    "corpus": "", "annotation_tools": "workbench", "annotation_rules": "",
                                    "validation": "", "data_source": source},
            "namespace": namespace, "data": data, "sandbox": {}, "time": 0, "duration": duration}


def _write_jams(item: _ClipLabels, stem: Path, hit_length_s: float, report: ExportReport) -> None:
    clip, grid = item.clip, item.grid
    annotations = []
    if grid is not None:
        beats = grid.beat_times_within(clip.duration_s)
        data = [{"time": float(t), "duration": 0.0, "value": index % grid.beats_per_bar + 1, "confidence": None}
                for index, t in enumerate(beats)]
        annotations.append(_jams_annotation("beat", data, clip.duration_s, "workbench beat grid"))
    sections = sorted((label for label in item.labels if not label.segment.is_whole and not _is_hit(label, hit_length_s)),
                      key=lambda label: label.segment.start_s)
    if sections:
        data = [{"time": label.segment.start_s, "duration": label.segment.end_s - label.segment.start_s,
                 "value": label.label, "confidence": label.confidence} for label in sections]
        annotations.append(_jams_annotation("segment_open", data, clip.duration_s, "workbench labels"))
    if not annotations:
        return
    document = {"file_metadata": {"title": Path(clip.path).stem, "artist": "", "release": "",
                                  "duration": clip.duration_s, "identifiers": {}, "jams_version": JAMS_VERSION},
                "annotations": annotations, "sandbox": {"workbench": {"clip_id": clip.clip_id, "path": clip.path}}}
    path = stem.with_name(stem.name + ".jams")
    write_json_atomically(path, document)
    report.clips += 1
    report.labels += len(sections)
    report.files.append(str(path))

