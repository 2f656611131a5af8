"""Importing a library into a workspace: audio folders (plain or curated) and label files.

Clips are known by the hash of their bytes, so importing a folder twice adds nothing, and a file
that moved is found again at its new path. Every file or row that cannot be used is reported
with its path and the reason, and everything else is imported.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.concepts import Clip, JobState, LabelRecord, Origin, Reason, Rejection, Segment
from engine.errors import InputError
from engine.jobs.kinds import job_kind
from engine.library.clips import is_unchanged
from engine.library.editing import carry_user_labels, import_labels
from engine.library.labels import make_segment
from engine.library.hf import (DatasetRead, Entry, SPLIT_NAMES, check_licence, is_hf_dataset, read_audiofolder,
                               read_card, read_parquet)
from engine.library.scan import ProbedFile, folder_roles, is_hidden, probe_files, scan_folder
from engine.progress import CancelToken, Reporter
from engine.store.clips import (clips_by_ids, files_of_clip, insert_clips, known_files, move_clip, record_files,
                                retire_clip)
from engine.store.grids import get_grid
from engine.store.provenance import Provenance, record_provenance
from engine.store.labels import LabelWrite
from engine.taxonomy import Taxonomy
from engine.techniques import TechniqueCatalogue


@dataclass
class ImportReport:
    root: str
    added: int = 0
    moved: int = 0
    unchanged: int = 0
    duplicates: int = 0
    retired: int = 0  # clips whose file was edited in place
    labels_carried: int = 0  # user labels carried from a retired clip to the one that replaced it
    labelled: int = 0
    ignored: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0
    dataset: dict | None = None  # a Hugging Face dataset's id, licence and clips per split

    @property
    def partial(self) -> bool:
        return bool(self.rejections)

    def summary(self) -> str:
        return (f"{self.added} new, {self.moved} moved, {self.unchanged} unchanged, {self.duplicates} duplicate "
                f"copies, {self.labelled} labels, {len(self.rejections)} rejected")

    def to_dict(self) -> dict:
        return {
            "root": self.root, "added": self.added, "moved": self.moved, "unchanged": self.unchanged,
            "duplicates": self.duplicates, "retired": self.retired, "labels_carried": self.labels_carried,
            "labelled": self.labelled, "ignored": self.ignored,
            "rejected": len(self.rejections), "rejections": [r.to_dict() for r in self.rejections],
            "notes": self.notes, "cancelled": self.cancelled, "seconds": round(self.seconds, 3),
            "dataset": self.dataset,
        }


@dataclass(frozen=True)
class _Candidate:
    path: str
    source: str
    label: str | None  # a curated class folder's label


def _candidates(root: Path, files: Sequence[Path], curated: bool, source: str | None, taxonomy: Taxonomy,
                report: ImportReport) -> list[_Candidate]:
    """Where each file's source and (for curated folders) label come from."""
    candidates = []
    for path in files:
        class_folder, pack = folder_roles(root, path, curated)
        label = None
        if curated and class_folder is None:
            report.notes.append(f"{path}: not inside a class folder; imported without a label")
        elif curated:
            label = taxonomy.resolve(class_folder)
            if label is None:
                report.rejections.append(Rejection(
                    str(path), Reason.UNKNOWN_LABEL,
                    f"folder {class_folder!r} is not a label or alias of taxonomy {taxonomy.name} "
                    f"({', '.join(taxonomy.names)})"))
                continue
        source_name = source or pack or (root.name if root.is_dir() else root.parent.name)
        candidates.append(_Candidate(str(path), source_name, label))
    return candidates


