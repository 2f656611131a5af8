"""Library commands: import audio, labels, beat grids, clips and stats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.context import JsonOption, TaxonomyOption, WorkersOption, open_workspace

TechniqueOption = Annotated[list[str] | None, typer.Option(
    "--technique", "-t", help="A playing technique from the taxonomy's catalogue (repeatable); see `taxonomy techniques`.")]
from cli.output import BadArguments, finish, handles_errors, render_rejections, shown, stderr, stdout
from cli.progress import cancel_on_ctrl_c, progress_bar
from engine.concepts import Origin, Segment
from engine.errors import InputError
from engine.library.browse import SORTS


def _label_dict(label) -> dict:
    segment: Segment = label.segment
    return {"label_id": label.label_id, "clip_id": label.clip_id, "taxonomy": label.taxonomy, "label": label.label,
            "origin": str(label.origin), "confidence": label.confidence, "segment": segment.key,
            "start_s": segment.start_s, "end_s": segment.end_s, "start_beat": segment.start_beat,
            "end_beat": segment.end_beat, "split": str(label.split) if label.split else None,
            "lead_time_s": label.lead_time_s, "techniques": list(label.techniques)}


# -- import -----------------------------------------------------------------------------------

@handles_errors
def import_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A folder (searched recursively) or one audio file.")],
    curated: Annotated[bool, typer.Option("--curated", help="PATH/<class>/... : folders name the labels.")] = False,
    source: Annotated[str | None, typer.Option("--source", help="Source/pack name (default: the top folder).")] = None,
    allow_license: Annotated[list[str] | None, typer.Option(
        "--allow-license", help="A Hugging Face dataset: also allow this licence of its card (e.g. cc-by-sa-4.0; "
                                "CC0 and CC-BY are allowed already). Repeatable.")] = None,
    label_column: Annotated[str, typer.Option("--label-column", help="A Hugging Face dataset: its label column.")] = "label",
    audio_column: Annotated[str, typer.Option("--audio-column", help="Parquet shards: their audio column.")] = "audio",
    taxonomy: TaxonomyOption = None,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Import audio files (wav, flac, ogg, mp3, aiff) into the workspace, or a local Hugging Face dataset
    (AudioFolder or parquet shards; --source names its dataset id, by default the folder's name)."""
    from engine.library.importer import import_folder

    if not path.expanduser().exists():  # before the workspace: a typo must not leave an empty one behind
        raise InputError(f"{path}: no such file or folder")
    workspace = open_workspace(ctx, create=True)  # importing is how a workspace starts
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        report = import_folder(workspace, path, curated=curated, source=source, taxonomy=taxonomy,
                               workers=workers, reporter=reporter, cancel=cancel, allow_licenses=allow_license or (),
                               label_column=label_column, audio_column=audio_column)

    def render() -> None:
        if report.dataset:
            splits = ", ".join(f"{n} {split}" for split, n in report.dataset["splits"].items())
            stdout.print(f"dataset {shown(report.dataset['id'])}, licence {shown(report.dataset['license'])}: "
                         f"{shown(splits) or 'no clips'}")
        stdout.print(f"Imported {shown(report.root)}: [bold]{report.added}[/] new, {report.moved} moved, "
                     f"{report.unchanged} unchanged, {report.duplicates} duplicate copies, "
                     f"{report.labelled} labels, {len(report.rejections)} rejected ({report.seconds:.1f} s)")
        for note in report.notes[:5]:
            stderr.print(f"note: {shown(note)}")
        render_rejections(report.rejections)

    finish(report.to_dict(), json_out, partial=report.partial, cancelled=report.cancelled, render=render)


# -- labels -----------------------------------------------------------------------------------

labels_app = typer.Typer(help="Add, list, remove, import and export labels (whole clips, time ranges, beat ranges).",
                         no_args_is_help=True)


