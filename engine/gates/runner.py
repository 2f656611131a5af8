"""One gate run, the same for `gates run`, the TUI's Gates screen and a gates job: the dataset
gates of a taxonomy, then (with a model version) its model gates; the merged report is written to
`<workspace>/reports/` as JSON and HTML and stored in the workspace's gate history."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.concepts import JobState
from engine.errors import InputError
from engine.gates.core import GateReport, load_settings, merge_reports, run_gates
from engine.jobs.kinds import job_kind


@dataclass(frozen=True)
class GateRun:
    report: GateReport
    report_id: int
    json_path: Path
    html_path: Path


def run_and_store(workspace, *, config: Path | None = None, taxonomy: str | None = None, model: str | None = None,
                  test: Path | None = None, ood: Path | None = None, features: str = "dsp",
                  halt_on_first_failure: bool = False, workers: int | None = None, reporter=None,
                  cancel=None, required_techniques: list[str] | None = None,
                  required_techniques_file: Path | None = None) -> GateRun:
    from engine.gates.dataset import DatasetContext
    from engine.gates.model import ModelContext
    from engine.gates.report import write_to_workspace
    from engine.gates.store import save_report
    from engine.models.registry import resolve

    if (test or ood) and not model:
        raise InputError("--test and --ood score a model; give --model NAME@N too")
    settings = load_settings(config)
    techniques = settings["dataset.required_techniques"]
    techniques["required"] = [*techniques["required"], *(required_techniques or [])]
    if required_techniques_file is not None:
        techniques["required_file"] = str(required_techniques_file)
    version = resolve(workspace, model) if model else None
    taxonomy = taxonomy or (version.task_taxonomy(workspace) if version else None)
    dataset = DatasetContext(workspace, taxonomy, features, reporter, cancel, workers=workers)
    subject = dataset.subject()
    reports = [run_gates("dataset", dataset, settings, subject=subject, halt_on_first_failure=halt_on_first_failure,
                         reporter=reporter, cancel=cancel)]
    if version is not None and not (halt_on_first_failure and not reports[0].passed):
        context = ModelContext(workspace, version, test_folder=test, ood_folder=ood, reporter=reporter,
                               cancel=cancel, workers=workers)
        reports.append(run_gates("model", context, settings, subject=subject,
                                 halt_on_first_failure=halt_on_first_failure, reporter=reporter, cancel=cancel))
    if version is not None:
        subject = {**subject, "model": version.ref, "model_id": version.model_id}
    report = merge_reports(reports, subject)
    json_path, html_path = write_to_workspace(workspace, report)
    report_id = save_report(workspace, report, model_id=version.model_id if version else None, path=str(json_path))
    return GateRun(report, report_id, json_path, html_path)


@job_kind("gates")
def run_gates_job(workspace, job, params: dict, cancel) -> None:
    """A gates job in its own process (the TUI starts these, so its event loop never computes)."""
    from engine.jobs.log import JobReporter

    job.state(JobState.RUNNING, "checking the dataset")
    run = run_and_store(workspace, config=params.get("config"), taxonomy=params.get("taxonomy"),
                        model=params.get("model"), test=params.get("test"), ood=params.get("ood"),
                        features=params.get("features", "dsp"), reporter=JobReporter(job), cancel=cancel)
    job.finish(JobState.COMPLETED, result={"report_id": run.report_id, "passed": run.report.passed,
                                    "json": str(run.json_path), "html": str(run.html_path)})