def _store_probed(con, probed: Sequence[ProbedFile], sources: dict[str, str], explicit_source: bool,
                  report: ImportReport) -> None:
    """Add new clips, follow moved ones, count copies of clips we already have, and retire a clip whose
    file was edited in place (its user labels go to the clip now found there)."""
    existing = clips_by_ids(con, sorted({f.clip_id for f in probed}))
    replaced = _edited_in_place(con, probed)
    new_files: list[ProbedFile] = []
    new_ids: set[str] = set()
    for file in probed:
        clip = existing.get(file.clip_id)
        if clip is None and file.clip_id not in new_ids:
            new_files.append(file)
            new_ids.add(file.clip_id)
        elif clip is None or clip.path == file.path:
            report.unchanged += clip is not None
            report.duplicates += clip is None
        elif not os.path.exists(clip.path) or clip.path in replaced:
            move_clip(con, file.clip_id, file.path, old_path=clip.path,
                      source=sources[file.path] if explicit_source else None)
            report.moved += 1
        else:
            report.duplicates += 1
    new_clips = {f.clip_id: f.to_clip(sources[f.path]) for f in new_files}
    found = {f.clip_id for f in probed}
    for file in probed:
        old = replaced.get(file.path)
        if old is not None and old.clip_id not in found:
            _replace(con, old, file, new_clips.get(file.clip_id), report)
    insert_clips(con, list(new_clips.values()))
    record_files(con, [f.to_clip_file() for f in probed])
    report.added += len(new_files)


def _edited_in_place(con, probed: Sequence[ProbedFile]) -> dict[str, Clip]:
    """path → the clip last seen at that path, for the paths that now hold other bytes."""
    recorded = known_files(con, [f.path for f in probed])
    changed = {f.path: recorded[f.path].clip_id for f in probed
               if f.path in recorded and recorded[f.path].clip_id != f.clip_id}
    clips = clips_by_ids(con, sorted(set(changed.values())))
    return {path: clips[clip_id] for path, clip_id in changed.items()
            if clip_id in clips and clips[clip_id].path == path}


def _replace(con, old: Clip, file: ProbedFile, new: Clip | None, report: ImportReport) -> None:
    """`old`'s file now holds other bytes: `old` moves to a copy of its bytes that is still where it was
    seen, else it is retired and, when the bytes there are new to the workspace, its user labels are
    carried over to them."""
    copy = next((f for f in files_of_clip(con, old.clip_id) if f.path != old.path and is_unchanged(f.path, f)), None)
    if copy is not None:
        move_clip(con, old.clip_id, copy.path, old_path=old.path)
        report.moved += 1
        return
    carried, left = carry_user_labels(con, old, new) if new is not None else (0, [])
    retire_clip(con, old.clip_id, replaced_by=file.clip_id)
    report.retired += 1
    report.labels_carried += carried
    labels = (f"{carried} user labels carried over" if new is not None
              else "its labels stay with it, since the file now holds a clip the workspace already has")
    report.notes.append(f"{file.path}: changed since it was imported; clip {old.clip_id[:12]} is retired and "
                        f"replaced by {file.clip_id[:12]}, {labels}")
    report.notes.extend(f"{file.path}: label not carried: {reason}" for reason in left)


def import_folder(workspace, root: Path, *, curated: bool = False, source: str | None = None,
                  taxonomy: str | None = None, workers: int | None = None, reporter: Reporter | None = None,
                  cancel: CancelToken | None = None, allow_licenses: Sequence[str] = (),
                  label_column: str = "label", audio_column: str = "audio") -> ImportReport:
    """Import every audio file below `root` (or the single file `root`); a folder laid out as a
    Hugging Face dataset (see `engine.library.hf`) is imported as one (`import_dataset`)."""
    started = time.perf_counter()
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise InputError(f"{root}: no such file or folder")
    if not curated and is_hf_dataset(root):
        return import_dataset(workspace, root, allow_licenses=allow_licenses, dataset_id=source,
                              label_column=label_column, audio_column=audio_column, taxonomy=taxonomy,
                              workers=workers, reporter=reporter, cancel=cancel)
    tax = workspace.taxonomy(taxonomy)
    report = ImportReport(str(root))
    scan = scan_folder(root)
    report.ignored = scan.ignored
    report.rejections.extend(scan.unreadable)
    candidates = _candidates(root, scan.files, curated, source, tax, report)
    by_path = {c.path: c for c in candidates}
    with workspace.db.transaction(read_only=True) as con:
        known = known_files(con, list(by_path))
    unchanged_ids = {path: known[path].clip_id for path in by_path if is_unchanged(path, known.get(path))}
    report.unchanged += len(unchanged_ids)
    to_probe = [path for path in by_path if path not in unchanged_ids]
    probed, rejected = probe_files(to_probe, workers=workers, reporter=reporter, cancel=cancel)
    report.rejections.extend(rejected)
    report.cancelled = bool(cancel and cancel.cancelled)
    sources = {path: c.source for path, c in by_path.items()}
    clip_of = {**unchanged_ids, **{path: f.clip_id for path, f in probed.items()}}
    writes = [LabelWrite(clip_of[path], tax.name, c.label, Origin.IMPORT, 1.0, Segment.whole())
              for path, c in by_path.items() if c.label and path in clip_of]
    with workspace.db.transaction() as con:
        _store_probed(con, list(probed.values()), sources, source is not None, report)
        if writes:
            report.labelled = import_labels(con, tax, writes)
    report.rejections.sort(key=lambda r: r.path)
    report.seconds = time.perf_counter() - started
    return report


