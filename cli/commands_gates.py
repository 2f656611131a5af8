"""Readiness gates and triage: gates run | compare | list, triage suspects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table

from cli.context import JsonOption, TaxonomyOption, WorkersOption, open_workspace
from cli.output import BadArguments, ExitCode, finish, handles_errors, print_json, shown, stderr, stdout
from cli.progress import cancel_on_ctrl_c, progress_bar
from engine.embeddings.aisfx import ensure_installed

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Gate thresholds (TOML) over the defaults; see `gates list`.")]
FeaturesOption = Annotated[str, typer.Option("--features", "-f", help="Features for duplicates and mislabels (dsp, onnx:NAME, hybrid:NAME).")]
STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "SKIP": "dim"}

gates_app = typer.Typer(help="Readiness gates of the dataset and of a model version.", no_args_is_help=True)
triage_app = typer.Typer(help="Lists of segments to audition first (likely mislabels, duplicates).", no_args_is_help=True)


def render_results(report) -> None:
    table = Table("value", "threshold", "", "detail")
    table.columns.insert(0, Column("check", no_wrap=True))
    for result in report.results:
        table.add_row(escape(result.gate), result.value_text, escape(result.threshold),
                      f"[{STATUS_STYLE[result.status]}]{result.status}[/]", escape(result.detail[:100]))
    stdout.print(table)
    summary = ", ".join(f"{sum(r.status == s for r in report.results)} {s}" for s in ("PASS", "FAIL", "SKIP"))
    verdict = "[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]"
    stdout.print(f"{verdict}: {summary}" + (" (halted at the first failure)" if report.halted else ""))


@gates_app.command("run")
@handles_errors
def gates_run(
    ctx: typer.Context,
    config: ConfigOption = None,
    taxonomy: TaxonomyOption = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Also gate this model version (NAME or NAME@N).")] = None,
    test: Annotated[Path | None, typer.Option("--test", help="Labelled folder to score the model on (default: its test split).")] = None,
    ood: Annotated[Path | None, typer.Option("--ood", help="Folder of sounds outside the label set (open-set gates).")] = None,
    features: FeaturesOption = "dsp",
    require_technique: Annotated[list[str] | None, typer.Option(
        "--require-technique", help="A playing technique that must have an example (repeatable).")] = None,
    require_techniques_file: Annotated[Path | None, typer.Option(
        "--require-techniques-file", help="Required techniques: a JSON list or one name per line.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the HTML report here.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the JSON report here.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any gate fails (for CI).")] = False,
    halt: Annotated[bool, typer.Option("--halt-on-first-failure", help="Stop at the first failing gate.")] = False,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Run the dataset gates (and the model gates with --model); the report goes to <workspace>/reports/
    as JSON and HTML and into the workspace's gate history."""
    from engine.gates.report import write_html, write_json
    from engine.gates.runner import run_and_store

    workspace = open_workspace(ctx)
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        ensure_installed(workspace, features, reporter)  # the first use of onnx:aisfx / hybrid:aisfx converts it
        run = run_and_store(workspace, config=config, taxonomy=taxonomy, model=model, test=test, ood=ood,
                            features=features, halt_on_first_failure=halt, workers=workers, reporter=reporter,
                            cancel=cancel, required_techniques=require_technique,
                            required_techniques_file=require_techniques_file)
    report, report_id, json_path, html_path = run.report, run.report_id, run.json_path, run.html_path
    files = {"json": str(json_path), "html": str(html_path)}
    if out:
        files["out"] = str(write_json(report, out))
    if html:
        files["html_copy"] = str(write_html(report, html))
    document = {"report_id": report_id, "files": files, "report": report.to_dict()}

    def render() -> None:
        render_results(report)
        stderr.print(f"report {report_id}: {json_path} and {html_path.name}", markup=False)

    if strict and not report.passed:
        if json_out:
            print_json({"ok": False, "exit_code": int(ExitCode.FAILED), **document})
        else:
            render()
            stderr.print(f"[bold red]{len(report.failures)} gate(s) failed[/] (--strict)")
        raise typer.Exit(int(ExitCode.FAILED))
    finish(document, json_out, render=render)


