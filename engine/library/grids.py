"""Beat grids of clips: set by hand or detected (stored by engine/store/grids.py, which keeps
beat-range labels on their beats when a grid changes)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.audio.beatgrid import BeatGrid
from engine.concepts import Clip, Reason, Rejection
from engine.errors import InputError
from engine.library.clips import resolve_clip
from engine.jobs.parallel import parallel_map
from engine.progress import CancelToken, Reporter
from engine.store.clips import all_clips
from engine.store.grids import clip_ids_with_grid_from, save_grid

MIN_DETECT_SECONDS = 4.0


def set_grid(workspace, clip_ref: str, grid: BeatGrid, origin: str = "user") -> tuple[Clip, int]:
    with workspace.db.transaction() as con:
        clip = resolve_clip(con, clip_ref)
        if grid.seconds_at(0) > clip.duration_s:
            raise InputError(f"first beat at {grid.offset_s:g} s is past the end of {clip.path} ({clip.duration_s:.3f} s)")
        moved = save_grid(con, clip.clip_id, grid, origin)
    return clip, moved


def _detect_one(job: tuple[str, int]) -> dict | str:
    path, beats_per_bar = job
    from engine.audio.beatgrid import detect_file_grid

    try:
        return detect_file_grid(path, beats_per_bar).to_dict()
    except InputError as error:
        return str(error)
    except (OSError, RuntimeError) as error:
        return f"cannot read: {error}"


@dataclass
class DetectReport:
    detected: list[tuple[Clip, BeatGrid]] = field(default_factory=list)
    skipped: list[Rejection] = field(default_factory=list)
    cancelled: bool = False

    def skipped_by_reason(self) -> dict[str, int]:
        """How many clips were skipped for each reason, most common first."""
        return dict(Counter(str(rejection.reason) for rejection in self.skipped).most_common())


def detect_grids(workspace, clip_refs: Sequence[str] | None = None, *, beats_per_bar: int = 4,
                 overwrite_user: bool = False, workers: int | None = None, reporter: Reporter | None = None,
                 cancel: CancelToken | None = None) -> DetectReport:
    """Detect beat grids (engine.audio.beat_tracking) for the given clips (all clips when None).

    Clips shorter than a few seconds (one-shots) are skipped with a reason; a grid set by hand is
    kept unless `overwrite_user`."""
    report = DetectReport()
    with workspace.db.transaction(read_only=True) as con:
        clips = [resolve_clip(con, ref) for ref in clip_refs] if clip_refs else all_clips(con)
        user_grids = clip_ids_with_grid_from(con, "user")
    candidates = []
    for clip in clips:
        if clip.duration_s < MIN_DETECT_SECONDS:
            report.skipped.append(Rejection(clip.path, Reason.TOO_SHORT,
                                            f"{clip.duration_s:.2f} s is too short for beat tracking"))
        elif clip.clip_id in user_grids and not overwrite_user:
            report.skipped.append(Rejection(clip.path, Reason.KEPT, "has a hand-set grid (use --overwrite)"))
        else:
            candidates.append(clip)
    if reporter is not None:
        reporter.start("Detecting beats", len(candidates))
    by_path = {clip.path: clip for clip in candidates}
    jobs = [(clip.path, beats_per_bar) for clip in candidates]
    for (path, _), result in parallel_map(_detect_one, jobs, workers=workers, chunk_size=1,
                                          reporter=reporter, cancel=cancel):
        clip = by_path[path]
        if isinstance(result, str):
            report.skipped.append(Rejection(path, Reason.DETECTION_FAILED, result))
            continue
        grid = BeatGrid.from_dict(result)
        with workspace.db.transaction() as con:
            save_grid(con, clip.clip_id, grid, "detected")
        report.detected.append((clip, grid))
    report.cancelled = bool(cancel and cancel.cancelled)
    return report