def dataset_clips_dir(workspace, dataset: str) -> Path:
    """Where the audio bytes of a dataset's parquet rows are written, each file named by its SHA-256."""
    return workspace.root / "datasets" / (re.sub(r"[^A-Za-z0-9._-]+", "_", dataset).strip("._") or "dataset")


def import_dataset(workspace, root: Path, *, allow_licenses: Sequence[str] = (), dataset_id: str | None = None,
                   label_column: str = "label", audio_column: str = "audio", taxonomy: str | None = None,
                   workers: int | None = None, reporter: Reporter | None = None,
                   cancel: CancelToken | None = None) -> ImportReport:
    """Import a Hugging Face dataset folder (AudioFolder and/or parquet shards) whose card's licence is
    allowed: its clips, their labels (with the dataset's split), and each clip's provenance (dataset,
    config, split, licence, the file or row it came from). A licence outside the allowlist imports nothing."""
    started = time.perf_counter()
    root = Path(root).expanduser().resolve()
    card = read_card(root)
    check_licence(card, allow_licenses)
    tax = workspace.taxonomy(taxonomy)
    dataset = dataset_id or root.name
    report = ImportReport(str(root))
    scan = scan_folder(root)
    report.rejections.extend(scan.unreadable)
    shards = sorted(p for p in root.rglob("*.parquet") if not any(is_hidden(part) for part in p.relative_to(root).parts))
    read = read_audiofolder(root, card, scan.files, label_column)
    if shards:
        clips_dir = dataset_clips_dir(workspace, dataset)
        from_shards = read_parquet(root, card, shards, clips_dir, audio_column=audio_column, label_column=label_column)
        read = DatasetRead(read.entries + from_shards.entries, read.rejections + from_shards.rejections)
    report.rejections.extend(read.rejections)
    entries = {entry.path: entry for entry in read.entries}
    with workspace.db.transaction(read_only=True) as con:
        known = known_files(con, list(entries))
    clip_of = {path: known[path].clip_id for path in entries if is_unchanged(path, known.get(path))}
    report.unchanged += len(clip_of)
    probed, rejected = probe_files([p for p in entries if p not in clip_of], workers=workers, reporter=reporter,
                                   cancel=cancel)
    report.rejections.extend(Rejection(r.path, r.reason, f"{entries[r.path].origin}: {r.detail}" if r.detail
                                       else entries[r.path].origin, r.line) for r in rejected)
    if shards:  # bytes written from a shard row that turned out not to be audio are not kept
        for rejection in rejected:
            if Path(rejection.path).is_relative_to(clips_dir):
                Path(rejection.path).unlink(missing_ok=True)
    report.cancelled = bool(cancel and cancel.cancelled)
    clip_of.update({path: f.clip_id for path, f in probed.items()})
    writes = [write for path, entry in entries.items() if path in clip_of
              for write in [_dataset_label(entry, clip_of[path], tax, label_column, report)] if write is not None]
    provenance = [Provenance(clip_of[path], dataset, entry.config, entry.split, card.licence, entry.origin)
                  for path, entry in entries.items() if path in clip_of]
    with workspace.db.transaction() as con:
        _store_probed(con, list(probed.values()), {path: dataset for path in probed}, True, report)
        record_provenance(con, provenance)
        if writes:
            report.labelled = import_labels(con, tax, writes)
    splits: dict[str, int] = {}
    for row in provenance:
        splits[row.split or "none"] = splits.get(row.split or "none", 0) + 1
    report.dataset = {"id": dataset, "license": card.licence, "card": str(card.path) if card.path.is_file() else None,
                      "parquet_shards": len(shards), "splits": dict(sorted(splits.items()))}
    report.rejections.sort(key=lambda r: (r.path, r.line or 0))
    report.seconds = time.perf_counter() - started
    return report


