"""Workspace commands: taxonomies, jobs and the demo."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.context import JsonOption, WorkersOption, open_workspace
from cli.output import finish, handles_errors, print_json, shown, stdout
from engine.errors import InputError

taxonomy_app = typer.Typer(help="Label sets: list, show, create, choose the default.", no_args_is_help=True)


@taxonomy_app.command("list")
@handles_errors
def taxonomy_list(ctx: typer.Context, json_out: JsonOption = False) -> None:
    """The taxonomies this workspace can use (built-in and its own)."""
    workspace = open_workspace(ctx)
    names = workspace.taxonomies.names()
    default = workspace.default_taxonomy_name
    items = [{"name": n, "default": n == default, "labels": workspace.taxonomy(n).names} for n in names]
    finish({"taxonomies": items}, json_out, render=lambda: [
        stdout.print(f"{'*' if i['default'] else ' '} {i['name']}: {', '.join(i['labels'])}") for i in items])


@taxonomy_app.command("show")
@handles_errors
def taxonomy_show(ctx: typer.Context, name: Annotated[str, typer.Argument()], json_out: JsonOption = False) -> None:
    """Labels of a taxonomy with colours, minimum counts and aliases."""
    taxonomy = open_workspace(ctx).taxonomy(name)

    def render() -> None:
        table = Table("label", "minimum", "aliases", "description", title=f"{taxonomy.name}: {taxonomy.description}")
        for spec in taxonomy.labels:
            table.add_row(f"[{spec.colour}]■[/] {spec.name}", str(spec.min_count), ", ".join(spec.aliases),
                          spec.description)
        stdout.print(table)

    finish(taxonomy.to_dict(), json_out, render=render)


@taxonomy_app.command("techniques")
@handles_errors
def taxonomy_techniques(ctx: typer.Context, name: Annotated[str | None, typer.Argument(help="Taxonomy (default: the workspace's).")] = None,
                        json_out: JsonOption = False) -> None:
    """The playing techniques a taxonomy's labels may be tagged with (its technique catalogue)."""
    catalogue = open_workspace(ctx).technique_catalogue(name)
    document = {"taxonomy": catalogue.taxonomy, "path": str(catalogue.path) if catalogue.path else None,
                "techniques": [{"name": t.name, "description": t.description, "labels": list(t.labels)}
                               for t in catalogue.techniques]}

    def render() -> None:
        if not catalogue.techniques:
            stdout.print(f"taxonomy {catalogue.taxonomy} has no technique catalogue "
                         f"(add <workspace>/techniques/{catalogue.taxonomy}.json)")
            return
        table = Table("technique", "applies to", "description", title=f"{catalogue.taxonomy}: {catalogue.path}")
        for technique in catalogue.techniques:
            table.add_row(technique.name, ", ".join(technique.labels) or "every label", technique.description)
        stdout.print(table)

    finish(document, json_out, render=render)


@taxonomy_app.command("create")
@handles_errors
def taxonomy_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="lowercase name, e.g. fx")],
    labels: Annotated[str, typer.Option("--labels", help="Comma-separated label names.")],
    min_count: Annotated[int, typer.Option("--min-count", min=1)] = 10,
    json_out: JsonOption = False,
) -> None:
    """Write a new taxonomy into the workspace's taxonomies/ folder (edit it to add aliases and colours)."""
    from engine.taxonomy import check_name, load_taxonomy_file, normalise_label, taxonomy_toml

    check_name(name, "taxonomy name")
    workspace = open_workspace(ctx, create=True)  # a label set can come before the first import
    path = workspace.taxonomies_dir / f"{name}.toml"
    if path.exists():
        raise InputError(f"{path} already exists; edit it instead")
    names = [normalise_label(label) for label in labels.split(",") if label.strip()]
    temporary = path.with_suffix(".toml.tmp")
    temporary.write_text(taxonomy_toml(name, names, min_count))
    try:
        taxonomy = load_taxonomy_file(temporary)
    except Exception:
        temporary.unlink()
        raise
    temporary.replace(path)
    finish({"path": str(path), **taxonomy.to_dict()}, json_out,
           render=lambda: stdout.print(f"wrote {path} with {len(names)} labels"))


