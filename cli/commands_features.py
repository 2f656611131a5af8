"""Feature commands: extract into the cache, inspect and clear the cache, export datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.context import JsonOption, TaxonomyOption, WorkersOption, open_workspace
from cli.output import BadArguments, finish, handles_errors, render_rejections, shown, stderr, stdout
from cli.progress import cancel_on_ctrl_c, progress_bar
from engine.embeddings.aisfx import ensure_installed
from engine.features.spec import FeatureSpec, parse_params

ExtractorOption = Annotated[str, typer.Option("--extractor", "-e", help="dsp, mel, onnx:NAME or hybrid:NAME.")]
ParamOption = Annotated[list[str] | None, typer.Option("--param", "-p",
                                                       help="Extractor parameter key=value (hybrid: dsp.key=value); repeatable.")]

features_app = typer.Typer(help="Extract features into the workspace's cache.", no_args_is_help=True)


@features_app.command("extract")
@handles_errors
def features_extract(
    ctx: typer.Context,
    extractor: ExtractorOption = "dsp",
    param: ParamOption = None,
    labelled_only: Annotated[bool, typer.Option("--labelled-only", help="Skip clips without labels.")] = False,
    taxonomy: TaxonomyOption = None,
    workers: WorkersOption = None,
    device: Annotated[str, typer.Option("--device", help="auto (default: cuda when there is one), cpu or cuda: where "
                                                         "the aiSFX embedding (and ONNX models, with onnxruntime-gpu) run.")] = "auto",
    json_out: JsonOption = False,
) -> None:
    """Extract features for every labelled segment (and every unlabelled clip); Ctrl-C keeps what is done."""
    from engine.features.service import extract_workspace

    workspace = open_workspace(ctx)
    spec = FeatureSpec.parse(extractor, parse_params(param or [])).with_embedding_defaults()  # as train extracts
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        ensure_installed(workspace, str(spec), reporter)  # the first use of onnx:aisfx / hybrid:aisfx converts it
        report = extract_workspace(workspace, spec, labelled_only=labelled_only, taxonomy=taxonomy, workers=workers,
                                   reporter=reporter, cancel=cancel, device=device)

    def render() -> None:
        rate = report.audio_seconds / report.seconds if report.seconds else 0.0
        stdout.print(f"{spec}: [bold]{report.extracted}[/] extracted, {report.cached} already cached, "
                     f"{len(report.rejections)} rejected, {report.clips_decoded} clips decoded "
                     f"({report.seconds:.1f} s, {rate:.0f} s of audio per second)")
        render_rejections(report.rejections)

    finish(report.to_dict(), json_out, partial=report.partial, cancelled=report.cancelled, render=render)


cache_app = typer.Typer(help="The feature cache: sizes, clearing.", no_args_is_help=True)


@cache_app.command("stats")
@handles_errors
def cache_stats(ctx: typer.Context, json_out: JsonOption = False) -> None:
    """Entries and bytes per extractor version; entries of an older code version are stale."""
    from engine.features.spec import FeatureSpec as Spec

    workspace = open_workspace(ctx)
    current = {e.name: e.code_version for kind in ("dsp", "mel") for e in Spec.parse(kind).extractors(workspace.embeddings_dir)}
    rows = [{"extractor": s.extractor, "key_prefix": s.prefix, "entries": s.entries, "bytes": s.bytes,
             "stale": s.extractor in current and not s.prefix.endswith(current[s.extractor])}
            for s in workspace.cache.stats()]

    def render() -> None:
        table = Table("extractor", "key prefix", "entries", "MB", "", title=f"Feature cache {workspace.cache_dir}")
        for row in rows:
            table.add_row(row["extractor"], row["key_prefix"], str(row["entries"]), f"{row['bytes'] / 1e6:.2f}",
                          "[yellow]stale[/]" if row["stale"] else "")
        stdout.print(table)

    finish({"path": str(workspace.cache_dir), "entries": sum(r["entries"] for r in rows),
            "bytes": sum(r["bytes"] for r in rows), "prefixes": rows}, json_out, render=render)


@cache_app.command("clear")
@handles_errors
def cache_clear(
    ctx: typer.Context,
    extractor: Annotated[str | None, typer.Option("--extractor", "-e", help="Only this extractor (dsp, mel, onnx).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Delete cached features (all, or one extractor's)."""
    workspace = open_workspace(ctx)
    removed = workspace.cache.clear(keep=lambda prefix: extractor is not None and prefix.split(":", 1)[0] != extractor)
    finish({"removed": removed, "extractor": extractor}, json_out,
           render=lambda: stdout.print(f"removed {removed} cached feature entries"))


