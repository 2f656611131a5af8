"""Features of the windows a section model slides along one long track.

The track is decoded in chunks of about CHUNK_S (with MARGIN_S either side), once per chunk instead
of once per window, resampled once per extractor rate, and each extractor takes all the chunk's
windows at once (`Extractor.extract_windows`: the dsp extractor reads them from one STFT over the
chunk). Chunks run on worker threads (the FFTs and array work release the GIL). Features are cached
under the window's region key marked `;track`, apart from those of the window decoded alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import soundfile

from engine.audio.decode import read_range, resample
from engine.concepts import Rejection, Segment
from engine.features.base import Extractor
from engine.features.cache import FeatureCache, cache_key
from engine.features.extract import changed_file, feature_row, unreadable_file
from engine.jobs.parallel import one_blas_thread
from engine.memory import keep_freed_memory
from engine.progress import CancelToken
from engine.settings import cpu_threads

CHUNK_S = 30.0
MARGIN_S = 0.1  # decoded either side of a chunk, so its first and last windows see real samples around them


def window_key(start_s: float, window_s: float) -> str:
    """The region key a track window's features are cached under."""
    return f"{Segment.window(start_s, window_s).region_key};track"


def _chunks(starts: Sequence[float], window_s: float, parts: int = 1) -> list[list[int]]:
    """Consecutive windows (`starts` ascending) in groups that each span about CHUNK_S at most, as
    many groups as a multiple of `parts` (the workers), so the workers finish together."""
    if not len(starts):
        return []
    span = float(starts[-1] - starts[0])
    count = parts * math.ceil(math.ceil((span + window_s) / max(CHUNK_S, window_s)) / parts)
    step = span / count if span > 0 else 1.0
    groups: dict[int, list[int]] = {}
    for index, start in enumerate(starts):
        groups.setdefault(min(int((start - starts[0]) / step), count - 1), []).append(index)
    return list(groups.values())


def _chunk_features(path: str, starts: Sequence[float], window_s: float,
                    extractors: Sequence[Extractor]) -> list[list[np.ndarray]]:
    """For each extractor, the features of the windows starting at `starts` (one chunk)."""
    first_s = max(0.0, starts[0] - MARGIN_S)
    with soundfile.SoundFile(path) as handle:
        native = read_range(handle, first_s, starts[-1] + window_s + MARGIN_S)
        native_rate = handle.samplerate
    outputs = []
    for extractor in extractors:
        rate = extractor.sample_rate
        samples = resample(native, native_rate, rate)
        windows = [(round((s - first_s) * rate), min(len(samples), round((s + window_s - first_s) * rate)))
                   for s in starts]
        outputs.append([np.asarray(f, dtype=np.float32) for f in extractor.extract_windows(samples, windows)])
    return outputs


def track_window_features(cache: FeatureCache, clip_id: str, path: str, size_bytes: int, starts: Sequence[float],
                          window_s: float, extractors: Sequence[Extractor], *, workers: int | None = None,
                          cancel: CancelToken | None = None) -> tuple[np.ndarray, list[int], list[Rejection]]:
    """The feature rows (`feature_row` of the extractors' outputs) of the windows [s, s + window_s) of
    one track, the indices of the windows they are for, and the file's rejection if it could not be read."""
    prefixes = [extractor.cache_prefix for extractor in extractors]
    keys = [[cache_key(prefix, clip_id, window_key(s, window_s)) for prefix in prefixes] for s in starts]
    missing = set(cache.missing(key for row in keys for key in row))
    todo = [index for index, row in enumerate(keys) if any(key in missing for key in row)]
    computed: dict[str, np.ndarray] = {}
    if todo:
        try:
            if os.path.getsize(path) != size_bytes:
                return np.zeros((0,)), [], [changed_file(path)]
            workers = cpu_threads() if workers is None else max(workers, 1)
            keep_freed_memory()
            chunks = [[todo[i] for i in group] for group in _chunks([starts[i] for i in todo], window_s, workers)]
            # One BLAS thread per chunk: the chunks already run side by side.
            with one_blas_thread(), ThreadPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
                results = [pool.submit(_chunk_features, path, [starts[i] for i in chunk], window_s, extractors)
                           for chunk in chunks]
                for chunk, result in zip(chunks, results):
                    if cancel is not None and cancel.cancelled:
                        for pending in results:
                            pending.cancel()
                        break
                    for column, outputs in enumerate(result.result()):
                        computed.update((keys[i][column], features) for i, features in zip(chunk, outputs))
            cache.put_many(computed)
        except (OSError, RuntimeError) as error:
            return np.zeros((0,)), [], [unreadable_file(path, error)]
    found = computed | cache.get_many(key for row in keys for key in row if key not in computed)
    kept = [index for index, row in enumerate(keys) if all(key in found for key in row)]
    if not kept:
        return np.zeros((0,)), [], []
    return np.stack([feature_row([found[key] for key in keys[i]]) for i in kept]).astype(np.float32, copy=False), kept, []
