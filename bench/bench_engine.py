"""Engine benchmarks, printed as ratios against naive baselines run in the same process.

    python bench/bench_engine.py                 # all
    python bench/bench_engine.py features cache  # some: features, cache, import

features  dsp and mel extraction vs the naive loop (librosa.load at 22050 Hz + librosa MFCC/spectral
          features per file, one process), in seconds of audio per second: on one worker in-process
          (per core) and on all cores; and as a share of the ceiling, the least work any extraction
          of these files does: decode each file, resample it to the features' 22,050 Hz and take
          one power STFT (1024/256) of it, one process, per core x cores. The former ceiling
          (decode and STFT at each file's own rate, no resampling) is printed beside it.
cache     re-extracting 1,000 clips from a warm cache vs cold.
import    importing 10,000 short files (hashing included) in files per second, vs a naive loop
          (hash + soundfile.info + a row-at-a-time insert); then `stats` on that workspace.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.audio.synth import DEMO_PACKS, DRUM_CLASSES, synthesize_hit, write_curated_library  # noqa: E402
from engine.features.extract import extract_features  # noqa: E402
from engine.features.service import extract_workspace, workspace_targets  # noqa: E402
from engine.jobs.parallel import default_workers  # noqa: E402
from engine.features.spec import FeatureSpec  # noqa: E402
from engine.library.importer import import_folder  # noqa: E402
from engine.library.stats import workspace_stats  # noqa: E402
from engine.workspace import Workspace  # noqa: E402


def naive_features(path: Path) -> np.ndarray:
    import librosa

    return naive_vector(*librosa.load(path, sr=22050))


def naive_vector(y: np.ndarray, sr: int = 22050) -> np.ndarray:
    """The naive baseline's librosa features of loaded samples: MFCC, deltas, spectral statistics."""
    import librosa

    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20)
    parts = [mfcc, librosa.feature.delta(mfcc), librosa.feature.spectral_centroid(y=y, sr=sr),
             librosa.feature.spectral_bandwidth(y=y, sr=sr), librosa.feature.spectral_rolloff(y=y, sr=sr),
             librosa.feature.spectral_flatness(y=y), librosa.feature.zero_crossing_rate(y), librosa.feature.rms(y=y)]
    return np.concatenate([np.concatenate([p.mean(axis=1), p.std(axis=1)]) for p in parts])


def audio_seconds(paths: list[Path]) -> float:
    return sum(soundfile.info(p).duration for p in paths)


def line(name: str, ours: float, naive: float, unit: str, target: str) -> None:
    print(f"{name:<34} ours {ours:>10.1f} {unit:<6} naive {naive:>9.1f} {unit:<6} ratio {ours / naive:>7.1f}x  ({target})")


FEATURE_RATE = 22050  # the rate the dsp and mel extractors work at (their sample_rate default)


def bench_features(scratch: Path) -> None:
    paths = write_curated_library(scratch / "lib", clips_per_class_per_pack=12)  # 540 one-shots
    seconds = audio_seconds(paths)
    naive_features(paths[0])  # let librosa compile its kernels before timing
    started = time.perf_counter()
    for path in paths:
        naive_features(path)
    naive_rate = seconds / (time.perf_counter() - started)
    cores = default_workers()
    ceiling = decode_stft_rate(paths, FEATURE_RATE) * cores
    own_rate_ceiling = decode_stft_rate(paths) * cores
    workspace = Workspace.open(scratch / "ws_features")
    import_folder(workspace, scratch / "lib", curated=True)
    print(f"{len(paths)} files, {seconds:.0f} s of audio; ceiling: decode + resample to {FEATURE_RATE} Hz + one "
          f"1024/256 STFT per file, {ceiling:.0f} s/s on {cores} cores ({ceiling / cores:.0f} per core); "
          f"without resampling (at each file's own rate): {own_rate_ceiling:.0f} s/s")
    warm_up(paths[0])
    targets = workspace_targets(workspace)
    for kind in ("dsp", "mel"):
        spec = FeatureSpec.parse(kind)
        workspace.cache.clear()
        started = time.process_time()  # CPU time: a per-core figure that other processes' load barely moves
        extract_features(workspace.cache, targets, spec, spec.extractors(workspace.embeddings_dir), workers=1)
        per_core = seconds / (time.process_time() - started)
        workspace.cache.clear()
        report = extract_workspace(workspace, FeatureSpec.parse(kind))
        rate = seconds / report.seconds
        line(f"{kind} extraction (all cores)", rate, naive_rate, "s/s", "target >= 5x")
        print(f"{'':<34} = {rate / ceiling:.0%} of the decode + resample + STFT ceiling (goal about 50%), "
              f"{rate / own_rate_ceiling:.0%} of the one without resampling")
        print(f"{'':<34} one worker's work in-process: {per_core:.0f} s/s per core of CPU time "
              f"= {per_core / (ceiling / cores):.0%} of the ceiling's per core")