@labels_app.command("import")
@handles_errors
def labels_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Manifest (.csv/.jsonl/.json), Audacity label track (.txt), event map, "
                                              "Label Studio export (.json) or MIDI drum track (.mid).")],
    audio: Annotated[Path | None, typer.Option("--audio", help="The audio a label track, event map or MIDI file "
                                                               "belongs to.")] = None,
    format: Annotated[str, typer.Option("--format", help="auto, manifest, audacity, events, label-studio or midi.")] = "auto",
    hit_length: Annotated[float, typer.Option("--hit-length", help="Seconds of a hit segment from an event.")] = 0.1,
    root: Annotated[Path | None, typer.Option("--root", help="Label Studio: the folder below which each task's "
                                                             "audio is found (default: the file's folder).")] = None,
    offset: Annotated[float, typer.Option("--offset", help="MIDI: seconds into the audio where the MIDI file "
                                                           "starts.")] = 0.0,
    note_map: Annotated[Path | None, typer.Option("--note-map", help="MIDI: a .json or .csv file mapping note "
                                                                     "numbers to labels or 'ignore'.")] = None,
    taxonomy: TaxonomyOption = None,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Import labels from a file; audio it names that is not in the workspace yet is imported too."""
    from engine.library.importer import import_label_file
    from engine.library.midifiles import is_midi_file

    if (offset or note_map is not None) and not (format == "midi" or (format == "auto" and is_midi_file(file))):
        raise BadArguments("--offset and --note-map are for MIDI files (.mid, .midi or --format midi)")
    workspace = open_workspace(ctx, create=True)  # a manifest can bring in its audio, so it can start one
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        report = import_label_file(workspace, file, taxonomy=taxonomy, audio=audio, hit_length_s=hit_length,
                                   format=format, root=root, offset_s=offset, note_map=note_map, workers=workers,
                                   reporter=reporter, cancel=cancel)

    def render() -> None:
        stdout.print(f"{shown(report.path)} ({report.format}): [bold]{report.labelled}[/] labels, "
                     f"{report.clips_added} new clips, {len(report.rejections)} rejected")
        for note in report.notes[:5]:
            stderr.print(f"note: {note}", markup=False)
        render_rejections(report.rejections)

    finish(report.to_dict(), json_out, partial=report.partial, render=render)


@labels_app.command("export")
@handles_errors
def labels_export(
    ctx: typer.Context,
    format: Annotated[str, typer.Option("--format", help="label-studio (a tasks .json), audacity or jams "
                                                         "(a folder, one file per clip).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The tasks file (label-studio) or folder to write.")],
    root: Annotated[Path | None, typer.Option("--root", help="label-studio: Label Studio's local-files document "
                                                             "root; data.audio is written relative to it.")] = None,
    hit_length: Annotated[float, typer.Option("--hit-length", help="Ranges this short or shorter are hits "
                                                                   "(Audacity point labels).")] = 0.1,
    taxonomy: TaxonomyOption = None,
    json_out: JsonOption = False,
) -> None:
    """Export a taxonomy's labels (and, for Label Studio, the active model's predictions)."""
    from engine.library.labelexport import export_labels

    report = export_labels(open_workspace(ctx), format, out, taxonomy=taxonomy, root=root, hit_length_s=hit_length)

    def render() -> None:
        predictions = f", {report.predictions} predictions" if format == "label-studio" else ""
        stdout.print(f"{report.taxonomy} → {shown(report.out)} ({report.format}): {report.clips} clips, "
                     f"{report.labels} labels{predictions}, {len(report.files)} files")

    finish(report.to_dict(), json_out, render=render)


@labels_app.command("add")
@handles_errors
def labels_add(
    ctx: typer.Context,
    clip: Annotated[str, typer.Argument(help="Clip id, id prefix, path or file name.")],
    label: Annotated[str, typer.Option("--label", "-l", help="Label or alias from the taxonomy.")],
    start: Annotated[float | None, typer.Option("--start", help="Start, seconds.")] = None,
    end: Annotated[float | None, typer.Option("--end", help="End, seconds.")] = None,
    start_beat: Annotated[float | None, typer.Option("--start-beat", help="Start beat on the clip's grid.")] = None,
    end_beat: Annotated[float | None, typer.Option("--end-beat", help="End beat on the clip's grid.")] = None,
    snap: Annotated[str | None, typer.Option("--snap", help="Snap beats to beat, half, quarter or bar.")] = None,
    confidence: Annotated[float, typer.Option("--confidence", min=0.0, max=1.0)] = 1.0,
    origin: Annotated[Origin, typer.Option("--origin", help="Who says so.")] = Origin.USER,
    technique: TechniqueOption = None,
    taxonomy: TaxonomyOption = None,
    json_out: JsonOption = False,
) -> None:
    """Label a whole clip, a time range (--start/--end) or a beat range (--start-beat/--end-beat)."""
    from engine.library.editing import add_label

    if (start is not None or end is not None) and (start_beat is not None or end_beat is not None):
        raise BadArguments("give either seconds (--start/--end) or beats (--start-beat/--end-beat), not both")
    workspace = open_workspace(ctx)
    added = add_label(workspace, clip, label, taxonomy=taxonomy, start_s=start, end_s=end, start_beat=start_beat,
                      end_beat=end_beat, snap=snap, origin=origin, confidence=confidence, techniques=technique or ())
    finish({"label": _label_dict(added)}, json_out,
           render=lambda: stdout.print(f"label {added.label_id}: [bold]{shown(added.label)}[/] on {added.segment.describe()} "
                                       f"of {added.clip_id[:12]} ({added.origin})"))


@labels_app.command("list")
@handles_errors
def labels_list(
    ctx: typer.Context,
    clip: Annotated[str | None, typer.Argument(help="Only this clip.")] = None,
    label: Annotated[str | None, typer.Option("--label", "-l")] = None,
    all_origins: Annotated[bool, typer.Option("--all-origins", help="Also labels overruled by a user label.")] = False,
    taxonomy: TaxonomyOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
    json_out: JsonOption = False,
) -> None:
    """List labels (the effective one per segment, unless --all-origins)."""
    from engine.library.clips import resolve_clip
    from engine.store.labels import query_labels

    workspace = open_workspace(ctx)
    with workspace.db.transaction(read_only=True) as con:
        clip_id = resolve_clip(con, clip).clip_id if clip else None
        labels = query_labels(con, clip_id=clip_id, taxonomy=taxonomy, label=label, effective=not all_origins)

    def render() -> None:
        with_techniques = any(item.techniques for item in labels[:limit])
        table = Table("id", "clip", "taxonomy", "label", "segment", "origin", "conf", "split", "took",
                      *(["techniques"] if with_techniques else []))
        for item in labels[:limit]:
            took = "" if item.lead_time_s is None else f"{item.lead_time_s:.1f} s"
            table.add_row(str(item.label_id), item.clip_id[:12], item.taxonomy, shown(item.label), item.segment.describe(),
                          str(item.origin), f"{item.confidence:.2f}", str(item.split or ""), took,
                          *([", ".join(item.techniques)] if with_techniques else []))
        stdout.print(table)
        if len(labels) > limit:
            stdout.print(f"… {len(labels) - limit} more (raise --limit)")

    finish({"count": len(labels), "labels": [_label_dict(item) for item in labels[:limit]]}, json_out, render=render)


@labels_app.command("tag")
@handles_errors
def labels_tag(
    ctx: typer.Context,
    label_id: Annotated[int, typer.Argument(help="The label's id (see `labels list`).")],
    technique: TechniqueOption = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every technique tag.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Set the playing techniques of a label (from its taxonomy's technique catalogue)."""
    from engine.library.editing import tag_label

    if not technique and not clear:
        raise BadArguments("give --technique NAME (repeatable) or --clear")
    if technique and clear:
        raise BadArguments("give either --technique or --clear, not both")
    change = tag_label(open_workspace(ctx), label_id, [] if clear else technique)
    tagged = change.added[0]
    finish({"label": _label_dict(tagged)}, json_out,
           render=lambda: stdout.print(f"label {tagged.label_id}: {shown(change.description)}"))