@taxonomy_app.command("use")
@handles_errors
def taxonomy_use(ctx: typer.Context, name: Annotated[str, typer.Argument()], json_out: JsonOption = False) -> None:
    """Make NAME the workspace's default taxonomy."""
    workspace = open_workspace(ctx)
    workspace.taxonomy(name)  # must exist
    workspace.set_setting("default_taxonomy", name)
    finish({"default_taxonomy": name}, json_out, render=lambda: stdout.print(f"default taxonomy: {name}"))


jobs_app = typer.Typer(help="Long work recorded in the workspace.", no_args_is_help=True)


@jobs_app.command("list")
@handles_errors
def jobs_list(ctx: typer.Context, limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
              json_out: JsonOption = False) -> None:
    """Recent jobs and their state (a job whose process died shows as interrupted)."""
    from engine.jobs.log import list_jobs

    jobs = list_jobs(open_workspace(ctx), limit)

    def render() -> None:
        table = Table("started", "state", "progress", "message")
        table.add_column("job", no_wrap=True)
        for job in jobs:
            table.add_row(job.created_at.strftime("%m-%d %H:%M"), job.state, f"{job.progress:.0%}",
                          shown(job.error or job.message or ""), job.job_id)
        stdout.print(table)

    finish({"jobs": [job.to_dict() for job in jobs]}, json_out, render=render)


@jobs_app.command("show")
@handles_errors
def jobs_show(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="Job id (or its last 6+ characters).")],
              json_out: Annotated[bool, typer.Option(
                  "--json", help="JSON lines on stdout: the job's record first, then one line per event "
                                 "(as `jobs follow --json` prints them).")] = False) -> None:
    """One job's record and its events, as a table."""
    from engine.jobs.log import get_job, job_events

    workspace = open_workspace(ctx)
    job = get_job(workspace, job_id)
    events = job_events(workspace, job.job_id)
    if json_out:
        lines = [{"ok": True, "exit_code": 0, "job": job.to_dict()}]
        lines += [{"job_id": job.job_id, "seq": seq, "kind": kind, **data} for seq, kind, data in events]
        sys.stdout.write("".join(json.dumps(line, default=str) + "\n" for line in lines))
        sys.stdout.flush()
        return
    stdout.print(f"[bold]{job.job_id}[/] {job.kind} {job.state} {job.progress:.0%}"
                 + (f" {escape(job.error)}" if job.error else ""))
    table = Table("seq", "event", "details")
    for seq, kind, data in events:
        table.add_row(str(seq), kind, escape(_event_details(data)))
    stdout.print(table)


def _event_details(data: dict) -> str:
    """An event's fields as `key: value`, numbers to 4 significant digits, empty fields left out."""
    def text(value) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, dict):
            return ", ".join(f"{key}={text(item)}" for key, item in value.items())
        if isinstance(value, list):
            return ", ".join(map(text, value))
        return str(value)

    return "  ".join(f"{key}: {text(value)}" for key, value in data.items() if value not in (None, "", [], {}))


@jobs_app.command("follow")
@handles_errors
def jobs_follow(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="Job id (or its last 6+ characters).")],
                json_out: Annotated[bool, typer.Option("--json", help="Events as JSON lines on stdout.")] = False) -> None:
    """Watch a job's live loss curve until it ends (Ctrl-C stops watching; the job goes on)."""
    from cli.follow import exit_code, follow

    record = follow(open_workspace(ctx), job_id, json_lines=json_out)
    if not json_out:
        stdout.print(f"{record['job_id']}: {record['state']}" + (f" ({shown(record['error'])})" if record.get("error") else ""))
    raise typer.Exit(exit_code(record["state"]))


@jobs_app.command("cancel")
@handles_errors
def jobs_cancel(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="Job id (or its last 6+ characters).")],
                json_out: JsonOption = False) -> None:
    """Ask a running job to stop; it stops within seconds and registers nothing."""
    from engine.jobs.log import request_cancel

    job = request_cancel(open_workspace(ctx), job_id)
    finish({"job": job.to_dict()}, json_out, render=lambda: stdout.print(f"{job.job_id}: cancel requested ({job.state})"))


