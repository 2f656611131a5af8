"""`triage hard-negatives` and `weights derive`."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.context import JsonOption, TaxonomyOption, WorkersOption, open_workspace
from cli.output import finish, handles_errors, render_rejections, shown, stdout
from cli.progress import cancel_on_ctrl_c, progress_bar

weights_app = typer.Typer(help="Per-group sampling weights for training.", no_args_is_help=True)


@handles_errors
def hard_negatives_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", "-m", help="NAME (its active version) or NAME@VERSION.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file, one hard negative a line (written atomically).")],
    min_confidence: Annotated[float, typer.Option("--min-confidence", min=0.0, max=1.0)] = 0.7,
    max_per_label: Annotated[int, typer.Option("--max-per-label", min=1, help="At most this many per predicted label.")] = 150,
    ood: Annotated[Path | None, typer.Option("--ood", help="A folder of sounds outside the label set: any confident prediction is a hard negative.")] = None,
    dataset: Annotated[Path | None, typer.Option("--dataset", help="A curated folder to look through (default: the model's labelled clips).")] = None,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Clips the model predicts confidently as a label a person gave them otherwise, most confident first."""
    from engine.triage.hard_negatives import hard_negatives, write_jsonl

    workspace = open_workspace(ctx)
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        version, negatives, rejections = hard_negatives(
            workspace, model, min_confidence=min_confidence, max_per_label=max_per_label, ood_folder=ood,
            dataset=dataset, workers=workers, reporter=reporter, cancel=cancel)
    path = write_jsonl(negatives, out, version.ref)
    per_label: dict[str, int] = {}
    for negative in negatives:
        per_label[negative.predicted] = per_label.get(negative.predicted, 0) + 1

    def render() -> None:
        table = Table("predicted", "confidence", "labelled", "file")
        for n in negatives[:20]:
            table.add_row(shown(n.predicted), f"{n.confidence:.3f}", shown(n.label or "(ood)"), shown(n.path))
        stdout.print(table)
        stdout.print(f"{len(negatives)} hard negatives of {version.ref} written to {shown(path)}")
        render_rejections(rejections)

    finish({"model": version.ref, "out": str(path), "count": len(negatives), "per_label": per_label,
            "rejections": [r.to_dict() for r in rejections]}, json_out, partial=bool(rejections), render=render)


@weights_app.command("derive")
@handles_errors
def weights_derive(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Weights JSON (written atomically); pass it to `train --weights`.")],
    group: Annotated[str, typer.Option("--group", help="source (pack) or session (the clip's folder).")] = "source",
    clamp: Annotated[tuple[float, float], typer.Option("--clamp", help="LO HI bounds of a weight.")] = (0.05, 0.5),
    taxonomy: TaxonomyOption = None,
    min_confidence: Annotated[float, typer.Option("--min-confidence", min=0.0, max=1.0)] = 0.0,
    json_out: JsonOption = False,
) -> None:
    """Per-group weights within each class: inverse group frequency, rarest group = 1, clamped to [LO, HI]."""
    from engine.datasets.weights import derive_weights, write_weights

    document = derive_weights(open_workspace(ctx), grouping=group, clamp=clamp, taxonomy=taxonomy,
                              min_confidence=min_confidence)
    path = write_weights(document, out)

    def render() -> None:
        table = Table("class", group, "clips", "weight")
        for label, groups in document["weights"].items():
            for name, weight in groups.items():
                table.add_row(label, name, str(document["counts"][label][name]), f"{weight:.3f}")
        stdout.print(table)
        stdout.print(f"wrote {path}")

    finish({"out": str(path), **document}, json_out, render=render)


def _shared_triage_app() -> typer.Typer | None:
    """The `triage` sub-app of cli/commands_gates.py (triage suspects), when that module has one."""
    if importlib.util.find_spec("cli.commands_gates") is None:
        return None
    return getattr(importlib.import_module("cli.commands_gates"), "triage_app", None)


def register(app: typer.Typer) -> None:
    shared = _shared_triage_app()
    triage_app = shared or typer.Typer(help="Triage lists: clips to audition and relabel first.", no_args_is_help=True)
    triage_app.command("hard-negatives")(hard_negatives_command)
    if shared is None:
        app.add_typer(triage_app, name="triage")
    app.add_typer(weights_app, name="weights")
