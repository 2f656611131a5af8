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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from engine.audio.decode import AUDIO_EXTENSIONS, MAX_CHANNELS, looks_like_audio
from engine.concepts import Reason, Rejection

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


def split_results(results: Iterator[tuple[str, ProbedFile | Rejection]]) -> tuple[list[ProbedFile], list[Rejection]]:
    probed: list[ProbedFile] = []
    rejected: list[Rejection] = []
    for _, result in results:
        (rejected if isinstance(result, Rejection) else probed).append(result)
    return probed, rejected
