"""Dataset gates on 10,000 labelled clips with warm features, against a naive baseline in the same process.

    python bench/bench_gates.py [clips]      # default 10000; target: every dataset gate in < 10 s

The workspace is written straight into the database and the feature cache (clip rows with levels,
labels over 9 classes and 20 packs, and dsp-shaped 99-d vectors under the dsp extractor's cache
keys), so the gates find every feature cached and decode nothing: "warm features". Some near
duplicates (across packs, so across splits) and mislabels are planted so the gates have work to
report.

The naive baseline is the near-duplicate search as a Python loop over pairs (cosine of each pair
of standardised vectors), timed on a subset and extrapolated to all n(n-1)/2 pairs.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.audio.synth import DRUM_CLASSES  # noqa: E402
from engine.concepts import Origin, Segment  # noqa: E402
from engine.datasets.similarity import DEFAULT_SIMILARITY, near_duplicate_pairs, unit_rows  # noqa: E402
from engine.features.cache import cache_key  # noqa: E402
from engine.features.spec import FeatureSpec  # noqa: E402
from engine.gates.core import default_settings, run_gates  # noqa: E402
from engine.gates.dataset import DatasetContext  # noqa: E402
from engine.library.scan import ProbedFile  # noqa: E402
from engine.store.clips import insert_clips, record_files  # noqa: E402
from engine.store.labels import LabelWrite, remember_taxonomy, upsert_labels  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

PACKS = 20
DIMENSIONS = 99
NAIVE_SUBSET = 1000


def synthetic_workspace(root: Path, count: int, seed: int = 0) -> Workspace:
    """`count` labelled one-shots with cached dsp-shaped features; 0.5% planted near duplicates in
    another pack and 1% flipped labels."""
    rng = np.random.default_rng(seed)
    workspace = Workspace.open(root)
    classes = rng.integers(0, len(DRUM_CLASSES), count)
    packs = rng.integers(0, PACKS, count)
    centres = rng.normal(0, 3, (len(DRUM_CLASSES), DIMENSIONS))
    pack_shift = rng.normal(0, 0.8, (PACKS, DIMENSIONS))
    features = (centres[classes] + pack_shift[packs] + rng.normal(0, 1.5, (count, DIMENSIONS))).astype(np.float32)
    copies = rng.choice(count, count // 200, replace=False)
    features[copies] = features[copies - 1] * 1.0001  # the clip before, at a new level, in its own pack
    labels = [DRUM_CLASSES[c] for c in classes]
    for n in rng.choice(count, count // 100, replace=False):
        labels[n] = DRUM_CLASSES[(classes[n] + 1) % len(DRUM_CLASSES)]
    files = [ProbedFile(path=f"/bench/pack{packs[n]:02d}/{labels[n]}/hit{n:05d}.wav", clip_id=f"{n:064x}",
                        size_bytes=44_144, mtime_ns=0, format="WAV", duration_s=0.5, sample_rate=22050, channels=1,
                        frames=11_025, peak=float(rng.uniform(0.2, 0.99)), rms_db=float(rng.uniform(-30, -12)),
                        clipped_fraction=0.0) for n in range(count)]
    taxonomy = workspace.taxonomy("drums")
    with workspace.db.transaction() as con:
        insert_clips(con, [f.to_clip(f"pack{p:02d}") for f, p in zip(files, packs)])
        record_files(con, [f.to_clip_file() for f in files])
        remember_taxonomy(con, taxonomy)
        upsert_labels(con, [LabelWrite(f.clip_id, "drums", label, Origin.IMPORT, 1.0, Segment.whole())
                            for f, label in zip(files, labels)])
    prefix = FeatureSpec.parse("dsp").extractors(workspace.embeddings_dir)[0].cache_prefix
    workspace.cache.put_many({cache_key(prefix, f.clip_id, "whole"): features[n] for n, f in enumerate(files)})
    return workspace


def naive_pairs_per_second(features: np.ndarray, threshold: float) -> float:
    """Pairs per second of a Python loop computing each pair's cosine of standardised vectors."""
    unit = [row for row in unit_rows(features[:NAIVE_SUBSET]).astype(np.float64)]
    started = time.perf_counter()
    found = 0
    for i in range(len(unit)):
        for j in range(i + 1, len(unit)):
            if float(np.dot(unit[i], unit[j])) >= threshold:
                found += 1
    return len(unit) * (len(unit) - 1) / 2 / (time.perf_counter() - started)


def main(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="workbench-bench-gates-") as scratch:
        started = time.perf_counter()
        workspace = synthetic_workspace(Path(scratch) / "ws", count)
        print(f"{count} clips written with warm features in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        context = DatasetContext(workspace)
        report = run_gates("dataset", context, default_settings(), subject=context.subject())
        ours = time.perf_counter() - started
        for result in report.results:
            print(f"  {result.gate:<28} {result.status:<4} {result.value!s:<8} {result.detail[:70]}")
        print(f"dataset gates on {count} clips: {ours:.2f} s (target < 10 s)")

        features = context.featurised[0]
        started = time.perf_counter()
        pairs = near_duplicate_pairs(features, DEFAULT_SIMILARITY)
        search = time.perf_counter() - started
        rate = naive_pairs_per_second(features, DEFAULT_SIMILARITY)
        all_pairs = count * (count - 1) / 2
        naive = all_pairs / rate
        print(f"near-duplicate search: ours {search:.2f} s ({pairs.total_pairs} pairs), naive Python loop "
              f"{rate:,.0f} pairs/s on {NAIVE_SUBSET} rows → {naive:.0f} s for {count} (extrapolated); "
              f"ratio {naive / search:.0f}x")
        print(f"all dataset gates vs the naive near-duplicate search alone: {naive / ours:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
