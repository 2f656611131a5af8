"""Extracting features for clip segments into the cache, over worker processes.

A Target is one segment of one clip, or an augmented copy of it. Extraction first asks the cache
which (target, extractor) pairs are missing — with a warm cache nothing is decoded at all — then
hands the clips to the workers in batches: each region that still needs work is decoded on its own
(seek + frames; of a long segment only the part around its onset that the extractors read) and
resampled per extractor rate, and each extractor runs once over the batch's regions (one STFT over
all their frames). Results are written in batches. Ctrl-C (the cancel token) stops handing out work and keeps every finished batch.

On a torch device (CUDA) the workers never touch the card: they decode and resample, and hand the
samples of the extractors that run there (`Extractor.runs_on_device`: the aiSFX port) back to
this process, which runs those extractors over many clips at once (DEVICE_BATCH_SAMPLES).
"""

from __future__ import annotations

import copy
import math
import os
import time
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import soundfile

from engine.audio.augment import Augmentation, apply_augmentation, augmentation_key
from engine.audio.decode import decode, find_onset, read_range, resample
from engine.audio.regions import PREROLL_S, envelope_block
from engine.concepts import LabelledSegment, Reason, Rejection, Segment
from engine.errors import InputError
from engine.features.base import Extractor
from engine.features.cache import FeatureCache, cache_key
from engine.features.spec import FeatureSpec
from engine.jobs.parallel import default_workers, parallel_map
from engine.memory import keep_freed_memory
from engine.progress import CancelToken, Reporter

WRITE_EVERY_S = 0.5
REGIONS_PER_JOB = 16  # a long track's windows are spread over several jobs, so every core helps
INLINE_BELOW_PAIRS = 32  # less work than this runs in-process: starting workers would cost more
MAX_BATCH_CLIPS = 32  # clips a worker takes at once: their regions share one STFT per extractor
BATCH_SAMPLES = 1 << 22  # decoded samples (16 MB) a worker holds before it runs the extractors over them
BATCHES_PER_WORKER = 4  # at least this many batches per worker (when there are clips enough), to share the work out
LONG_SEGMENT_S = 60.0  # a longer segment is streamed to find its onset; only the part the extractors read is decoded
EDGE_S = 0.05  # decoded either side of that part, so resampling has real samples at its edges
DEVICE_BATCH_SAMPLES = 1 << 24  # samples (64 MB) gathered before the extractors on a torch device run over them


@dataclass(frozen=True)
class Target:
    """One segment of one clip's file to featurise, as it is or as an augmented copy."""

    clip_id: str
    path: str
    size_bytes: int
    segment: Segment = field(default_factory=Segment)
    augment: Augmentation = ()  # an augmented copy of the segment; empty for the audio as it is

    @classmethod
    def of(cls, item: LabelledSegment, augment: Augmentation = ()) -> Target:
        return cls(item.clip_id, item.path, item.size_bytes, item.segment, augment)

    @property
    def start_s(self) -> float | None:
        return self.segment.start_s

    @property
    def end_s(self) -> float | None:
        return self.segment.end_s

    @property
    def region_key(self) -> str:
        """The segment's region key, marked with the augmentation of an augmented copy."""
        base = self.segment.region_key
        return f"{base};aug:{augmentation_key(self.augment)}" if self.augment else base


@dataclass
class ExtractReport:
    spec: str
    targets: int = 0
    cached: int = 0
    extracted: int = 0
    clips_decoded: int = 0
    audio_seconds: float = 0.0
    rejections: list[Rejection] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def partial(self) -> bool:
        return bool(self.rejections)

    def to_dict(self) -> dict:
        return {"spec": self.spec, "targets": self.targets, "cached": self.cached, "extracted": self.extracted,
                "clips_decoded": self.clips_decoded, "audio_seconds": round(self.audio_seconds, 3),
                "rejected": len(self.rejections), "rejections": [r.to_dict() for r in self.rejections],
                "cancelled": self.cancelled, "seconds": round(self.seconds, 3)}


def changed_file(path: str) -> Rejection:
    return Rejection(path, Reason.CHANGED, "the file's size differs from the imported clip; re-import it")


def unreadable_file(path: str, error: OSError | RuntimeError) -> Rejection:
    """A file that could not be decoded: gone since import, or unreadable."""
    if isinstance(error, FileNotFoundError):
        return Rejection(path, Reason.MISSING_FILE, "moved or deleted since import; re-import its folder")
    return Rejection(path, Reason.UNREADABLE, str(error))


# -- in the worker ----------------------------------------------------------------------------