def _dataset_label(entry: Entry, clip_id: str, tax: Taxonomy, label_column: str,
                   report: ImportReport) -> LabelWrite | None:
    """The import label of a dataset entry (its split kept when it is one workbench knows); a label the
    taxonomy does not know is a rejection naming the metadata line or shard row."""
    if entry.label is None:
        return None
    label = tax.resolve(entry.label)
    if label is None:
        report.rejections.append(Rejection(entry.path, Reason.UNKNOWN_LABEL,
                                           f"{entry.origin}: {label_column} {entry.label!r} is not a label or alias of "
                                           f"taxonomy {tax.name} ({', '.join(tax.names)})"))
        return None
    split = SPLIT_NAMES.get(entry.split) if entry.split else None
    return LabelWrite(clip_id, tax.name, label, Origin.IMPORT, 1.0, Segment.whole(), split)


@job_kind("import")
def run_import_job(workspace, job, params: dict, cancel) -> None:
    """An import in a process of its own (the TUI's library starts one with `i`), with progress;
    its result is the import report, rejections included. Cancelled, it keeps what was probed."""
    from engine.jobs.log import JobReporter

    job.state(JobState.RUNNING, f"importing {params['folder']}")
    report = import_folder(workspace, Path(params["folder"]), curated=bool(params.get("curated")),
                           source=params.get("source"), taxonomy=params.get("taxonomy"),
                           allow_licenses=params.get("allow_licenses") or (), reporter=JobReporter(job), cancel=cancel)
    result = {**report.to_dict(), "summary": report.summary()}
    if report.cancelled:
        job.finish(JobState.CANCELLED, result=result, error=f"cancelled; kept {report.summary()}")
    else:
        job.finish(JobState.COMPLETED, result=result)


# -- label files ------------------------------------------------------------------------------

@dataclass
class LabelImportReport:
    path: str
    format: str
    labelled: int = 0
    clips_added: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a file edited in place, whose old clip was retired
    seconds: float = 0.0

    @property
    def partial(self) -> bool:
        return bool(self.rejections)

    def to_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "labelled": self.labelled,
                "clips_added": self.clips_added, "rejected": len(self.rejections),
                "rejections": [r.to_dict() for r in self.rejections], "notes": self.notes,
                "seconds": round(self.seconds, 3)}


def _record_rejection(record: LabelRecord, reason: Reason, detail: str) -> Rejection:
    """A rejected row, named by its audio file, with the label file and line it came from."""
    return Rejection(str(record.audio_path), reason, f"{record.where}: {detail}" if record.where else detail)


