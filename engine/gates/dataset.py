"""Dataset gates: is a taxonomy's labelled data ready to train a model a team can trust?

Each check reads a `DatasetContext` (labels, clips, splits and features of one taxonomy, computed
lazily) and its settings (defaults below, overridden by `[dataset.<name>]` in a gates TOML). The
docstring of each check documents what it measures and its default thresholds; `gates list`
prints them.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from engine.datasets.similarity import DEFAULT_SIMILARITY
from engine.errors import InputError
from engine.gates.core import GateResult, gate
from engine.gates.dataset_context import DatasetContext, SplitPlan  # noqa: F401  (the context of this scope)
from engine.training.data import GROUPINGS

ITEM_LIMIT = 200  # items listed per failing gate; the detail line gives the full count


def _result(gate_id: str, title: str, passed: bool | None, value, threshold: str, detail: str = "",
            items: list[dict] | None = None) -> GateResult:
    return GateResult(gate_id, title, passed, value, threshold, detail, (items or [])[:ITEM_LIMIT])


def _skip(gate_id: str, title: str, threshold: str, why: str) -> GateResult:
    return GateResult(gate_id, title, None, None, threshold, why)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


# -- counts -----------------------------------------------------------------------------------------

@gate("dataset.class_count", "At least two classes", min_classes=2)
def class_count(context: DatasetContext, settings: dict) -> GateResult:
    """Classes of the taxonomy with at least one labelled segment. Default: `min_classes` 2 (a
    classifier needs something to tell apart)."""
    gate_id, title = "dataset.class_count", "At least two classes"
    have = len(context.class_counts)
    passed = have >= settings["min_classes"]
    return _result(gate_id, title, passed, have, f">= {settings['min_classes']} classes",
                   f"{have} classes: {', '.join(context.class_counts) or 'none'}")


def _per_label_minimums(settings: dict) -> dict[str, int]:
    minimums = dict(settings["per_label"])
    if settings["per_label_file"]:
        path = Path(settings["per_label_file"]).expanduser()
        try:
            text = path.read_text()
            from_file = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except FileNotFoundError:
            raise InputError(f"{path}: per-label minimums file not found") from None
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: cannot read per-label minimums ({error})") from None
        if not isinstance(from_file, dict) or not all(isinstance(v, int) for v in from_file.values()):
            raise InputError(f"{path}: per-label minimums must map each label to a whole number")
        minimums.update(from_file)
    return minimums


@gate("dataset.min_class_count", "Examples per class", floor=0, per_label={}, per_label_file="")
def min_class_count(context: DatasetContext, settings: dict) -> GateResult:
    """Every class with examples has at least its minimum number of labelled segments. The minimum
    of a label is `per_label` (a TOML table), else `per_label_file` (JSON or TOML mapping label to
    count), else `floor` when above 0, else the taxonomy's own minimum (drums: 30; 20 for open
    hi-hat, toms, crash, ride)."""
    gate_id, title = "dataset.min_class_count", "Examples per class"
    overrides = _per_label_minimums(settings)
    floor = settings["floor"]
    threshold = f"each class >= {floor}" if floor > 0 else "each class >= its taxonomy minimum"
    if overrides:
        threshold += f" ({len(overrides)} per-label)"
    if not context.class_counts:
        return _skip(gate_id, title, threshold, "no labelled segments")

    def minimum(label: str) -> int:
        return overrides.get(label, floor if floor > 0 else context.taxonomy.min_count(label))

    short = [{"label": label, "count": count, "minimum": minimum(label)}
             for label, count in context.class_counts.items() if count < minimum(label)]
    detail = ", ".join(f"{s['label']} {s['count']}/{s['minimum']}" for s in short)
    return _result(gate_id, title, not short, len(short), threshold + "; classes below",
                   f"below minimum: {detail}" if short else f"{len(context.class_counts)} classes at their minimum",
                   short)


@gate("dataset.required_labels", "Required labels present", required=[])
def required_labels(context: DatasetContext, settings: dict) -> GateResult:
    """The labels listed in `required` each have at least one segment. Default: none required
    (skipped)."""
    gate_id, title = "dataset.required_labels", "Required labels present"
    required = list(settings["required"])
    if not required:
        return _skip(gate_id, title, "all present", "no required labels configured")
    missing = [label for label in required if context.class_counts.get(label, 0) == 0]
    return _result(gate_id, title, not missing, len(missing), f"{len(required)} required; missing",
                   f"missing: {', '.join(missing)}" if missing else "all present",
                   [{"label": label} for label in missing])


def read_required_techniques(path: Path) -> list[str]:
    """Technique names from a file: a JSON list, or one name per line ('#' starts a comment)."""
    path = Path(path).expanduser()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: required techniques file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read required techniques ({error})") from None
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except ValueError as error:
            raise InputError(f"{path}: not valid JSON ({error})") from None
        if not all(isinstance(name, str) for name in names):
            raise InputError(f"{path}: a JSON list of technique names is expected")
        return names
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


@gate("dataset.required_techniques", "Required techniques present", required=[], required_file="")
def required_techniques(context: DatasetContext, settings: dict) -> GateResult:
    """The playing techniques listed in `required` (names from the taxonomy's technique catalogue)
    or in `required_file` (a JSON list or one name per line) each have at least one labelled
    segment. Default: none required (skipped)."""
    gate_id, title = "dataset.required_techniques", "Required techniques present"
    required = list(settings["required"])
    if settings["required_file"]:
        required += read_required_techniques(settings["required_file"])
    if not required:
        return _skip(gate_id, title, "all present", "no required techniques configured")
    required = list(context.workspace.technique_catalogue(context.taxonomy.name).check(required))
    counts = {name: sum(by_label.values()) for name, by_label in context.technique_counts.items()}
    missing = [name for name in required if counts.get(name, 0) == 0]
    present = ", ".join(f"{name} ({counts[name]})" for name in required if name not in missing)
    return _result(gate_id, title, not missing, len(missing), f"{len(required)} required; missing",
                   f"missing: {', '.join(missing)}" if missing else f"all present: {present}",
                   [{"technique": name} for name in missing])


@gate("dataset.unknown_labels", "Labels outside the taxonomy", max_segments=0)
def unknown_labels(context: DatasetContext, settings: dict) -> GateResult:
    """Labelled segments whose label is not (or no longer) in the taxonomy, at most `max_segments`;
    such labels are ignored by readiness but still reach training. Default: `max_segments` 0."""
    gate_id, title = "dataset.unknown_labels", "Labels outside the taxonomy"
    count = sum(context.unknown_counts.values())
    return _result(gate_id, title, count <= settings["max_segments"], count, f"<= {settings['max_segments']} segments",
                   ", ".join(f"{label} ({n})" for label, n in context.unknown_counts.items()),
                   [{"label": label, "count": n} for label, n in context.unknown_counts.items()])


@gate("dataset.class_imbalance", "Class imbalance", max_ratio=10.0)
def class_imbalance(context: DatasetContext, settings: dict) -> GateResult:
    """Largest class count divided by the smallest. Default: `max_ratio` 10 (class balancing copes with
    less; beyond that the rare class is mostly noise to the model)."""
    gate_id, title = "dataset.class_imbalance", "Class imbalance"
    threshold = f"max/min <= {settings['max_ratio']:g}"
    counts = context.class_counts
    if len(counts) < 2:
        return _skip(gate_id, title, threshold, "fewer than two classes")
    largest, smallest = max(counts, key=counts.get), min(counts, key=counts.get)
    ratio = round(counts[largest] / counts[smallest], 2)
    passed = ratio <= settings["max_ratio"]
    return _result(gate_id, title, passed, ratio, threshold,
                   f"{largest} {counts[largest]} vs {smallest} {counts[smallest]}" if ratio != 1
                   else f"every class has {counts[largest]}",
                   [] if passed else [{"largest": largest, "count": counts[largest],
                                       "smallest": smallest, "smallest_count": counts[smallest]}])


@gate("dataset.source_dominance", "No pack dominates a class", max_share=0.8)
def source_dominance(context: DatasetContext, settings: dict) -> GateResult:
    """The largest share of one source (pack) in any class. Default: `max_share` 0.8, so that a model
    learns the sound rather than one pack's timbre (a class from a single pack fails)."""
    gate_id, title = "dataset.source_dominance", "No pack dominates a class"
    threshold = f"top pack share <= {settings['max_share']:g}"
    by_class: dict[str, Counter] = defaultdict(Counter)
    for n in context.known:
        by_class[context.items[n].label][context.items[n].source] += 1
    if not by_class:
        return _skip(gate_id, title, threshold, "no labelled segments")
    shares = []
    for label, sources in sorted(by_class.items()):
        source, count = sources.most_common(1)[0]
        total = sum(sources.values())
        shares.append({"label": label, "source": source, "count": count, "total": total,
                       "share": round(count / total, 4)})
    worst = max(shares, key=lambda s: s["share"])
    over = [s for s in shares if s["share"] > settings["max_share"]]
    detail = (", ".join(f"{s['label']}: {s['source']} {s['share']:.0%}" for s in over) if over
              else f"largest: {worst['label']} {worst['source']} {worst['share']:.0%}")
    return _result(gate_id, title, not over, worst["share"], threshold, detail, over)


# -- duplicates and leakage ----------------------------------------------------------------------------

def _folder_label(context: DatasetContext, path: str) -> str | None:
    """The label a file's class folder names (the nearest folder that is a label or alias)."""
    for folder in reversed(Path(path).parent.parts):
        label = context.taxonomy.resolve(folder)
        if label is not None:
            return label
    return None


@gate("dataset.exact_duplicates", "Exact duplicates", max_rate=0.01, max_conflicts=0)
def exact_duplicates(context: DatasetContext, settings: dict) -> GateResult:
    """Clips are known by the hash of their bytes, so an exact duplicate is one clip seen at several
    paths that still exist, or one region of a clip labelled under two segments. A copy in a class
    folder is a label for its clip (curating by copying files into class folders), so copies count
    as a duplicate only when two of them sit outside class folders; they conflict when their class
    folders name different labels, or the segments of one region carry different labels. Default:
    `max_rate` 0.01 of labelled clips duplicated and `max_conflicts` 0."""
    gate_id, title = "dataset.exact_duplicates", "Exact duplicates"
    threshold = f"rate <= {settings['max_rate']:g}, conflicts <= {settings['max_conflicts']}"
    found = []
    curated = 0  # clips whose copies in class folders agree: labels, not duplicates
    for clip_id, paths in context.clip_paths.items():
        existing = [p for p in paths if os.path.exists(p)] if len(paths) > 1 else paths
        if len(existing) < 2:
            continue
        folder_label = {p: _folder_label(context, p) for p in existing}
        labels = sorted(set(folder_label.values()) - {None})
        unlabelled_copies = sum(label is None for label in folder_label.values())
        if len(labels) > 1 or unlabelled_copies > 1:
            found.append({"clip_id": clip_id, "paths": existing, "labels": labels, "conflict": len(labels) > 1})
        else:
            curated += 1
    regions: dict[tuple, list[int]] = defaultdict(list)
    for n, item in enumerate(context.items):
        regions[(item.clip_id, item.segment.region_key)].append(n)
    for (clip_id, region), members in regions.items():
        if len(members) > 1:
            labels = sorted({context.items[n].label for n in members})
            found.append({"clip_id": clip_id, "paths": [context.items[members[0]].path], "region": region,
                          "segments": [context.items[n].segment.key for n in members], "labels": labels,
                          "conflict": len(labels) > 1})
    clips = len({item.clip_id for item in context.items})
    rate = _rate(len({f["clip_id"] for f in found}), clips)
    conflicts = sum(f["conflict"] for f in found)
    passed = rate <= settings["max_rate"] and conflicts <= settings["max_conflicts"]
    found.sort(key=lambda f: not f["conflict"])
    copies = f"; {curated} copied into class folders of their label" if curated else ""
    return _result(gate_id, title, passed, rate, threshold,
                   f"{len(found)} duplicated of {clips} clips, {conflicts} conflicting{copies}", found)


def _pair_items(context: DatasetContext, pairs, rows: np.ndarray, keep: np.ndarray) -> list[dict]:
    chosen = np.flatnonzero(keep)[:ITEM_LIMIT]
    return [{"a": context.describe(int(rows[pairs.first[k]])), "b": context.describe(int(rows[pairs.second[k]])),
             "similarity": round(float(pairs.similarity[k]), 5)} for k in chosen]


@gate("dataset.near_duplicates", "Near duplicates", similarity=DEFAULT_SIMILARITY, max_rate=0.02)
def near_duplicates(context: DatasetContext, settings: dict) -> GateResult:
    """Segments of different clips whose standardised feature vectors have cosine similarity >=
    `similarity` (default 0.999: on dsp features a copy at another gain, rate or format scores 1.0,
    distinct hits stay below 0.998). Value: the share of segments with a near duplicate. Default:
    `max_rate` 0.02."""
    gate_id, title = "dataset.near_duplicates", "Near duplicates"
    threshold = f"rate <= {settings['max_rate']:g} (cosine >= {settings['similarity']:g})"
    features, rows = context.featurised
    pairs = context.near_duplicates(settings["similarity"])  # every pair counts, past the pair limit too
    involved = int(pairs.involved.sum())
    rate = _rate(involved, len(rows))
    passed = rate <= settings["max_rate"]
    labels = np.array([context.items[n].label for n in rows])
    conflicting = int((labels[pairs.first] != labels[pairs.second]).sum())
    kept = f" (the {len(pairs)} most similar kept)" if pairs.total_pairs > len(pairs) else ""
    return _result(gate_id, title, passed, rate, threshold,
                   f"{pairs.total_pairs} pairs{kept}, {conflicting} with different labels, "
                   f"{involved} of {len(rows)} segments", _pair_items(context, pairs, rows, np.ones(len(pairs), bool)))


@gate("dataset.split_leakage", "No duplicate across train/val/test", similarity=DEFAULT_SIMILARITY, max_pairs=0)
def split_leakage(context: DatasetContext, settings: dict) -> GateResult:
    """Pairs of segments that are the same clip or near duplicates (cosine >= `similarity`, default
    0.999) but land in different splits under the split `train` assigns by default (grouped by
    source with 3+ sources, else by inferred groups or clip; seed 0; val and test 0.15). A leaked pair lets the test
    score hear training audio. Default: `max_pairs` 0."""
    gate_id, title = "dataset.split_leakage", "No duplicate across train/val/test"
    threshold = f"<= {settings['max_pairs']} pairs across splits"
    splits_by_clip: dict[str, set] = defaultdict(set)
    for item, split in zip(context.items, context.splits):
        if split is not None:
            splits_by_clip[item.clip_id].add(str(split))
    exact = [{"clip_id": clip_id, "splits": sorted(splits)} for clip_id, splits in splits_by_clip.items()
             if len(splits) > 1]
    features, rows = context.featurised
    pairs = context.near_duplicates(settings["similarity"])
    split_names = np.array([str(context.splits[n]) if context.splits[n] else "" for n in rows])
    first, second = split_names[pairs.first], split_names[pairs.second]
    across = (first != "") & (second != "") & (first != second)
    leaked = len(exact) + int(across.sum())
    passed = leaked <= settings["max_pairs"]
    return _result(gate_id, title, passed, leaked, threshold,
                   f"{len(exact)} clips in two splits, {int(across.sum())} near-duplicate pairs across splits "
                   f"(split {GROUPINGS[context.grouping]})",
                   [{"kind": "same clip", **e} for e in exact] +
                   [{"kind": "near duplicate", **p} for p in _pair_items(context, pairs, rows, across)])


# -- clip hygiene ------------------------------------------------------------------------------------

def _labelled_clips(context: DatasetContext):
    return [context.clips[c] for c in sorted({item.clip_id for item in context.items}) if c in context.clips]


def _clip_item(clip, **measured) -> dict:
    return {"clip_id": clip.clip_id, "path": clip.path, "source": clip.source, **measured}


@gate("dataset.silent_clips", "No silent clips", silence_db=-60.0, max_clips=0)
def silent_clips(context: DatasetContext, settings: dict) -> GateResult:
    """Labelled clips whose peak level (measured at import) is below `silence_db` dBFS (default -60:
    nothing audible to learn from). Default: `max_clips` 0."""
    gate_id, title = "dataset.silent_clips", "No silent clips"
    floor = 10 ** (settings["silence_db"] / 20)
    silent = [_clip_item(c, peak_db=round(20 * math.log10(c.peak), 1) if c.peak > 0 else None, rms_db=round(c.rms_db, 1))
              for c in _labelled_clips(context) if c.peak < floor]
    return _result(gate_id, title, len(silent) <= settings["max_clips"], len(silent),
                   f"<= {settings['max_clips']} clips with peak < {settings['silence_db']:g} dBFS",
                   ", ".join(Path(s["path"]).name for s in silent[:5]), silent)


@gate("dataset.clipped_clips", "No clipped clips", max_clipped_fraction=0.001, max_clips=0)
def clipped_clips(context: DatasetContext, settings: dict) -> GateResult:
    """Labelled clips with more than `max_clipped_fraction` of their samples at full scale
    (default 0.001, i.e. 0.1%: audible distortion the model would learn as timbre). Default:
    `max_clips` 0."""
    gate_id, title = "dataset.clipped_clips", "No clipped clips"
    clipped = [_clip_item(c, clipped_fraction=round(c.clipped_fraction, 5)) for c in _labelled_clips(context)
               if c.clipped_fraction > settings["max_clipped_fraction"]]
    return _result(gate_id, title, len(clipped) <= settings["max_clips"], len(clipped),
                   f"<= {settings['max_clips']} clips over {settings['max_clipped_fraction']:g} clipped",
                   ", ".join(Path(c["path"]).name for c in clipped[:5]), clipped)


@gate("dataset.short_clips", "No too-short clips", min_duration_s=0.05, max_clips=0)
def short_clips(context: DatasetContext, settings: dict) -> GateResult:
    """Labelled clips shorter than `min_duration_s` (default 0.05 s: fewer than a couple of analysis
    frames). Default: `max_clips` 0."""
    gate_id, title = "dataset.short_clips", "No too-short clips"
    short = [_clip_item(c, duration_s=round(c.duration_s, 4)) for c in _labelled_clips(context)
             if c.duration_s < settings["min_duration_s"]]
    return _result(gate_id, title, len(short) <= settings["max_clips"], len(short),
                   f"<= {settings['max_clips']} clips under {settings['min_duration_s']:g} s",
                   ", ".join(Path(s["path"]).name for s in short[:5]), short)


@gate("dataset.segment_length", "Segment lengths", min_s=0.05, max_s=0.0, max_segments=0)
def segment_length(context: DatasetContext, settings: dict) -> GateResult:
    """Labelled time or beat ranges shorter than `min_s` (default 0.05 s), longer than `max_s`
    (default 0: no upper limit), or running past the end of their clip (a stale range). Default:
    `max_segments` 0; skipped when every label is on a whole clip."""
    gate_id, title = "dataset.segment_length", "Segment lengths"
    limit = f", <= {settings['max_s']:g} s" if settings["max_s"] > 0 else ""
    threshold = f"<= {settings['max_segments']} outside >= {settings['min_s']:g} s{limit}"
    ranged = [n for n, item in enumerate(context.items) if not item.segment.is_whole]
    if not ranged:
        return _skip(gate_id, title, threshold, "every label is on a whole clip")
    wrong = []
    for n in ranged:
        item = context.items[n]
        length = item.segment.end_s - item.segment.start_s
        clip = context.clips.get(item.clip_id)
        past_end = clip is not None and item.segment.end_s > clip.duration_s + 1e-3
        if length < settings["min_s"] or (settings["max_s"] > 0 and length > settings["max_s"]) or past_end:
            wrong.append({**context.describe(n), "length_s": round(length, 4), "past_end": past_end})
    return _result(gate_id, title, len(wrong) <= settings["max_segments"], len(wrong), threshold,
                   f"{len(wrong)} of {len(ranged)} ranges", wrong)


@gate("dataset.beat_grid", "Beat-range labels on the grid", step_beats=1.0, tolerance_beats=0.01,
      tolerance_s=0.01, max_labels=0)
def beat_grid(context: DatasetContext, settings: dict) -> GateResult:
    """Beat-range labels whose clip has no beat grid, whose beats are not multiples of `step_beats`
    (default 1: on whole beats, within `tolerance_beats` 0.01), or whose stored seconds no longer
    match the grid (beyond `tolerance_s` 0.01 s). Default: `max_labels` 0; skipped without beat ranges."""
    gate_id, title = "dataset.beat_grid", "Beat-range labels on the grid"
    step = settings["step_beats"]
    threshold = f"<= {settings['max_labels']} off a {step:g}-beat grid"
    if not context.beat_labels:
        return _skip(gate_id, title, threshold, "no beat-range labels")

    def off_step(beat: float) -> bool:
        return abs(beat / step - round(beat / step)) * step > settings["tolerance_beats"]

    off = []
    for item in context.beat_labels:
        grid, segment = context.grids.get(item.clip_id), item.segment
        if grid is None:
            why = "no beat grid"
        elif off_step(segment.start_beat) or off_step(segment.end_beat):
            why = f"beats {segment.start_beat:g}-{segment.end_beat:g} are not on the {step:g}-beat grid"
        elif max(abs(float(grid.seconds_at(segment.start_beat)) - segment.start_s),
                 abs(float(grid.seconds_at(segment.end_beat)) - segment.end_s)) > settings["tolerance_s"]:
            why = "its seconds no longer match the grid"
        else:
            continue
        off.append({"clip_id": item.clip_id, "path": item.path, "label": item.label,
                    "start_beat": segment.start_beat, "end_beat": segment.end_beat, "why": why})
    return _result(gate_id, title, len(off) <= settings["max_labels"], len(off), threshold,
                   f"{len(off)} of {len(context.beat_labels)} beat ranges", off)


# -- label quality -----------------------------------------------------------------------------------

@gate("dataset.likely_mislabels", "Likely mislabels", max_rate=0.05, folds=5, group_by="source")
def likely_mislabels(context: DatasetContext, settings: dict) -> GateResult:
    """Confident learning on out-of-fold probabilities of a k-fold (`folds`, default 5) logistic
    regression on standardised features, folds grouped by `group_by` (source, where every class has
    two or more; else clip). A segment is a suspect when another class's probability is above that
    class's mean self-confidence and beats the given label. Value: the share of suspects. Default:
    `max_rate` 0.05. `triage suspects` lists them, most suspicious first."""
    gate_id, title = "dataset.likely_mislabels", "Likely mislabels"
    threshold = f"rate <= {settings['max_rate']:g}"
    if settings["group_by"] not in ("source", "clip"):
        raise InputError(f"[dataset.likely_mislabels] group_by must be 'source' or 'clip', not {settings['group_by']!r}")
    if len(context.class_counts) < 2:
        return _skip(gate_id, title, threshold, "fewer than two classes")
    search = context.mislabels(settings["folds"], settings["group_by"])
    found = search.found
    rate = _rate(len(found), len(search.rows))
    items = [{**context.describe(int(search.rows[row])), "suggested": search.classes[suggested],
              "margin": round(float(margin), 4)}
             for row, suggested, margin in zip(found.rows[:ITEM_LIMIT], found.suggested, found.margin)]
    grouped = "folds by source" if search.out_of_fold.grouped else "folds by segment"
    return _result(gate_id, title, rate <= settings["max_rate"], rate, threshold,
                   f"{len(found)} of {len(search.rows)} segments ({search.out_of_fold.folds} {grouped})", items)