_worker_extractors: list[Extractor] = []
_handed_back: frozenset[int] = frozenset()  # the extractors whose samples go back to the parent (a device runs them)


def _install_extractors(extractors: list[Extractor], handed_back: frozenset[int] = frozenset()) -> None:
    global _worker_extractors, _handed_back
    _worker_extractors, _handed_back = extractors, handed_back


@dataclass(frozen=True)
class _ClipJob:
    clip_id: str
    path: str
    size_bytes: int
    regions: tuple[tuple[str, float | None, float | None, Augmentation], ...]  # (region key, start, end, augment)
    needs: tuple[tuple[int, ...], ...]  # for each region, which extractors are missing


def _decode_region(path: str, start_s: float | None, end_s: float | None,
                   extractors: Sequence[Extractor]) -> tuple[np.ndarray, int]:
    """The samples `extractors` need of a segment, decoded alone (seek + frames).

    All of a short segment. Of a long one, when every extractor reads only a span from the onset
    (`onset_span_s`), just that span and EDGE_S either side, around the onset `find_onset` finds by
    streaming the segment: memory stays small whatever the file's length. The part starts on the
    2 ms envelope grid that `onset_region` lays from the segment's start at the extractors' rate
    (where they share one), so it finds the onset the whole segment would give."""
    start = start_s or 0.0
    spans = [extractor.onset_span_s() for extractor in extractors]
    with soundfile.SoundFile(path) as handle:  # one open for a short segment: its length, then its samples
        end = end_s if end_s is not None else handle.frames / handle.samplerate
        if None in spans or end - start <= LONG_SEGMENT_S:
            return read_range(handle, start, end_s), handle.samplerate
    lead_s = max(0.0, find_onset(path, start, end) - PREROLL_S - EDGE_S - start)
    rates = {extractor.sample_rate for extractor in extractors}
    if len(rates) == 1:
        grid_s = envelope_block(*rates) / next(iter(rates))
        lead_s = math.floor(lead_s / grid_s) * grid_s
    first = start + lead_s
    return decode(path, start_s=first, end_s=min(end, first + 2 * EDGE_S + max(spans)))


@dataclass
class _Decoded:
    """One region's samples, waiting in a batch for the extractors that still miss it."""

    outcome: int  # which clip of the batch it belongs to
    clip_id: str
    region_key: str
    samples: np.ndarray
    rate: int
    needs: tuple[int, ...]


def _decode_clip(job: _ClipJob) -> tuple[list[tuple[str, np.ndarray, int]], float] | Rejection:
    """The clip's regions that still need work — (region key, samples, rate), augmented where asked —
    and the audio seconds decoded; a Rejection when the file is gone, changed or unreadable."""
    regions = []
    audio_seconds = 0.0
    for (region_key, start_s, end_s, augment), needed in zip(job.regions, job.needs):
        try:
            if os.path.getsize(job.path) != job.size_bytes:
                return changed_file(job.path)
            native, rate = _decode_region(job.path, start_s, end_s, [_worker_extractors[i] for i in needed])
        except (OSError, RuntimeError) as error:
            return unreadable_file(job.path, error)
        audio_seconds += native.size / rate
        if augment:
            native = apply_augmentation(native, rate, augment, seed=zlib.crc32(f"{job.clip_id}{region_key}".encode()))
        regions.append((region_key, native, rate))
    return regions, audio_seconds


def _run_extractors(pending: list[_Decoded], outcomes: list) -> None:
    """Each extractor over all the pending regions that miss it at once (one batched call), resampled
    once per region and rate; the features join their clip's outcome. An extractor handed back to
    the parent gets the resampled samples in its place: (extractor index, cache key, samples)."""
    resampled: dict[tuple[int, int], np.ndarray] = {}
    for index, extractor in enumerate(_worker_extractors):
        chosen = [n for n, item in enumerate(pending) if index in item.needs]
        if not chosen:
            continue
        rate, prefix = extractor.sample_rate, extractor.cache_prefix  # (the prefix hashes the parameters: once)
        for n in chosen:
            if (n, rate) not in resampled:
                resampled[n, rate] = resample(pending[n].samples, pending[n].rate, rate)
        if index in _handed_back:
            for n in chosen:
                key = cache_key(prefix, pending[n].clip_id, pending[n].region_key)
                outcomes[pending[n].outcome][2].append((index, key, resampled[n, rate]))
            continue
        batch = extractor.extract_batch([resampled[n, rate] for n in chosen])
        for n, features in zip(chosen, batch):
            item = pending[n]
            key = cache_key(prefix, item.clip_id, item.region_key)
            outcomes[item.outcome][0].append((key, np.asarray(features, dtype=np.float32)))


