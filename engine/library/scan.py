"""Finding audio files under a folder and probing each: content hash, format, length, levels.

A probe reads the file once: the bytes are hashed (the clip's identity) and decoded in blocks
(so a corrupt body is caught at import, not at training time) while peak, RMS and clipping are
measured for the hygiene checks. Anything wrong becomes a Rejection with the reason.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from engine.audio.decode import AUDIO_EXTENSIONS, MAX_CHANNELS, looks_like_audio
from engine.concepts import Clip, Reason, Rejection
from engine.jobs.parallel import parallel_map
from engine.progress import CancelToken, Reporter
from engine.store.clips import ClipFile

BLOCK_FRAMES = 1 << 17
CLIPPED_LEVEL = 0.999


@dataclass(frozen=True)
class ProbedFile:
    path: str
    clip_id: str
    size_bytes: int
    mtime_ns: int
    format: str
    duration_s: float
    sample_rate: int
    channels: int
    frames: int
    peak: float
    rms_db: float
    clipped_fraction: float

    def to_clip(self, source: str) -> Clip:
        """The clip these bytes are, at this file, from `source`."""
        return Clip(self.clip_id, self.path, source, self.format, self.duration_s, self.sample_rate, self.channels,
                    self.frames, self.size_bytes, self.peak, self.rms_db, self.clipped_fraction)

    def to_clip_file(self) -> ClipFile:
        return ClipFile(self.path, self.clip_id, self.size_bytes, self.mtime_ns)


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def find_audio_files(root: Path) -> tuple[list[Path], int]:
    """Audio files below `root` (sorted, hidden files and folders skipped) and how many other files were seen."""
    if root.is_file():
        return ([root], 0) if root.suffix.lower() in AUDIO_EXTENSIONS else ([], 1)
    found: list[Path] = []
    ignored = 0
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not is_hidden(name))
        for name in sorted(files):
            if is_hidden(name):
                continue
            if os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS:
                found.append(Path(folder) / name)
            else:
                ignored += 1
    return found, ignored


def _measure(handle: soundfile.SoundFile) -> tuple[int, float, float, float]:
    """Frames, peak, RMS in dBFS and the fraction of clipped samples, block by block."""
    frames = 0
    peak = 0.0
    sum_squares = 0.0
    clipped = 0
    for block in handle.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
        if not np.isfinite(block).all():
            raise ValueError("samples are not finite numbers")
        magnitude = np.abs(block)
        frames += block.shape[0]
        peak = max(peak, float(magnitude.max(initial=0.0)))
        sum_squares += float(np.square(block, dtype=np.float64).sum())
        clipped += int((magnitude >= CLIPPED_LEVEL).sum())
    values = frames * handle.channels
    rms = math.sqrt(sum_squares / values) if values else 0.0
    rms_db = 20 * math.log10(rms) if rms > 1e-6 else -120.0
    return frames, peak, rms_db, (clipped / values if values else 0.0)


def _decoder_message(error: Exception) -> str:
    """libsndfile's words without the in-memory buffer it names: 'Format not recognised.'"""
    text = str(error).strip()
    if text.startswith("Error opening <"):
        text = text.split(">: ", 1)[-1]
    return text or type(error).__name__


def probe_file(path: str) -> ProbedFile | Rejection:
    """Hash and check one file; never raises for a bad file, returns a Rejection instead."""
    try:
        stat = os.stat(path)
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return Rejection(path, Reason.MISSING_FILE)
    except OSError as error:
        return Rejection(path, Reason.UNREADABLE, error.strerror or str(error))
    if not data:
        return Rejection(path, Reason.EMPTY, "0 bytes")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as audio:
            if audio.channels > MAX_CHANNELS:
                return Rejection(path, Reason.CHANNELS, f"{audio.channels} channels; at most {MAX_CHANNELS} are supported")
            frames, peak, rms_db, clipped_fraction = _measure(audio)
            sample_rate, channels, container = audio.samplerate, audio.channels, audio.format
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
        reason = Reason.CORRUPT if looks_like_audio(data[:16]) else Reason.NOT_AUDIO
        return Rejection(path, reason, _decoder_message(error))
    if frames == 0 or sample_rate <= 0:
        return Rejection(path, Reason.ZERO_LENGTH, "no audio frames")
    return ProbedFile(
        path=path,
        clip_id=hashlib.sha256(data).hexdigest(),
        size_bytes=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        format=container.lower(),
        duration_s=frames / sample_rate,
        sample_rate=sample_rate,
        channels=channels,
        frames=frames,
        peak=peak,
        rms_db=rms_db,
        clipped_fraction=clipped_fraction,
    )


def folder_roles(root: Path, path: Path, curated: bool) -> tuple[str | None, str | None]:
    """(class folder, pack folder) of a file below `root`: ROOT/<class>/<pack>/... for a curated
    folder, ROOT/<pack>/... otherwise; None where the file sits too high for that folder."""
    folders = path.relative_to(root).parts[:-1] if root.is_dir() else ()
    if curated:
        return (folders[0] if folders else None), (folders[1] if len(folders) > 1 else None)
    return None, (folders[0] if folders else None)


def probe_files(paths: Sequence[str], *, workers: int | None = None, reporter: Reporter | None = None,
                cancel: CancelToken | None = None) -> tuple[dict[str, ProbedFile], list[Rejection]]:
    """Probe files over worker processes: path → probe for the good ones, rejections sorted by path."""
    probed: dict[str, ProbedFile] = {}
    rejected: list[Rejection] = []
    if reporter is not None:
        reporter.start("Hashing and checking audio", len(paths))
    for path, result in parallel_map(probe_file, list(paths), workers=workers, chunk_size=16,
                                     reporter=reporter, cancel=cancel):
        if isinstance(result, Rejection):
            rejected.append(result)
        else:
            probed[path] = result
    rejected.sort(key=lambda r: r.path)
    return probed, rejected