@labels_app.command("remove")
@handles_errors
def labels_remove(
    ctx: typer.Context,
    label_id: Annotated[int, typer.Argument(help="The label's id (see `labels list`).")],
    json_out: JsonOption = False,
) -> None:
    """Remove one label."""
    from engine.library.editing import remove_label

    removed = remove_label(open_workspace(ctx), label_id).removed[0]
    finish({"removed": _label_dict(removed)}, json_out,
           render=lambda: stdout.print(f"removed label {label_id} ({shown(removed.label)} on {removed.segment.describe()})"))


# -- beats ------------------------------------------------------------------------------------

beats_app = typer.Typer(help="Beat grids: detect, set by hand, show.", no_args_is_help=True)


def _grid_dict(clip, grid) -> dict:
    return {"clip_id": clip.clip_id, "path": clip.path, **grid.to_dict()}


@beats_app.command("set")
@handles_errors
def beats_set(
    ctx: typer.Context,
    clip: Annotated[str, typer.Argument(help="Clip id, id prefix, path or file name.")],
    bpm: Annotated[float | None, typer.Option("--bpm", help="Constant tempo.")] = None,
    offset: Annotated[float, typer.Option("--offset", help="Seconds of the first beat (beat 0).")] = 0.0,
    beat_times: Annotated[str | None, typer.Option("--beat-times",
                                                   help="Explicit beat times: comma-separated seconds or a file with one per line.")] = None,
    beats_per_bar: Annotated[int, typer.Option("--beats-per-bar", min=1)] = 4,
    json_out: JsonOption = False,
) -> None:
    """Set a clip's beat grid by hand; beat-range labels move with it."""
    from engine.audio.beatgrid import BeatGrid
    from engine.library.grids import set_grid

    if (bpm is None) == (beat_times is None):
        raise BadArguments("give either --bpm (with --offset) or --beat-times")
    try:
        if bpm is not None:
            grid = BeatGrid.constant(bpm, offset, beats_per_bar)
        else:
            text = Path(beat_times).read_text() if Path(beat_times).is_file() else beat_times
            grid = BeatGrid.from_beat_times([float(v) for v in text.replace(",", " ").split()], beats_per_bar)
    except ValueError as error:
        raise InputError(f"beat grid: {error}") from error
    workspace = open_workspace(ctx)
    clip_row, moved = set_grid(workspace, clip, grid)
    finish({"grid": _grid_dict(clip_row, grid), "labels_moved": moved}, json_out,
           render=lambda: stdout.print(f"{shown(clip_row.path)}: {grid.bpm:.2f} bpm, first beat {grid.offset_s:.3f} s, "
                                       f"{grid.beats_per_bar}/bar; {moved} beat-range labels moved"))