def import_label_file(workspace, path: Path, *, taxonomy: str | None = None, audio: Path | None = None,
                      hit_length_s: float = 0.1, format: str = "auto", origin: Origin = Origin.IMPORT,
                      root: Path | None = None, offset_s: float = 0.0, note_map: Path | None = None,
                      workers: int | None = None, reporter: Reporter | None = None,
                      cancel: CancelToken | None = None) -> LabelImportReport:
    """Read a manifest, Audacity label track, event map, Label Studio export (its audio found below
    `root`) or MIDI drum track (moved by `offset_s`, its notes mapped by the GM drum map and the
    `note_map` file) and label the clips it names.

    Audio files the workspace does not know yet are imported on the way."""
    from engine.library.labelfiles import read_label_file
    from engine.library.midifiles import is_midi_file, read_midi_file, read_note_map

    started = time.perf_counter()
    path = Path(path).expanduser().resolve()
    tax = workspace.taxonomy(taxonomy)
    if format == "midi" or (format == "auto" and is_midi_file(path)):
        parsed = read_midi_file(path, audio=audio, offset_s=offset_s, hit_length_s=hit_length_s,
                                note_map=read_note_map(note_map) if note_map is not None else None)
    else:
        parsed = read_label_file(path, audio=audio, hit_length_s=hit_length_s, format=format, root=root)
    report = LabelImportReport(str(path), parsed.format, rejections=list(parsed.rejections))
    audio_paths = sorted({str(Path(r.audio_path).resolve()) for r in parsed.records})
    with workspace.db.transaction(read_only=True) as con:
        known = known_files(con, audio_paths)
    missing = [p for p in audio_paths if not os.path.exists(p)]
    report.rejections.extend(Rejection(p, Reason.MISSING_FILE, f"named in {path.name}") for p in missing)
    to_probe = [p for p in audio_paths if p not in missing and not is_unchanged(p, known.get(p))]
    probed, rejected = probe_files(to_probe, workers=workers, reporter=reporter, cancel=cancel)
    report.rejections.extend(rejected)
    clip_of = {p: known[p].clip_id for p in audio_paths if p in known and p not in probed}
    clip_of.update({p: f.clip_id for p, f in probed.items()})
    sources = {}
    for record in parsed.records:
        resolved = str(Path(record.audio_path).resolve())
        sources.setdefault(resolved, record.source or Path(resolved).parent.name)
    with workspace.db.transaction() as con:
        counts = ImportReport(str(path))
        _store_probed(con, list(probed.values()), sources, False, counts)
        report.clips_added, report.notes = counts.added, counts.notes
        clips = clips_by_ids(con, sorted(set(clip_of.values())))
        writes = []
        catalogue = workspace.technique_catalogue(tax.name) if any(r.techniques for r in parsed.records) else None
        for record in parsed.records:
            resolved = str(Path(record.audio_path).resolve())
            if resolved not in clip_of:
                continue  # its file was rejected above
            write = _label_write(con, record, clips[clip_of[resolved]], tax, origin, hit_length_s, report, catalogue)
            if write is not None:
                writes.append(write)
        report.labelled = import_labels(con, tax, writes)
    report.seconds = time.perf_counter() - started
    return report


def _label_write(con, record: LabelRecord, clip: Clip, tax: Taxonomy, origin: Origin, hit_length_s: float,
                 report: LabelImportReport, catalogue: TechniqueCatalogue | None = None) -> LabelWrite | None:
    label = tax.resolve(record.label)
    if label is None:
        report.rejections.append(_record_rejection(
            record, Reason.UNKNOWN_LABEL, f"{record.label!r} is not in taxonomy {tax.name}"))
        return None
    techniques: tuple[str, ...] = ()
    if record.techniques and catalogue is not None:
        try:
            techniques = catalogue.check(record.techniques, label)
        except InputError as error:
            report.rejections.append(_record_rejection(record, Reason.UNKNOWN_TECHNIQUE, str(error)))
            return None
    grid = get_grid(con, clip.clip_id) if record.start_beat is not None else None
    if record.start_beat is not None and grid is None:
        report.rejections.append(_record_rejection(
            record, Reason.NO_GRID, "beat range on a clip without a beat grid (set one with 'beats set')"))
        return None
    try:
        if record.start_beat is not None:
            segment = make_segment(clip, grid, start_beat=record.start_beat, end_beat=record.end_beat)
        else:
            segment = make_segment(clip, None, start_s=record.start_s, end_s=_end_within(record, clip, hit_length_s))
    except InputError as error:
        report.rejections.append(_record_rejection(record, Reason.OUT_OF_RANGE, str(error)))
        return None
    return LabelWrite(clip.clip_id, tax.name, label, origin, record.confidence, segment, record.split,
                      techniques=techniques)


def _end_within(record: LabelRecord, clip: Clip, overshoot_s: float) -> float | None:
    """A hit that starts inside the clip but runs up to `overshoot_s` past its end is cut at the end;
    a longer overshoot is left for make_segment to reject."""
    end = record.end_s
    if record.start_s is not None and end is not None and record.start_s < clip.duration_s < end <= clip.duration_s + overshoot_s:
        return clip.duration_s
    return end