def warm_up(path: Path) -> None:
    """Import and run what extraction runs once, so no figure pays for the first call of anything."""
    from engine.audio.decode import decode, resample

    samples = resample(*decode(path), FEATURE_RATE)
    for kind in ("dsp", "mel"):
        FeatureSpec.parse(kind).extractors(Path())[0].extract_batch([samples, samples])


def decode_stft_rate(paths: list[Path], sample_rate: int | None = None) -> float:
    """The ceiling, per core: seconds of audio per CPU second to decode each file, resample it to
    `sample_rate` (soxr HQ, as extraction does; None: stay at the file's own rate) and take one
    power STFT (1024/256, numpy) of it, one process, no features."""
    from threadpoolctl import threadpool_limits

    from engine.audio import dsp
    from engine.audio.decode import decode, resample

    with threadpool_limits(limits=1):
        started = time.process_time()  # one thread: its CPU time is its work, whatever else the machine runs
        for path in paths:
            samples, rate = decode(path)
            if sample_rate is not None:
                samples = resample(samples, rate, sample_rate)
            dsp.power_spectrogram(dsp.frame(samples, 1024, 256))
        took = time.process_time() - started
    return audio_seconds(paths) / took


def curated_thousand(scratch: Path, name: str) -> Path:
    """A curated folder of exactly 1,000 synthetic one-shots (9 classes, 5 packs)."""
    library = scratch / f"{name}_library"
    folder = scratch / name
    for path in write_curated_library(library, clips_per_class_per_pack=23)[:1000]:
        destination = folder / path.relative_to(library)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, destination)
    return folder


def bench_cache(scratch: Path) -> None:
    folder = curated_thousand(scratch, "one_thousand")
    workspace = Workspace.open(scratch / "ws_cache")
    import_folder(workspace, folder, curated=True)
    cold = extract_workspace(workspace, FeatureSpec.parse("dsp"))
    warm = extract_workspace(workspace, FeatureSpec.parse("dsp"))
    assert warm.cached == 1000 and warm.extracted == 0
    print(f"re-extract 1,000 clips: cold {cold.seconds:.2f} s, warm {warm.seconds:.3f} s "
          f"→ {cold.seconds / warm.seconds:.0f}x faster (target >= 50x and warm < 1 s)")


def bench_import(scratch: Path, count: int = 10_000) -> None:
    folder = scratch / "many"
    rng = np.random.default_rng(0)
    hits = [synthesize_hit(kind, DEMO_PACKS[3], rng)[:5000] for kind in DRUM_CLASSES]
    for index in range(count):
        pack = folder / f"pack{index % 20:02d}"
        pack.mkdir(parents=True, exist_ok=True)
        noise = rng.standard_normal(5000).astype(np.float32) * 1e-3  # every file unique
        soundfile.write(pack / f"hit{index:05d}.wav", hits[index % len(hits)] + noise, 22050, subtype="PCM_16")
    files = sorted(folder.rglob("*.wav"))

    import duckdb

    naive_db = duckdb.connect(str(scratch / "naive.duckdb"))
    naive_db.execute("CREATE TABLE clips (clip_id VARCHAR PRIMARY KEY, path VARCHAR, frames BIGINT, rate INTEGER)")
    sample = files[:1000]
    started = time.perf_counter()
    for path in sample:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        info = soundfile.info(path)
        naive_db.execute("INSERT INTO clips VALUES (?, ?, ?, ?)", [digest, str(path), info.frames, info.samplerate])
    naive_rate = len(sample) / (time.perf_counter() - started)

    workspace = Workspace.open(scratch / "ws_import")
    started = time.perf_counter()
    report = import_folder(workspace, folder)
    ours = len(files) / (time.perf_counter() - started)
    assert report.added == count, report.to_dict()
    line(f"import {count:,} files (hash+decode)", ours, naive_rate, "files/s", "naive on 1,000 files")
    started = time.perf_counter()
    again = import_folder(workspace, folder)
    print(f"re-import of the same {count:,} files: {time.perf_counter() - started:.2f} s ({again.unchanged} unchanged)")
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        workspace_stats(workspace)
        timings.append(time.perf_counter() - started)
    print(f"stats on {count:,} clips: median {sorted(timings)[2] * 1000:.0f} ms (target < 500 ms)")


BENCHES = {"features": bench_features, "cache": bench_cache, "import": bench_import}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(BENCHES)
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as scratch:
        for name in chosen:
            BENCHES[name](Path(scratch))