SKIPS_SHOWN = 20  # skipped clips `beats detect` names; --json lists them all


@beats_app.command("detect")
@handles_errors
def beats_detect(
    ctx: typer.Context,
    clips: Annotated[list[str] | None, typer.Argument(help="Clips to detect (or --all).")] = None,
    all_clips: Annotated[bool, typer.Option("--all", help="Every clip long enough for beat tracking.")] = False,
    beats_per_bar: Annotated[int, typer.Option("--beats-per-bar", min=1)] = 4,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace grids set by hand too.")] = False,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Detect constant-tempo beat grids (one-shots are skipped)."""
    from engine.library.grids import detect_grids

    if not clips and not all_clips:
        raise BadArguments("name clips to detect, or use --all")
    workspace = open_workspace(ctx)
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        report = detect_grids(workspace, None if all_clips else clips, beats_per_bar=beats_per_bar,
                              overwrite_user=overwrite, workers=workers, reporter=reporter, cancel=cancel)
    failed = [r for r in report.skipped if r.reason.value == "detection failed"]

    def render() -> None:
        for clip, grid in report.detected:
            stdout.print(f"{clip.path}: {grid.bpm:.2f} bpm, first beat {grid.offset_s:.3f} s", markup=False)
        reasons = ", ".join(f"{count} {reason}" for reason, count in report.skipped_by_reason().items())
        stdout.print(f"{len(report.detected)} grids detected, {len(report.skipped)} clips skipped"
                     + (f" ({reasons}):" if reasons else ""), markup=False)
        for rejection in report.skipped[:SKIPS_SHOWN]:
            stdout.print(f"  skipped {rejection}", markup=False)
        if len(report.skipped) > SKIPS_SHOWN:
            stdout.print(f"  … and {len(report.skipped) - SKIPS_SHOWN} more (use --json for the full list)")

    finish({"detected": [_grid_dict(c, g) for c, g in report.detected],
            "skipped": [r.to_dict() for r in report.skipped]}, json_out,
           partial=bool(failed), cancelled=report.cancelled, render=render)


@beats_app.command("show")
@handles_errors
def beats_show(
    ctx: typer.Context,
    clip: Annotated[str, typer.Argument(help="Clip id, id prefix, path or file name.")],
    json_out: JsonOption = False,
) -> None:
    """Show a clip's beat grid and its first bars."""
    from engine.library.clips import resolve_clip
    from engine.store.grids import get_grid

    workspace = open_workspace(ctx)
    with workspace.db.transaction(read_only=True) as con:
        clip_row = resolve_clip(con, clip)
        grid = get_grid(con, clip_row.clip_id)
    if grid is None:
        raise InputError(f"{clip_row.path}: no beat grid yet (use `beats detect` or `beats set`)")
    beats = grid.beat_times_within(clip_row.duration_s)
    finish({"grid": _grid_dict(clip_row, grid), "beats_in_clip": int(len(beats)),
            "bars_in_clip": float(len(beats) / grid.beats_per_bar)}, json_out,
           render=lambda: stdout.print(f"{shown(clip_row.path)}: {grid.bpm:.2f} bpm, first beat {grid.offset_s:.3f} s, "
                                       f"{grid.beats_per_bar}/bar, {len(beats)} beats in the clip"))


# -- stats and clips --------------------------------------------------------------------------

@handles_errors
def stats_command(ctx: typer.Context, taxonomy: TaxonomyOption = None, json_out: JsonOption = False) -> None:
    """Counts per label and source, coverage, and whether the label set is ready to train."""
    from engine.library.stats import workspace_stats

    stats = workspace_stats(open_workspace(ctx), taxonomy)

    def render() -> None:
        stdout.print(f"[bold]{stats.clips}[/] clips ({stats.total_duration_s / 60:.1f} min), "
                     f"{stats.clips_labelled} labelled, {stats.labels_per_clip:.2f} labels per labelled clip, "
                     f"{stats.beat_grids} beat grids")
        stdout.print(f"labelling speed: {stats.labelling.describe()}")
        sources = Table("source", "clips", "labels", title="Sources")
        for name, counts in stats.sources.items():
            sources.add_row(shown(name), str(counts["clips"]), str(counts["labels"]))
        stdout.print(sources)
        for tax in stats.taxonomies:
            table = Table("label", "count", "minimum", "", title=f"Taxonomy {tax.taxonomy}")
            for count in tax.labels:
                mark = "[green]✓[/]" if count.ready else "[red]✗[/]"
                table.add_row(f"[{count.colour}]■[/] {shown(count.label)}", str(count.count), str(count.minimum), mark)
            stdout.print(table)
            if tax.missing:
                stdout.print(f"no examples yet: {shown(', '.join(tax.missing))}")
            if tax.techniques:
                techniques = Table("technique", "segments", "labels", title=f"Techniques of {tax.taxonomy}")
                for name, by_label in tax.techniques.items():
                    techniques.add_row(shown(name), str(sum(by_label.values())),
                                       shown(", ".join(f"{label} {n}" for label, n in by_label.items())))
                stdout.print(techniques)
            if tax.suggestions:
                outcomes = Table("suggested", "accepted", "corrected", "rejected", "pending", "acceptance",
                                 title=f"Suggestions of {tax.taxonomy} (acceptance = accepted / decided)")
                for s in tax.suggestions:
                    rate = "–" if s.acceptance_rate is None else f"{s.acceptance_rate:.0%}"
                    outcomes.add_row(shown(s.label), str(s.accepted), str(s.corrected), str(s.rejected),
                                     str(s.pending), rate)
                stdout.print(outcomes)
            verdict = "[green]ready for training[/]" if tax.ready else f"[red]not ready[/]: {shown('; '.join(tax.reasons))}"
            stdout.print(f"{tax.taxonomy}: {verdict}")

    finish(stats.to_dict(), json_out, render=render)


clips_app = typer.Typer(help="Browse the clips of the workspace.", no_args_is_help=True)


@clips_app.command("list")
@handles_errors
def clips_list(
    ctx: typer.Context,
    query: Annotated[str, typer.Option(
        "--filter", "-f", help="The library's filter words, all of which must hold: label:kick, source:808, "
                               "predicted:snare, license:cc-by-4.0, dataset:NAME, unlabelled, low, disagrees, "
                               "and words of the path "
                               "(quote one to search it as text: '\"low\"').")] = "",
    sort: Annotated[str, typer.Option("--sort", "-s", help=f"Order: {', '.join(SORTS)}.")] = "path",
    source: Annotated[str | None, typer.Option("--source", help="Only clips of this source (pack), "
                                                              "exactly as `stats` names it.")] = None,
    unlabelled: Annotated[bool, typer.Option("--unlabelled", help="Only clips without any label.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    json_out: JsonOption = False,
) -> None:
    """List clips with their id, source, length, labels and the active model's prediction."""
    from engine.store.library_view import list_clips

    if sort not in SORTS:
        raise BadArguments(f"--sort must be one of {', '.join(SORTS)}, not {sort!r}")
    workspace = open_workspace(ctx)
    with workspace.db.transaction(read_only=True) as con:
        listing = list_clips(con, query=query, sort=sort, source=source, unlabelled=unlabelled, limit=limit)
    clips = [{"clip_id": c.clip_id, "path": c.path, "source": c.source, "duration_s": c.duration_s,
              "sample_rate": c.sample_rate, "channels": c.channels, "labels": list(c.labels),
              "predicted": c.predicted, "confidence": c.confidence, "dataset": c.dataset, "license": c.license}
             for c in listing.clips]

    def render() -> None:
        from_datasets = any(clip["dataset"] for clip in clips)
        table = Table("id", "source", "seconds", "labels", "predicted", *(["dataset", "licence"] if from_datasets else []),
                      "path")
        for clip in clips:
            predicted = f"{shown(clip['predicted'])} {clip['confidence']:.2f}" if clip["predicted"] else ""
            provenance = [shown(clip["dataset"] or ""), shown(clip["license"] or "")] if from_datasets else []
            table.add_row(clip["clip_id"][:12], shown(clip["source"]), f"{clip['duration_s']:.2f}",
                          shown(",".join(clip["labels"])), predicted, *provenance, shown(clip["path"]))
        stdout.print(table)
        if listing.total > len(clips):
            stdout.print(f"… {listing.total - len(clips)} more (raise --limit)")

    finish({"total": listing.total, "clips": clips}, json_out, render=render)


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.add_typer(labels_app, name="labels")
    app.add_typer(labels_app, name="label", hidden=True)  # `label add …` reads naturally too
    app.add_typer(beats_app, name="beats")
    app.command("stats")(stats_command)
    app.add_typer(clips_app, name="clips")