@handles_errors
def export_dataset_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (replaced atomically if it exists).")],
    extractor: ExtractorOption = "dsp",
    param: ParamOption = None,
    split: Annotated[str, typer.Option("--split", help="group: each source/pack in one split; clip: stratified by clip.")] = "clip",
    val: Annotated[float, typer.Option("--val", min=0.0, max=0.9)] = 0.15,
    test: Annotated[float, typer.Option("--test", min=0.0, max=0.9)] = 0.15,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    augment: Annotated[int, typer.Option("--augment", min=0,
                                         help="Augmented copies per training segment (gain, shift, noise, pitch).")] = 0,
    min_confidence: Annotated[float, typer.Option("--min-confidence", min=0.0, max=1.0)] = 0.0,
    format: Annotated[str, typer.Option("--format", help="features: manifest.json + arrays per split; "
                                                         "audiofolder: a Hugging Face AudioFolder (audio, "
                                                         "metadata.csv per split, a card with the licences).")] = "features",
    taxonomy: TaxonomyOption = None,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Write a labelled feature dataset (manifest.json + arrays per split), or the labelled audio as a
    Hugging Face AudioFolder (--format audiofolder)."""
    from engine.datasets.export import export_dataset

    if format not in ("features", "audiofolder"):
        raise BadArguments(f"--format must be features or audiofolder, not {format!r}")
    workspace = open_workspace(ctx)
    if format == "audiofolder":
        from engine.datasets.audiofolder import export_audiofolder

        folder = export_audiofolder(workspace, out, taxonomy=taxonomy, split_by=split, val=val, test=test, seed=seed,
                                    min_confidence=min_confidence)

        def said() -> None:
            splits = ", ".join(f"{n} {name}" for name, n in folder.splits.items())
            licences = ", ".join(f"{n} {name}" for name, n in folder.licenses.items())
            stdout.print(f"wrote {shown(folder.out)}: {folder.clips} clips ({splits}); licences: {shown(licences)}")
            render_rejections(folder.rejections)

        finish(folder.to_dict(), json_out, partial=bool(folder.rejections), render=said)
    spec = FeatureSpec.parse(extractor, parse_params(param or [])).with_embedding_defaults()  # as train extracts
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        ensure_installed(workspace, str(spec), reporter)
        report = export_dataset(workspace, out, spec, taxonomy=taxonomy, split_by=split, val=val, test=test,
                                seed=seed, augment=augment, min_confidence=min_confidence, workers=workers,
                                reporter=reporter, cancel=cancel)

    def render() -> None:
        manifest = report.manifest
        table = Table("class", *manifest["counts"].keys(), title=f"{report.out} ({manifest['fingerprint']})")
        for name in manifest["classes"]:
            table.add_row(name, *(str(manifest["counts"][s].get(name, 0)) for s in manifest["counts"]))
        stdout.print(table)
        for note in report.notes:
            stderr.print(f"note: {shown(note)}")
        render_rejections(report.rejections)

    finish(report.to_dict(), json_out, partial=bool(report.rejections), cancelled=report.cancelled,
           render=render if report.manifest else None)


dataset_app = typer.Typer(help="Datasets: an export folder or a curated folder root.", no_args_is_help=True)


@dataset_app.command("info")
@handles_errors
def dataset_info(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="An export (manifest.json) or a curated folder (<class>/<audio>).")],
    extractor: Annotated[str | None, typer.Option("--extractor", "-e",
                                                  help="For a curated folder (default dsp); an export names its own.")] = None,
    param: ParamOption = None,
    taxonomy: TaxonomyOption = None,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Classes, counts and feature shape of a dataset (a curated folder is featurised through the cache)."""
    from engine.datasets.source import open_dataset

    workspace = open_workspace(ctx)
    spec = FeatureSpec.parse(extractor, parse_params(param or [])) if extractor else None
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        ensure_installed(workspace, extractor, reporter)
        dataset = open_dataset(path, workspace, spec=spec, taxonomy=taxonomy, workers=workers, reporter=reporter,
                               cancel=cancel)
    summary = dataset.summary()

    def render() -> None:
        stdout.print(f"{summary['kind']} dataset {summary['path']}: {summary['rows']} rows of {summary['extractor']} "
                     f"{tuple(summary['feature_shape'])}, {len(summary['sources'])} sources")
        for name, count in summary["counts"].items():
            stdout.print(f"  {name:<16} {count}")
        render_rejections(dataset.rejections)

    finish(summary, json_out, partial=bool(dataset.rejections), render=render)