def _extract_batch(jobs: tuple[_ClipJob, ...]) -> list[tuple[list[tuple[str, np.ndarray]], float, list] | Rejection]:
    """For each clip job, its features for the missing (region, extractor) pairs, the audio seconds
    decoded and the samples handed back for a device, or its Rejection. The regions of several clips
    go through each extractor together, in groups of at most BATCH_SAMPLES decoded samples, so
    memory stays bounded."""
    keep_freed_memory()
    outcomes: list = []
    pending: list[_Decoded] = []
    held = 0
    for job in jobs:
        decoded = _decode_clip(job)
        if isinstance(decoded, Rejection):
            outcomes.append(decoded)
            continue
        regions, audio_seconds = decoded
        outcomes.append(([], audio_seconds, []))
        for (region_key, samples, rate), needs in zip(regions, job.needs):
            pending.append(_Decoded(len(outcomes) - 1, job.clip_id, region_key, samples, rate, needs))
            held += samples.size
        if held >= BATCH_SAMPLES:
            _run_extractors(pending, outcomes)
            pending, held = [], 0
    _run_extractors(pending, outcomes)
    return outcomes


# -- in the parent ----------------------------------------------------------------------------

def _plan(cache: FeatureCache, targets: Sequence[Target], extractors: Sequence[Extractor]) -> list[_ClipJob]:
    """Group the missing (target, extractor) pairs by clip."""
    prefixes = [e.cache_prefix for e in extractors]  # (each hashes its extractor's parameters: once)
    keys = [(t, i, cache_key(prefix, t.clip_id, t.region_key)) for t in targets for i, prefix in enumerate(prefixes)]
    missing = set(cache.missing(key for _, _, key in keys))
    by_clip: dict[str, dict[tuple, list[int]]] = defaultdict(lambda: defaultdict(list))
    first_target: dict[str, Target] = {}
    for target, index, key in keys:
        if key in missing:
            region = (target.region_key, target.start_s, target.end_s, target.augment)
            if index not in by_clip[target.clip_id][region]:
                by_clip[target.clip_id][region].append(index)
            first_target.setdefault(target.clip_id, target)
    jobs = []
    for clip_id, regions in by_clip.items():
        target = first_target[clip_id]
        ordered = sorted(regions.items(), key=lambda item: (item[0][1] is not None, item[0][1] or 0.0))
        for first in range(0, len(ordered), REGIONS_PER_JOB):
            chunk = ordered[first: first + REGIONS_PER_JOB]
            jobs.append(_ClipJob(clip_id, target.path, target.size_bytes, tuple(r for r, _ in chunk),
                                 tuple(tuple(n) for _, n in chunk)))
    return jobs


def _device_for(name: str, extractors: Sequence[Extractor]) -> str:
    """The device type ("cpu", "cuda") tensor work runs on. "auto" looks for CUDA only when one of
    the extractors can use it: that imports torch, a second's work a dsp extraction need not pay."""
    if name == "cpu" or (name == "auto" and not any(e.can_run_on_device for e in extractors)):
        return "cpu"
    from engine.device import resolve_device

    try:
        return resolve_device(name).type
    except ValueError as error:
        raise InputError(str(error)) from None


def _on_cpu(extractors: Sequence[Extractor]) -> list[Extractor]:
    """Copies of the extractors for the workers, which keep off the device."""
    copies = [copy.copy(extractor) for extractor in extractors]
    for extractor in copies:
        extractor.device = "cpu"
    return copies


class _DeviceQueue:
    """Samples the workers handed back, gathered per extractor until that extractor runs over them
    all at once on its device."""

    def __init__(self, extractors: Sequence[Extractor]) -> None:
        self.extractors = extractors
        self.waiting: dict[int, list[tuple[str, np.ndarray]]] = defaultdict(list)
        self.samples = 0

    def add(self, handed_back: list[tuple[int, str, np.ndarray]]) -> None:
        for index, key, samples in handed_back:
            self.waiting[index].append((key, samples))
            self.samples += samples.size

    def run_into(self, buffer: dict[str, np.ndarray]) -> int:
        """Run each extractor over what waits for it, put the features in `buffer`; how many."""
        count = 0
        for index, items in self.waiting.items():
            outputs = self.extractors[index].extract_batch([samples for _, samples in items])
            buffer.update((key, np.asarray(output, dtype=np.float32)) for (key, _), output in zip(items, outputs))
            count += len(items)
        self.waiting.clear()
        self.samples = 0
        return count


