"""Feature extraction for a workspace: which segments to featurise, run as a recorded job."""

from __future__ import annotations

from engine.concepts import Clip, JobState
from engine.errors import Cancelled
from engine.features.extract import ExtractReport, Target, extract_features
from engine.features.spec import FeatureSpec
from engine.jobs.kinds import job_kind
from engine.jobs.log import JobLog
from engine.store.clips import all_clips
from engine.progress import CancelToken, Reporter
from engine.store.labels import labelled_clip_ids, labelled_segments


def workspace_targets(workspace, *, labelled_only: bool = False, taxonomy: str | None = None) -> list[Target]:
    """Every labelled region, plus the whole of each clip that has no label (for inference).

    With `labelled_only`, only labelled regions; with `taxonomy`, only that taxonomy's labels."""
    with workspace.db.transaction(read_only=True) as con:
        labelled = labelled_segments(con, taxonomy)
        unlabelled = [] if labelled_only else _unlabelled_clips(con)
    regions = {(target.clip_id, target.region_key): target for target in map(Target.of, labelled)}
    return list(regions.values()) + [Target(clip.clip_id, clip.path, clip.size_bytes) for clip in unlabelled]


def _unlabelled_clips(con) -> list[Clip]:
    """The clips without any label (of any taxonomy or origin), by path."""
    labelled = labelled_clip_ids(con)
    return [clip for clip in all_clips(con) if clip.clip_id not in labelled]


def extract_workspace(workspace, spec: FeatureSpec, *, labelled_only: bool = False, taxonomy: str | None = None,
                      workers: int | None = None, reporter: Reporter | None = None,
                      cancel: CancelToken | None = None, device: str = "auto") -> ExtractReport:
    """Extract features for the workspace's segments into its cache, recorded as an `extract` job;
    `device` as `extract_features` takes it."""
    extractors = spec.extractors(workspace.embeddings_dir)
    targets = workspace_targets(workspace, labelled_only=labelled_only, taxonomy=taxonomy)
    job = JobLog(workspace, "extract", {"spec": spec.to_dict(), "labelled_only": labelled_only, "taxonomy": taxonomy,
                                        "device": device})
    try:
        return _extract(workspace, job, spec, extractors, targets, workers=workers, reporter=reporter, cancel=cancel,
                        device=device)
    except BaseException as error:
        stopped = isinstance(error, (KeyboardInterrupt, Cancelled))
        job.finish(JobState.CANCELLED if stopped else JobState.FAILED, error=str(error))
        raise


@job_kind("extract")
def run_extract_job(workspace, job: JobLog, params: dict, cancel: CancelToken) -> None:
    """An extract job in a worker process, with the params `extract_workspace` records."""
    spec = FeatureSpec(**params["spec"])
    targets = workspace_targets(workspace, labelled_only=params["labelled_only"], taxonomy=params["taxonomy"])
    _extract(workspace, job, spec, spec.extractors(workspace.embeddings_dir), targets, cancel=cancel,
             device=params.get("device", "cpu"))


def _extract(workspace, job: JobLog, spec: FeatureSpec, extractors, targets: list[Target], *,
             workers: int | None = None, reporter: Reporter | None = None,
             cancel: CancelToken | None = None, device: str = "auto") -> ExtractReport:
    """Fill the cache for the targets, with the job's progress as clips finish, and record how it ended."""
    report = extract_features(workspace.cache, targets, spec, extractors, workers=workers, reporter=reporter,
                              cancel=cancel, on_progress=lambda fraction: job.progress(fraction), device=device)
    job.finish(JobState.CANCELLED if report.cancelled else JobState.COMPLETED, result=report.to_dict())
    return report