@gates_app.command("compare")
@handles_errors
def gates_compare(
    base: Annotated[Path, typer.Argument(help="The baseline report (JSON).")],
    new: Annotated[Path, typer.Argument(help="The newer report (JSON).")],
    max_drop: Annotated[float, typer.Option("--max-drop", help="Largest allowed fall of a class's count, in percent.")] = 25.0,
    json_out: JsonOption = False,
) -> None:
    """Fail (exit 1) when a class's count fell beyond --max-drop percent, a gate newly fails, or
    labels outside the taxonomy rose; print the differences."""
    from engine.gates.report import compare_reports, load_report

    comparison = compare_reports(load_report(base), load_report(new), max_drop)

    def render() -> None:
        table = Table("label", "base", "new", "change", "")
        for c in comparison.classes:
            table.add_row(escape(c["label"]), str(c["base"]), str(c["new"]), f"{c['change_pct']:+.1f}%",
                          "[bold red]DROP[/]" if c["dropped"] else "")
        stdout.print(table)
        for gate_id in comparison.newly_failing:
            stdout.print(f"[bold red]newly failing[/]: {escape(gate_id)}")
        for gate_id in comparison.newly_passing:
            stdout.print(f"[green]newly passing[/]: {escape(gate_id)}")
        if comparison.techniques:
            techniques = Table("technique", "base", "new", "change")
            for t in comparison.techniques:
                techniques.add_row(escape(t["technique"]), str(t["base"]), str(t["new"]), f"{t['change']:+d}")
            stdout.print(techniques)
        stdout.print(f"labels outside the taxonomy: {comparison.unknown_before} → {comparison.unknown_after}")
        stdout.print("[bold green]PASS[/]" if comparison.passed else
                      "[bold red]FAIL[/]: " + escape("; ".join(comparison.reasons())))

    if comparison.passed:
        finish(comparison.to_dict(), json_out, render=render)
    if json_out:
        print_json({"ok": False, "exit_code": int(ExitCode.FAILED), **comparison.to_dict()})
    else:
        render()
    raise typer.Exit(int(ExitCode.FAILED))


@gates_app.command("list")
@handles_errors
def gates_list(json_out: JsonOption = False) -> None:
    """Every gate with its default thresholds and what it checks."""
    from engine.gates.core import all_gates

    gates = all_gates()

    def render() -> None:
        table = Table("gate", "defaults", "what it checks", show_lines=True)
        for g in gates:
            defaults = ", ".join(f"{k}={v!r}" for k, v in g.defaults.items()) or "—"
            table.add_row(escape(g.id), escape(defaults), escape(" ".join(g.doc.split())))
        stdout.print(table)

    finish({"gates": [{"id": g.id, "scope": g.scope, "title": g.title, "defaults": g.defaults, "doc": g.doc}
                      for g in gates]}, json_out, render=render)


@triage_app.command("suspects")
@handles_errors
def triage_suspects(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Use this version's features and task (NAME or NAME@N).")] = None,
    features: Annotated[str | None, typer.Option("--features", "-f", help="Features without --model (default dsp).")] = None,
    taxonomy: TaxonomyOption = None,
    config: ConfigOption = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="List at most this many.")] = None,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Likely mislabels (confident learning, out of fold) and near-duplicate pairs, most suspicious first."""
    from engine.gates.core import load_settings
    from engine.gates.dataset import DatasetContext
    from engine.models.registry import resolve
    from engine.triage.suspects import suspects
    from engine.library.suspect_queue import save_queue

    if model and features:
        raise BadArguments("give --model (its features and task) or --features, not both")
    settings = load_settings(config)
    workspace = open_workspace(ctx)
    version = resolve(workspace, model) if model else None
    spec = version.spec if version else (features or "dsp")
    taxonomy = taxonomy or (version.task_taxonomy(workspace) if version else None)
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        ensure_installed(workspace, str(spec), reporter)
        context = DatasetContext(workspace, taxonomy, spec, reporter, cancel, workers=workers)
        found = suspects(context, settings, limit)
    queue = save_queue(workspace, [s.to_dict() for s in found])

    def render() -> None:
        table = Table("#", "kind", "score", "label", "suggested", "path", "detail")
        for rank, s in enumerate(found, start=1):
            table.add_row(str(rank), s.kind, f"{s.score:.3f}", escape(s.label), escape(s.suggested or ""),
                          shown(s.path), escape(s.detail))
        stdout.print(table)
        stderr.print(f"{len(found)} suspects in {context.taxonomy.name} ({context.spec}); "
                     f"the label screen's ! walks them in this order", markup=False)

    finish({"taxonomy": context.taxonomy.name, "features": str(context.spec),
            "model": version.ref if version else None, "suspects": [s.to_dict() for s in found],
            "queue": str(queue)}, json_out,
           render=render)


def register(app: typer.Typer) -> None:
    app.add_typer(gates_app, name="gates")
    app.add_typer(triage_app, name="triage")
