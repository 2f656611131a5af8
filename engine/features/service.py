"""Feature extraction for a workspace: which segments to featurise, run as a recorded job."""

from __future__ import annotations

from engine.concepts import Clip
from engine.errors import Cancelled
from engine.features.extract import ExtractReport, Target, extract_features
from engine.features.spec import FeatureSpec
from engine.jobs.log import JobLog
from engine.library.clips import all_clips
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
                      cancel: CancelToken | None = None) -> ExtractReport:
    """Extract features for the workspace's segments into its cache, recorded as an `extract` job."""
    extractors = spec.extractors(workspace.embeddings_dir)
    targets = workspace_targets(workspace, labelled_only=labelled_only, taxonomy=taxonomy)
    job = JobLog(workspace, "extract", {"spec": spec.to_dict(), "labelled_only": labelled_only, "taxonomy": taxonomy})
    try:
        report = extract_features(workspace.cache, targets, spec, extractors, workers=workers, reporter=reporter,
                                  cancel=cancel, on_progress=lambda fraction: job.progress(fraction))
    except BaseException as error:
        job.finish("cancelled" if isinstance(error, (KeyboardInterrupt, Cancelled)) else "failed", error=str(error))
        raise
    job.finish("cancelled" if report.cancelled else "completed", result=report.to_dict())
    return report
