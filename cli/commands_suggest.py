"""`suggest`: a model pre-labels the most informative unlabelled clips; `suggest list`, `suggest
accept|reject|correct` decide on them (the label screen's `a`, `z` and class keys do the same)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.context import JsonOption, TaxonomyOption, WorkersOption, open_workspace
from cli.output import BadArguments, finish, handles_errors, render_rejections, shown, stdout
from cli.progress import cancel_on_ctrl_c, progress_bar

suggest_app = typer.Typer(
    help="Suggestions: a model labels the unlabelled clips it is least sure of (most informative first) for "
         "you to accept, reject or correct. `suggest --model REF --limit N` makes them.",
    invoke_without_command=True)

ClipsArgument = Annotated[list[str] | None, typer.Argument(
    help="Clips (id, id prefix, path or file name) whose pending suggestions to decide.", show_default=False)]
AboveOption = Annotated[float | None, typer.Option(
    "--all-above", min=0.0, max=1.0, help="Every pending suggestion at least this confident, instead of CLIPs.")]


def _table(rows) -> Table:
    table = Table("rank", "clip", "file", "suggested", "confidence", "uncertainty", "model", "outcome")
    for s in rows:
        outcome = s.outcome or "pending"
        if s.corrected_to:
            outcome += f" → {shown(s.corrected_to)}"
        table.add_row(str(s.rank), s.clip_id[:10], shown(s.path.rsplit("/", 1)[-1]), shown(s.label),
                      f"{s.confidence:.3f}", f"{s.score:.3f}", shown(s.model_ref), outcome)
    return table


@suggest_app.callback()
@handles_errors
def suggest_command(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", "-m", help="NAME (its active version) or NAME@VERSION.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many suggestions.")] = 20,
    by: Annotated[str, typer.Option("--by", help="Uncertainty: margin (1 - (p1 - p2)) or entropy (H(p) / log K).")] = "margin",
    similarity: Annotated[float, typer.Option(
        "--similarity", min=0.0, max=1.0,
        help="A clip this similar (cosine, z-scored features) to one already suggested is skipped.")] = 0.999,
    alike: Annotated[float, typer.Option(
        "--alike", min=0.0, max=1.0,
        help="A clip this similar to one already suggested waits until every unlike clip is in (1: off).")] = 0.9,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Run the model over the clips without a label of its taxonomy and suggest the N most informative."""
    if ctx.invoked_subcommand is not None:
        return
    if model is None:
        raise BadArguments("give --model REF to make suggestions, or a command: list, accept, reject, correct")
    from engine.triage.suggestions import suggest

    workspace = open_workspace(ctx)
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        run = suggest(workspace, model, limit=limit, measure=by, similarity=similarity, alike=alike, workers=workers,
                      reporter=reporter, cancel=cancel)

    def render() -> None:
        if run.suggestions:
            stdout.print(_table(run.suggestions))
        stdout.print(f"{len(run.suggestions)} suggestions of {shown(run.model)} from {run.candidates} unlabelled "
                     f"clips of {shown(run.taxonomy)}; decide with `suggest accept|reject|correct` or the label "
                     "screen (S walks them)")
        render_rejections(run.rejections)

    finish({"model": run.model, "taxonomy": run.taxonomy, "candidates": run.candidates,
            "suggestions": [s.to_dict() for s in run.suggestions],
            "rejections": [r.to_dict() for r in run.rejections]}, json_out, partial=bool(run.rejections),
           render=render)


@suggest_app.command("list")
@handles_errors
def suggest_list(
    ctx: typer.Context,
    every: Annotated[bool, typer.Option("--all", help="Decided suggestions too, with their outcomes.")] = False,
    taxonomy: TaxonomyOption = None,
    json_out: JsonOption = False,
) -> None:
    """Pending suggestions in the order the label screen walks them (decided ones too with --all)."""
    from engine.triage.suggestions import all_suggestions, pending

    workspace = open_workspace(ctx)
    rows = all_suggestions(workspace, taxonomy=taxonomy) if every else pending(workspace, taxonomy=taxonomy)

    def render() -> None:
        stdout.print(_table(rows) if rows else "no suggestions" + ("" if every else " pending"))

    finish({"suggestions": [s.to_dict() for s in rows]}, json_out, render=render)


def _clip_ids(workspace, refs: list[str] | None) -> list[str] | None:
    from engine.library.clips import resolve_clip

    if not refs:
        return None
    with workspace.db.transaction(read_only=True) as con:
        return [resolve_clip(con, ref).clip_id for ref in refs]


def _decide(ctx: typer.Context, outcome: str, clips: list[str] | None, above: float | None, taxonomy: str | None,
            json_out: bool) -> None:
    from engine.triage.suggestions import decide_many

    if bool(clips) == (above is not None):
        raise BadArguments("name the CLIPs, or give --all-above P (not both)")
    workspace = open_workspace(ctx)
    decisions = decide_many(workspace, outcome, clip_ids=_clip_ids(workspace, clips), above=above, taxonomy=taxonomy)

    def render() -> None:
        for d in decisions:
            stdout.print(f"{outcome} {shown(d.suggestion.label)} on {shown(d.suggestion.path)}")
        stdout.print(f"{len(decisions)} suggestion{'' if len(decisions) == 1 else 's'} {outcome}")

    finish({"outcome": outcome, "decided": [d.to_dict() for d in decisions]}, json_out, render=render)


@suggest_app.command("accept")
@handles_errors
def suggest_accept(ctx: typer.Context, clips: ClipsArgument = None, above: AboveOption = None,
                   taxonomy: TaxonomyOption = None, json_out: JsonOption = False) -> None:
    """Accept suggestions: each suggested label becomes your own (origin user)."""
    _decide(ctx, "accepted", clips, above, taxonomy, json_out)


@suggest_app.command("reject")
@handles_errors
def suggest_reject(ctx: typer.Context, clips: ClipsArgument = None, above: AboveOption = None,
                   taxonomy: TaxonomyOption = None, json_out: JsonOption = False) -> None:
    """Reject suggestions: the model's label goes and this version does not suggest it there again."""
    _decide(ctx, "rejected", clips, above, taxonomy, json_out)


@suggest_app.command("correct")
@handles_errors
def suggest_correct(
    ctx: typer.Context,
    clip: Annotated[str, typer.Argument(help="The clip (id, id prefix, path or file name).")],
    label: Annotated[str, typer.Argument(help="The label it should have instead.")],
    taxonomy: TaxonomyOption = None,
    json_out: JsonOption = False,
) -> None:
    """Correct a suggestion: LABEL becomes your label of the clip, recorded as a correction."""
    from engine.errors import NotFound
    from engine.triage.suggestions import decide, pending

    workspace = open_workspace(ctx)
    clip_id = _clip_ids(workspace, [clip])[0]
    found = pending(workspace, taxonomy=taxonomy, clip_id=clip_id)
    if not found:
        raise NotFound(f"no pending suggestion on {clip}")
    decision = decide(workspace, found[0].suggestion_id, "corrected", label)

    def render() -> None:
        instead = f" → {shown(decision.corrected_to)}" if decision.corrected_to else ""
        stdout.print(f"{decision.outcome} {shown(decision.suggestion.label)}{instead} on {shown(decision.suggestion.path)}")

    finish({"decided": [decision.to_dict()]}, json_out, render=render)


def register(app: typer.Typer) -> None:
    app.add_typer(suggest_app, name="suggest")
