"""Finding audio files under a folder and probing each: content hash, format, length, levels.

A probe opens only regular files and reads each in blocks: the bytes are hashed (the clip's
identity) and decoded (so a corrupt or truncated body is caught at import, not at training time)
while peak, RMS and clipping are measured for the hygiene checks, and the length the container
declares is compared with what decodes. Anything wrong becomes a Rejection with the reason.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile

from engine.audio.containers import read_declared
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


@dataclass
class FolderScan:
    """What a walk below a folder found: audio files (sorted), how many other files it saw, and
    the folders it could not read (each a rejection naming the folder)."""

    files: list[Path] = field(default_factory=list)
    ignored: int = 0
    unreadable: list[Rejection] = field(default_factory=list)


def scan_folder(root: Path) -> FolderScan:
    """Audio files below `root` (or `root` itself when it is not a folder); hidden files and folders
    are skipped, and a folder that cannot be listed is reported, never passed over in silence."""
    scan = FolderScan()
    if not root.is_dir():
        if root.suffix.lower() in AUDIO_EXTENSIONS:
            scan.files.append(root)
        else:
            scan.ignored = 1
        return scan

    def unreadable(error: OSError) -> None:
        folder = error.filename or str(root)
        scan.unreadable.append(Rejection(str(folder), Reason.UNREADABLE,
                                         f"folder cannot be listed: {error.strerror or error}"))

    for folder, subfolders, files in os.walk(root, onerror=unreadable):
        subfolders[:] = sorted(name for name in subfolders if not is_hidden(name))
        for name in sorted(files):
            if is_hidden(name):
                continue
            if os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS:
                scan.files.append(Path(folder) / name)
            else:
                scan.ignored += 1
    return scan


def find_audio_files(root: Path) -> tuple[list[Path], int]:
    """Audio files below `root` and how many other files were seen (see `scan_folder`)."""
    scan = scan_folder(root)
    return scan.files, scan.ignored


@dataclass
class _Levels:
    """Frames, peak, RMS and clipped samples, gathered block by block."""

    channels: int
    frames: int = 0
    peak: float = 0.0
    sum_squares: float = 0.0
    clipped: int = 0

    def add(self, block: np.ndarray) -> None:
        if not np.isfinite(block).all():
            raise ValueError("samples are not finite numbers")
        magnitude = np.abs(block)
        self.frames += block.shape[0]
        self.peak = max(self.peak, float(magnitude.max(initial=0.0)))
        self.sum_squares += float(np.square(block, dtype=np.float64).sum())
        self.clipped += int((magnitude >= CLIPPED_LEVEL).sum())

    @property
    def rms_db(self) -> float:
        values = self.frames * self.channels
        rms = math.sqrt(self.sum_squares / values) if values else 0.0
        return 20 * math.log10(rms) if rms > 1e-6 else -120.0

    @property
    def clipped_fraction(self) -> float:
        values = self.frames * self.channels
        return self.clipped / values if values else 0.0


def _decoder_message(error: Exception) -> str:
    """libsndfile's words without the file object it names: 'Format not recognised.'"""
    text = str(error).strip()
    if text.startswith("Error opening <"):
        text = text.split(">: ", 1)[-1]
    return text or type(error).__name__


def _open_without_waiting(path: str, flags: int) -> int:
    """An opener that never blocks: opening a FIFO for reading would wait for a writer forever."""
    return os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY)


def _not_regular(path: str, mode: int) -> Rejection | None:
    """None for a regular file, else a rejection saying what it is (and where a link leads)."""
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    kind = next((name for test, name in kinds if test(mode)), "a special file")
    if os.path.islink(path):
        kind += f", linked to {os.path.realpath(path)}"
    return Rejection(path, Reason.NOT_REGULAR, kind)


def _length(frames: int, rate: int) -> str:
    return f"{frames} frames ({frames / rate:.3f} s)" if rate > 0 else f"{frames} frames"


def probe_file(path: str) -> ProbedFile | Rejection:
    """Hash and check one file; never raises for a bad file, returns a Rejection instead.

    Only a regular file is opened (a FIFO or a device is rejected by what `stat` says, and the
    opened file is checked again, without ever waiting on it). The bytes are hashed and decoded in
    blocks, so memory does not grow with the file's length."""
    try:
        rejection = _not_regular(path, os.stat(path).st_mode)
        if rejection is not None:
            return rejection
        with open(path, "rb", opener=_open_without_waiting) as handle:
            info = os.fstat(handle.fileno())
            return _not_regular(path, info.st_mode) or _probe_open_file(path, handle, info)
    except FileNotFoundError:
        return Rejection(path, Reason.MISSING_FILE)
    except OSError as error:
        return Rejection(path, Reason.UNREADABLE, error.strerror or str(error))


def _probe_open_file(path: str, handle: BinaryIO, info: os.stat_result) -> ProbedFile | Rejection:
    if info.st_size == 0:
        return Rejection(path, Reason.EMPTY, "0 bytes")
    clip_id = hashlib.file_digest(handle, "sha256").hexdigest()
    handle.seek(0)
    head = handle.read(16)
    declared = read_declared(handle)
    handle.seek(0)
    sample_rate = 0
    levels = None
    try:
        with soundfile.SoundFile(handle) as audio:
            if audio.channels > MAX_CHANNELS:
                return Rejection(path, Reason.CHANNELS, f"{audio.channels} channels; at most {MAX_CHANNELS} are supported")
            sample_rate, channels, container = audio.samplerate, audio.channels, audio.format
            levels = _Levels(channels)
            for block in audio.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
                levels.add(block)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
        if declared is not None and declared.unsupported_codec:
            return Rejection(path, Reason.UNSUPPORTED_CODEC,
                             f"a {declared.container} file holding {declared.unsupported_codec}")
        cut_short = (isinstance(error, RuntimeError) and levels is not None and declared is not None
                     and declared.frames is not None and levels.frames < declared.frames
                     and handle.tell() >= info.st_size)  # the decoder failed where the bytes ran out
        if cut_short:
            return Rejection(path, Reason.TRUNCATED,
                             f"the {declared.container} header declares {_length(declared.frames, sample_rate)}; "
                             f"decoding reached the end of the file after {_length(levels.frames, sample_rate)} "
                             f"({_decoder_message(error)})")
        reason = Reason.CORRUPT if looks_like_audio(head) else Reason.NOT_AUDIO
        return Rejection(path, reason, _decoder_message(error))
    if declared is not None and declared.frames is not None and levels.frames < declared.frames:
        return Rejection(path, Reason.TRUNCATED,
                         f"the {declared.container} header declares {_length(declared.frames, sample_rate)}; "
                         f"the file holds {_length(levels.frames, sample_rate)}")
    if levels.frames == 0 or sample_rate <= 0:
        return Rejection(path, Reason.ZERO_LENGTH, "no audio frames")
    return ProbedFile(
        path=path,
        clip_id=clip_id,
        size_bytes=info.st_size,
        mtime_ns=info.st_mtime_ns,
        format=container.lower(),
        duration_s=levels.frames / sample_rate,
        sample_rate=sample_rate,
        channels=channels,
        frames=levels.frames,
        peak=levels.peak,
        rms_db=levels.rms_db,
        clipped_fraction=levels.clipped_fraction,
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