@handles_errors
def demo_command(
    ctx: typer.Context,
    clips_per_class: Annotated[int, typer.Option("--clips-per-pack", min=1,
                                                 help="Clips per class in each of the 5 packs.")] = 7,
    workers: WorkersOption = None,
    json_out: JsonOption = False,
) -> None:
    """Synthesise a labelled drum library and DJ tracks, import them into a demo workspace, extract features."""
    from cli.context import AppState
    from cli.progress import cancel_on_ctrl_c, progress_bar
    from engine.services.demo import run_demo
    from engine.workspace import default_demo_path

    state: AppState = ctx.find_root().obj
    root = state.workspace_path or default_demo_path()
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        summary = run_demo(root, clips_per_class_per_pack=clips_per_class, workers=workers, reporter=reporter,
                           cancel=cancel)

    def render() -> None:
        table = Table("step", "result", "seconds", title=f"Demo workspace {summary.workspace}")
        for step in summary.steps:
            table.add_row(step.name, step.result, f"{step.seconds:.1f}")
        stdout.print(table)
        stdout.print(f"Next: workbench --workspace {summary.workspace}   (the terminal UI on it)\n"
                     f"      workbench --headless --workspace {summary.workspace} gates run --model drums",
                     markup=False, soft_wrap=True)

    finish(summary.to_dict(), json_out, cancelled=summary.cancelled, render=render)


@handles_errors
def doctor_command(
    ctx: typer.Context,
    repair: Annotated[bool, typer.Option("--repair", help="Fix what can be fixed: stale jobs, unregistered model "
                                                          "folders, unreadable cache entries.")] = False,
    deep: Annotated[bool, typer.Option("--deep", help="Compare clips' contents (SHA-256), not only size and time.")] = False,
    cache_sample: Annotated[int | None, typer.Option("--cache-sample", min=1,
                                                     help="Read about this many cache entries, not all.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Check the workspace like `git fsck`: database, jobs, model files, model folders, feature cache,
    clips' files. Exits 0 when nothing is wrong (after --repair: when everything found was fixed), else 1."""
    from cli.context import AppState, no_workspace_message
    from cli.progress import cancel_on_ctrl_c, progress_bar
    from engine.errors import NotFound
    from engine.services.doctor import run_doctor
    from engine.workspace import DATABASE_FILE

    state: AppState = ctx.find_root().obj
    root = state.workspace_root().expanduser()
    if not (root / DATABASE_FILE).is_file():
        raise NotFound(no_workspace_message(root, given=state.workspace_path is not None))
    with cancel_on_ctrl_c() as cancel, progress_bar() as reporter:
        report = run_doctor(root, repair=repair, deep=deep, cache_sample=cache_sample, reporter=reporter,
                            cancel=cancel)

    def render() -> None:
        for check in report.checks:
            mark = "[green]ok[/]" if not check.remaining else "[red]problems[/]"
            stdout.print(f"{mark} [bold]{check.name}[/]: " + "; ".join(check.notes or ["checked"]), markup=True)
            for finding in check.findings:
                stdout.print(f"  {'fixed' if finding.fixed else 'found'}: {finding.problem}"
                             + (f" → {finding.fixed}" if finding.fixed else ""), markup=False, emoji=False)
        summary = f"{report.found} problem(s) found, {report.fixed} fixed"
        stdout.print(summary + (" — workspace is healthy" if report.ok else
                                "" if repair else "; `doctor --repair` fixes what can be fixed"), markup=False)

    code = 130 if report.cancelled else 0 if report.ok else 1
    if json_out:
        print_json({**report.to_dict(), "exit_code": code})
    else:
        render()
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.add_typer(taxonomy_app, name="taxonomy")
    app.add_typer(jobs_app, name="jobs")
    app.command("demo")(demo_command)
    app.command("doctor")(doctor_command)
