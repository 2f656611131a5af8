"""Feature extraction for a workspace: which segments to featurise, run as a recorded job."""

from __future__ import annotations

from engine.concepts import JobState
from engine.errors import Cancelled
from engine.features.extract import ExtractReport, Target, extract_features
from engine.features.spec import FeatureSpec
from engine.jobs.kinds import job_kind
from engine.jobs.log import JobLog
from engine.progress import CancelToken, Reporter


def workspace_targets(workspace, *, labelled_only: bool = False, taxonomy: str | None = None) -> list[Target]:
    """Every labelled region, plus the whole of each clip that has no label (for inference).

    With `labelled_only`, only labelled regions; with `taxonomy`, only that taxonomy's labels."""
    label_filter = "WHERE l.taxonomy = $taxonomy" if taxonomy else ""
    with workspace.db.transaction(read_only=True) as con:
        labelled = con.execute(
            "SELECT DISTINCT c.clip_id, c.path, c.size_bytes, l.start_s, l.end_s "
            f"FROM effective_labels l JOIN clips c USING (clip_id) {label_filter} ORDER BY c.path, l.start_s",
            {"taxonomy": taxonomy} if taxonomy else {},
        ).fetchall()
        unlabelled = [] if labelled_only else con.execute(
            "SELECT clip_id, path, size_bytes FROM clips WHERE clip_id NOT IN (SELECT clip_id FROM labels) ORDER BY path"
        ).fetchall()
    targets = [Target(*row) for row in labelled]
    targets += [Target(clip_id, path, size) for clip_id, path, size in unlabelled]
    return targets


def extract_workspace(workspace, spec: FeatureSpec, *, labelled_only: bool = False, taxonomy: str | None = None,
                      workers: int | None = None, reporter: Reporter | None = None,
                      cancel: CancelToken | None = None) -> ExtractReport:
    """Extract features for the workspace's segments into its cache, recorded as an `extract` job."""
    extractors = spec.extractors(workspace.embeddings_dir)
    targets = workspace_targets(workspace, labelled_only=labelled_only, taxonomy=taxonomy)
    job = JobLog(workspace, "extract", {"spec": spec.to_dict(), "labelled_only": labelled_only, "taxonomy": taxonomy})
    try:
        return _extract(workspace, job, spec, extractors, targets, workers=workers, reporter=reporter, cancel=cancel)
    except BaseException as error:
        stopped = isinstance(error, (KeyboardInterrupt, Cancelled))
        job.finish(JobState.CANCELLED if stopped else JobState.FAILED, error=str(error))
        raise


@job_kind("extract")
def run_extract_job(workspace, job: JobLog, params: dict, cancel: CancelToken) -> None:
    """An extract job in a worker process, with the params `extract_workspace` records."""
    spec = FeatureSpec(**params["spec"])
    targets = workspace_targets(workspace, labelled_only=params["labelled_only"], taxonomy=params["taxonomy"])
    _extract(workspace, job, spec, spec.extractors(workspace.embeddings_dir), targets, cancel=cancel)


def _extract(workspace, job: JobLog, spec: FeatureSpec, extractors, targets: list[Target], *,
             workers: int | None = None, reporter: Reporter | None = None,
             cancel: CancelToken | None = None) -> ExtractReport:
    """Fill the cache for the targets, with the job's progress as clips finish, and record how it ended."""
    report = extract_features(workspace.cache, targets, spec, extractors, workers=workers, reporter=reporter,
                              cancel=cancel, on_progress=lambda fraction: job.progress(fraction))
    job.finish(JobState.CANCELLED if report.cancelled else JobState.COMPLETED, result=report.to_dict())
    return report