embeddings_app = typer.Typer(help="Pretrained ONNX embedding models in the workspace.", no_args_is_help=True)


@embeddings_app.command("list")
@handles_errors
def embeddings_list(ctx: typer.Context, json_out: JsonOption = False) -> None:
    """The embedding models in models/embeddings/ (use them as --features onnx:NAME or hybrid:NAME)."""
    from engine.errors import InputError
    from engine.features.onnx_embed import read_sidecar

    workspace = open_workspace(ctx)
    models = []
    for path in sorted(workspace.embeddings_dir.glob("*.onnx")):
        sidecar = path.with_suffix(".json")
        try:
            settings = read_sidecar(sidecar) if sidecar.exists() or sidecar.is_symlink() else {}
        except InputError as error:  # listed with what is wrong, so the others still show
            settings = {"error": str(error)}
        models.append({"name": path.stem, "path": str(path), "bytes": path.stat().st_size, **settings})
    finish({"embeddings": models}, json_out, render=lambda: [
        stdout.print(f"{m['name']}: {m['path']} {m.get('error') or m.get('source', '')}", markup=False) for m in models]
        or stdout.print("no embedding models yet (see `embeddings install-aisfx`)"))


@embeddings_app.command("install-aisfx")
@handles_errors
def embeddings_install_aisfx(
    ctx: typer.Context,
    source: Annotated[Path | None, typer.Option("--source", help="The aisfx wheel, its unpacked folder or checkpoint.pth "
                                                                  "(default: the weights workbench ships).")] = None,
    name: Annotated[str, typer.Option("--name")] = "aisfx",
    json_out: JsonOption = False,
) -> None:
    """Install the aiSFX sound-effects embedding (512-d, CC-BY-4.0) as an ONNX model, offline, from the
    weights workbench ships (or --source). The first use of --features onnx:aisfx or hybrid:aisfx does
    this by itself; run it to convert ahead, or to make `train` default to hybrid:aisfx."""
    from engine.embeddings.aisfx import install_aisfx

    # Setting up the embedding can come before the first import (training then uses it by default).
    workspace = open_workspace(ctx, create=True)
    with progress_bar() as reporter:
        path = install_aisfx(workspace, source=source, name=name, reporter=reporter)
    finish({"name": name, "path": str(path)}, json_out,
           render=lambda: stdout.print(f"installed {path}; use --features onnx:{name} or hybrid:{name}"))


def register(app: typer.Typer) -> None:
    app.add_typer(embeddings_app, name="embeddings")
    app.add_typer(dataset_app, name="dataset")
    app.add_typer(features_app, name="features")
    app.add_typer(cache_app, name="cache")
    app.command("export-dataset")(export_dataset_command)