def extract_features(cache: FeatureCache, targets: Sequence[Target], spec: FeatureSpec, extractors: list[Extractor],
                     *, workers: int | None = None, reporter: Reporter | None = None,
                     cancel: CancelToken | None = None, on_progress=None, device: str = "auto") -> ExtractReport:
    """Fill the cache for every target; `on_progress(fraction)` is called as clips finish.

    `device` ("auto", "cpu" or "cuda") is where the extractors that can run tensor work elsewhere
    run it (the aiSFX port, ONNX models with onnxruntime's CUDA provider): this process runs them
    there, on the samples the workers decode."""
    started = time.perf_counter()
    device = _device_for(device, extractors)
    for extractor in extractors:
        extractor.device = device
    on_device = [index for index, extractor in enumerate(extractors) if extractor.runs_on_device()]
    unique_targets = list({(t.clip_id, t.region_key): t for t in targets}.values())
    report = ExtractReport(str(spec), targets=len(unique_targets))
    jobs = _plan(cache, unique_targets, extractors)
    pending_pairs = sum(len(n) for job in jobs for n in job.needs)
    report.cached = len(unique_targets) * len(extractors) - pending_pairs
    workers = default_workers() if workers is None else workers
    if pending_pairs < INLINE_BELOW_PAIRS:
        workers = 1
    size = max(1, min(MAX_BATCH_CLIPS, math.ceil(len(jobs) / (max(workers, 1) * BATCHES_PER_WORKER))))
    # a whole number of batches per worker, evened out, so no worker is left with one batch more at the end
    count = -(-math.ceil(len(jobs) / size) // max(workers, 1)) * max(workers, 1)
    size = max(1, math.ceil(len(jobs) / max(count, 1)))
    batches = [tuple(jobs[first: first + size]) for first in range(0, len(jobs), size)]
    if reporter is not None:
        reporter.start(f"Extracting {spec}", len(batches))
    buffer: dict[str, np.ndarray] = {}
    decoded_clips: set[str] = set()
    last_write = time.monotonic()
    waiting = _DeviceQueue(extractors)
    for done, (batch, outcomes) in enumerate(parallel_map(_extract_batch, batches, workers=workers, chunk_size=1,
                                                           inline_below=2, reporter=reporter, cancel=cancel,
                                                           initializer=_install_extractors,
                                                           initargs=(_on_cpu(extractors), frozenset(on_device))), 1):
        for job, result in zip(batch, outcomes):
            if isinstance(result, Rejection):
                report.rejections.append(result)
                continue
            features, audio_seconds, handed_back = result
            buffer.update(features)
            report.extracted += len(features)
            waiting.add(handed_back)
            decoded_clips.add(job.clip_id)
            report.audio_seconds += audio_seconds
        report.clips_decoded = len(decoded_clips)
        if waiting.samples >= DEVICE_BATCH_SAMPLES:
            report.extracted += waiting.run_into(buffer)
        if time.monotonic() - last_write > WRITE_EVERY_S:
            cache.put_many(buffer)
            buffer.clear()
            last_write = time.monotonic()
            if on_progress is not None:
                on_progress(done / max(len(batches), 1))
    report.extracted += waiting.run_into(buffer)
    cache.put_many(buffer)
    report.cancelled = bool(cancel and cancel.cancelled)
    report.rejections.sort(key=lambda r: r.path)
    report.seconds = time.perf_counter() - started
    return report


def feature_row(outputs: Sequence[np.ndarray]) -> np.ndarray:
    """One segment's features from its extractors' outputs: the one output as it is, else the outputs
    flattened and joined in order."""
    return np.concatenate([output.ravel() for output in outputs]) if len(outputs) > 1 else outputs[0]


def load_features(cache: FeatureCache, targets: Sequence[Target], extractors: Sequence[Extractor]) -> tuple[np.ndarray, list[int]]:
    """The feature matrix for the targets whose features are all cached, and those targets' indices.

    Each row is `feature_row` of the extractors' outputs."""
    prefixes = [e.cache_prefix for e in extractors]
    keys = [[cache_key(prefix, t.clip_id, t.region_key) for prefix in prefixes] for t in targets]
    found = cache.get_many(key for row in keys for key in row)
    rows, kept = [], []
    for index, row in enumerate(keys):
        if all(key in found for key in row):
            rows.append(feature_row([found[key] for key in row]))
            kept.append(index)
    if not rows:
        return np.zeros((0,), dtype=np.float32), []
    return np.stack(rows).astype(np.float32, copy=False), kept
