"""Model benchmarks: training time per kind, inference latency, a long track through a section
model (as a ratio against a naive librosa loop run in the same process), and re-evaluation.

    python bench/bench_models.py                    # all
    python bench/bench_models.py training track     # some: training, finetune, latency, track, reeval

training  fit time per kind on 1,000 and 10,000 in-memory ("cached") dsp-shaped samples (99-d, 9
          classes, 15% validation): logreg, lgbm, mlp (default epochs) in seconds; cnn in training
          samples per second on (64, 96) mel-shaped patches (1,000 samples, 2 epochs, batch 32).
latency   per-clip latency of engine.inference.predict_files with a logreg and an mlp trained on
          dsp: cold (a file never seen: hash + decode + extract + predict) and warm (features
          cached), median of 20 clips, in ms.
track     a 5-minute synthesized track (124 bpm, beat grid set) through a section model (logreg on
          dsp with region_s=None, 4 s windows, every bar) with predict_files on a cold cache, vs a
          naive loop: librosa.load(offset, duration=4) + librosa features + predict_proba per window
          (wall time, and CPU time of all threads); then the same track with no grid stored
          (predict_files detects one in the run).
finetune  `finetune` (aiSFX fine-tuned, default hyperparameters: the last block trained) on 300
          synthetic drum hits as `wave` features (9 classes, 15% validation): the whole default fit
          (early stopping: the frozen blocks' maps computed once, then the last block and head per
          epoch), against the baseline measured in the same run: the whole network every epoch
          (the path before the maps were cached), timed over EPOCHS_TIMED epochs. Needs the aisfx
          package.
reeval    evaluate_on_dataset of version 2 (of two logreg versions) on a 1,000-clip curated folder
          whose dsp features are already cached.
"""

from __future__ import annotations

import csv
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_engine import curated_thousand, naive_vector  # noqa: E402  (the same naive baseline as bench_engine)
from engine.audio.beatgrid import BeatGrid  # noqa: E402
from engine.audio.synth import synthesize_section_track, write_curated_library  # noqa: E402
from engine.concepts import Split  # noqa: E402
from engine.features.service import extract_workspace  # noqa: E402
from engine.features.spec import FeatureSpec  # noqa: E402
from engine.inference import predict_files  # noqa: E402
from engine.library.grids import set_grid  # noqa: E402
from engine.library.importer import import_folder, import_label_file  # noqa: E402
from engine.models.base import TrainingCallback  # noqa: E402
from engine.models.kinds import make_model, save_model  # noqa: E402
from engine.models.registry import register  # noqa: E402
from engine.training.data import TrainingData, training_data  # noqa: E402
from engine.training.evaluate import evaluate_on_dataset  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

SR = 22050
WINDOW_S = 4.0
TRACK_BPM = 124.0


# -- shared helpers ----------------------------------------------------------------------------

class _Epochs(TrainingCallback):
    """Remembers the last epoch (or boosting round) reported and its validation accuracy."""

    def __init__(self) -> None:
        self.epoch, self.val_metric = 0, None

    def on_epoch_end(self, epoch, total_epochs, train_loss, val_loss, val_metric) -> None:
        self.epoch, self.val_metric = epoch, val_metric


def train_version(workspace: Workspace, name: str, kind: str, data: TrainingData, *, window_s: float | None = None,
                  **hyperparams) -> str:
    """Fit on the train split (validation for early stopping) and register; returns the version's ref."""
    model = make_model(kind, **hyperparams)
    train_x, train_y = data.part(Split.TRAIN)
    val_x, val_y = data.part(Split.VAL)
    model.fit(train_x, train_y, X_val=val_x if len(val_y) else None, y_val=val_y if len(val_y) else None,
              n_classes=len(data.classes))
    artifact = workspace.runs_dir / f"bench-{uuid.uuid4().hex[:8]}" / "model"
    save_model(model, artifact)
    version = register(workspace, name=name, task=data.task, kind=kind, artifact_dir=artifact, feature_spec=data.spec,
                       classes=data.classes, label_counts=data.label_counts, hyperparams=model.get_params(),
                       metrics={}, dataset_fingerprint=data.fingerprint, job_id=None, meta={"window_s": window_s})
    return version.ref


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


# -- training ----------------------------------------------------------------------------------

def dsp_like(n: int, seed: int = 0, dims: int = 99, classes: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Random but learnable rows shaped like dsp vectors: column scales from 1e-3 (flatness, band
    ratios) to 1e3 (Hz), offsets like MFCC means; each class shifts a random third of the columns
    by about half a standard deviation (a logreg gets roughly 80% on 1,000 rows, 90% on 10,000)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    shifts = rng.normal(0.0, 0.5, (classes, dims)) * (rng.random((classes, dims)) < 1 / 3)
    latent = shifts[y] + rng.normal(0.0, 1.0, (n, dims))
    mixing = np.eye(dims) + rng.normal(0.0, 0.1, (dims, dims))  # some correlation between columns
    scale = 10.0 ** rng.uniform(-3, 3, dims)
    offset = rng.normal(0.0, 50.0, dims)
    return (offset + scale * (latent @ mixing)).astype(np.float32), y


def mel_like(n: int, seed: int = 0, classes: int = 9,
             shape: tuple[int, int] = (64, 96)) -> tuple[np.ndarray, np.ndarray]:
    """dB patches (floor -80) where each class lights its own band of mel bins in its own rhythm."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    mels, frames = shape
    patches = rng.normal(-70.0, 4.0, (n, mels, frames))
    for k in range(classes):
        band = slice(k * mels // classes, (k + 2) * mels // classes)
        on_beat = np.arange(frames) % (4 + k) < 2
        patches[y == k, band, :] += 40.0 + 20.0 * on_beat
    return np.clip(patches, -80.0, 0.0).astype(np.float32), y


def _split(X: np.ndarray, y: np.ndarray, val: float = 0.15, seed: int = 0):
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(round(len(y) * (1 - val)))
    return X[order[:cut]], y[order[:cut]], X[order[cut:]], y[order[cut:]]


def _timed_fit(kind: str, X: np.ndarray, y: np.ndarray, **hyperparams) -> tuple[float, _Epochs, int]:
    train_x, train_y, val_x, val_y = _split(X, y)
    model = make_model(kind, **hyperparams)
    callback = _Epochs()
    started = time.perf_counter()
    model.fit(train_x, train_y, X_val=val_x, y_val=val_y, n_classes=9, callback=callback)
    return time.perf_counter() - started, callback, len(train_y)


def bench_training(scratch: Path) -> None:
    import lightgbm  # noqa: F401  (imports are not what we time)
    import sklearn.linear_model  # noqa: F401
    import torch  # noqa: F401

    X_small, y_small = dsp_like(100, seed=1)
    for kind in ("logreg", "lgbm", "mlp"):  # warm-up: first-call costs (imports, torch kernels)
        make_model(kind, **({"epochs": 1} if kind == "mlp" else {})).fit(X_small, y_small, n_classes=9)
    print("training, in-memory features, 15% validation (early stopping where the kind has it); 2 CPU threads")
    print(f"{'kind':<8}{'n=1,000':>12}{'n=10,000':>12}   epochs/rounds run (1k, 10k)   val accuracy (1k, 10k)")
    for kind in ("logreg", "lgbm", "mlp"):
        seconds, epochs, accuracy = [], [], []
        for n in (1_000, 10_000):
            X, y = dsp_like(n)
            took, callback, _ = _timed_fit(kind, X, y)
            seconds.append(took)
            epochs.append(str(callback.epoch))
            accuracy.append(f"{callback.val_metric:.3f}" if callback.val_metric is not None else "-")
        print(f"{kind:<8}{seconds[0]:>10.2f} s{seconds[1]:>10.2f} s   {', '.join(epochs):<28}  {', '.join(accuracy)}")
    X, y = mel_like(1_000)
    make_model("cnn", epochs=1).fit(X[:64], y[:64], n_classes=9)  # warm-up
    took, callback, n_train = _timed_fit("cnn", X, y, epochs=2, batch_size=32)
    print(f"{'cnn':<8}{n_train * 2 / took:>10.0f} samples/s on (64, 96) patches: {n_train} training patches x 2 epochs "
          f"in {took:.2f} s (validation passes included), val accuracy {callback.val_metric:.3f}")

    # The torch kinds ask for 2 threads; on a busy 2-core machine that can cost far more than it
    # gains, so the same fits once more with torch limited to 1 thread (fit keeps min(2, current)).
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        took_mlp, callback_mlp, _ = _timed_fit("mlp", *dsp_like(1_000))
        took_cnn, _, n_train = _timed_fit("cnn", X, y, epochs=2, batch_size=32)
    finally:
        torch.set_num_threads(threads)
    print(f"torch at 1 thread instead: mlp n=1,000 {took_mlp:.2f} s ({callback_mlp.epoch} epochs), "
          f"cnn {n_train * 2 / took_cnn:.0f} samples/s")


EPOCHS_TIMED = 2


class _EpochTimes(_Epochs):
    """Also remembers when each epoch ended (perf_counter) and the best validation loss."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: list[float] = []
        self.best_val_loss = float("inf")

    def on_epoch_end(self, epoch, total_epochs, train_loss, val_loss, val_metric) -> None:
        super().on_epoch_end(epoch, total_epochs, train_loss, val_loss, val_metric)
        self.ended.append(time.perf_counter())
        if val_loss is not None:
            self.best_val_loss = min(self.best_val_loss, val_loss)


def bench_finetune(scratch: Path) -> None:
    from engine.audio.decode import resample
    from engine.audio.synth import DEMO_PACKS, DRUM_CLASSES, synthesize_hit
    from engine.embeddings.aisfx import installed_package_dir
    from engine.features.wave import WaveExtractor
    from engine.models.finetune import FinetuneClassifier
    from engine.settings import cpu_threads

    class WholeNetworkEachEpoch(FinetuneClassifier):
        """The baseline: the training path before the frozen blocks' maps were computed once (what
        train_blocks=4 still does): every epoch runs the log-mel front end and the frozen blocks too."""

        def _fitted_part(self, net, X, X_val, device, callback):
            return self._on_waveforms(net, X, X_val)

    if installed_package_dir() is None:
        print("skipped: the aisfx package is not installed (pip install --no-deps aisfx==0.1.2)")
        return
    rng = np.random.default_rng(0)
    extractor = WaveExtractor()
    rows, labels = [], []
    for index in range(300):
        label = index % len(DRUM_CLASSES)
        pack = DEMO_PACKS[index % len(DEMO_PACKS)]
        hit = synthesize_hit(DRUM_CLASSES[label], pack, rng)
        rows.append(extractor.extract(resample(hit, pack.sample_rate, extractor.sample_rate)))
        labels.append(label)
    X, y = np.stack(rows), np.array(labels)
    train_x, train_y, val_x, val_y = _split(X, y)

    def fit(model: FinetuneClassifier) -> tuple[float, _EpochTimes]:
        callback = _EpochTimes()
        started = time.perf_counter()
        model.fit(train_x, train_y, X_val=val_x, y_val=val_y, n_classes=9, callback=callback)
        callback.ended = [t - started for t in callback.ended]
        return time.perf_counter() - started, callback

    make_model("finetune", epochs=1).fit(X[:16], y[:16], n_classes=9)  # warm-up: imports, weights, kernels
    took_base, base = fit(WholeNetworkEachEpoch(epochs=EPOCHS_TIMED))
    base_epoch = took_base / base.epoch
    took, cached = fit(make_model("finetune"))
    later = np.diff(cached.ended)
    cached_epoch = float(np.mean(later)) if len(later) else cached.ended[0]
    print(f"finetune (default hyperparameters: the last block trained), {len(train_y)} training clips + "
          f"{len(val_y)} validation, {cpu_threads()} torch threads, load average {os.getloadavg()[0]:.1f}:")
    print(f"  whole default fit: {cached.epoch} epochs (early stopping) in {took:.1f} s = {took / 60:.1f} min "
          f"(maps of the frozen blocks + epoch 1: {cached.ended[0]:.1f} s, then {cached_epoch:.1f} s per epoch); "
          f"best val loss {cached.best_val_loss:.3f}, last val accuracy {cached.val_metric:.3f}")
    print(f"  baseline, the whole network every epoch: {base_epoch:.1f} s per epoch ({EPOCHS_TIMED} epochs timed), "
          f"so {base_epoch * cached.epoch:.0f} s for those {cached.epoch} epochs: {base_epoch * cached.epoch / took:.1f}x "
          f"the whole fit's time; {base_epoch / cached_epoch:.1f}x per epoch after the first")


# -- latency -----------------------------------------------------------------------------------

def _drums_workspace(scratch: Path, name: str, clips_per_class_per_pack: int) -> tuple[Workspace, TrainingData]:
    write_curated_library(scratch / f"{name}_lib", clips_per_class_per_pack=clips_per_class_per_pack)
    workspace = Workspace.open(scratch / f"{name}_ws")
    import_folder(workspace, scratch / f"{name}_lib", curated=True, taxonomy="drums")
    extract_workspace(workspace, FeatureSpec.parse("dsp"), taxonomy="drums", labelled_only=True)
    return workspace, training_data(workspace, FeatureSpec.parse("dsp"), taxonomy="drums")


def bench_latency(scratch: Path) -> None:
    workspace, data = _drums_workspace(scratch, "latency", clips_per_class_per_pack=7)
    refs = {"logreg": train_version(workspace, "drums_logreg", "logreg", data),
            "mlp": train_version(workspace, "drums_mlp", "mlp", data)}
    fresh = write_curated_library(scratch / "latency_new", clips_per_class_per_pack=5, seed=7)  # never imported
    order = np.random.default_rng(0).permutation(len(fresh))
    sets = {"logreg": [fresh[i] for i in order[:20]], "mlp": [fresh[i] for i in order[20:40]]}
    predict_files(workspace, refs["logreg"], [fresh[order[-1]]])  # warm-up: imports
    print(f"predict_files latency per clip, median of 20 one-shots ({data.sizes()['train']} training clips)")
    for kind, ref in refs.items():
        cold, warm, correct = [], [], 0
        for path in sets[kind]:
            started = time.perf_counter()
            _, predictions, _ = predict_files(workspace, ref, [path])
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            predict_files(workspace, ref, [path])
            warm.append(time.perf_counter() - started)
            correct += predictions[0].label == path.parent.parent.name
        print(f"  {kind:<7} cold {median_ms(cold):7.1f} ms  warm {median_ms(warm):7.1f} ms  "
              f"(cold range {min(cold) * 1000:.0f}-{max(cold) * 1000:.0f} ms; {correct}/20 correct)")
    _latency_breakdown(workspace, refs["logreg"], sets["logreg"])


def _latency_breakdown(workspace: Workspace, ref: str, paths: list[Path]) -> None:
    """Where a warm call's time goes: model load, file probe (hash + full decode), cache + predict."""
    from engine.features.extract import Target
    from engine.inference import load
    from engine.library.scan import probe_files

    loads, probes, rest = [], [], []
    for path in paths:
        started = time.perf_counter()
        model = load(workspace, ref)
        loads.append(time.perf_counter() - started)
        started = time.perf_counter()
        probed, _ = probe_files([str(path.resolve())])
        probes.append(time.perf_counter() - started)
        info = next(iter(probed.values()))
        started = time.perf_counter()
        model.probabilities(workspace, [Target(info.clip_id, info.path, info.size_bytes)])
        rest.append(time.perf_counter() - started)
    print(f"  warm logreg call, median parts: resolve + load model {median_ms(loads):.1f} ms, "
          f"probe (hash + decode) {median_ms(probes):.1f} ms, cache lookup + predict {median_ms(rest):.1f} ms")


# -- track -------------------------------------------------------------------------------------

TRAINING_TRACKS = {
    "train_a": (124.0, 0.05, [("intro", 8), ("build", 4), ("drop", 8), ("break", 8), ("build", 4), ("drop", 8), ("outro", 8)]),
    "train_b": (120.0, 0.10, [("intro", 8), ("verse", 8), ("chorus", 8), ("break", 4), ("verse", 8), ("chorus", 8), ("outro", 8)]),
    "train_c": (128.0, 0.00, [("intro", 4), ("verse", 8), ("build", 4), ("drop", 8), ("break", 8), ("chorus", 8), ("outro", 4)]),
    "train_d": (122.0, 0.20, [("intro", 8), ("chorus", 8), ("verse", 8), ("build", 8), ("drop", 16), ("break", 4), ("outro", 8)]),
}
LONG_TRACK = [("intro", 8), ("verse", 16), ("build", 8), ("drop", 16), ("break", 8), ("chorus", 16), ("build", 8),
              ("drop", 16), ("break", 8), ("verse", 16), ("chorus", 16), ("build", 4), ("drop", 8), ("outro", 8)]


def _section_at(layout: list[dict], seconds: float) -> str:
    return next((s["label"] for s in layout if s["start_s"] <= seconds < s["end_s"]), layout[-1]["label"])


def bench_track(scratch: Path) -> None:
    folder = scratch / "tracks"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "sections.csv"
    naive_rows: list[tuple[Path, float, str]] = []  # the naive model's training windows
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "start_beat", "end_beat", "source"])
        for seed, (name, (bpm, offset, sections)) in enumerate(TRAINING_TRACKS.items(), 1):
            audio, layout = synthesize_section_track(sections, bpm=bpm, offset_s=offset, sample_rate=SR, seed=seed)
            soundfile.write(folder / f"{name}.wav", audio, SR)
            for section in layout:
                writer.writerow([f"{name}.wav", section["label"], section["start_beat"], section["end_beat"], name])
                count = int((section["end_s"] - section["start_s"]) // WINDOW_S)
                starts = section["start_s"] + WINDOW_S * np.arange(count)
                naive_rows += [(folder / f"{name}.wav", float(s), section["label"]) for s in starts]
    workspace = Workspace.open(scratch / "track_ws")
    import_folder(workspace, folder)
    for name, (bpm, offset, _) in TRAINING_TRACKS.items():
        set_grid(workspace, str(folder / f"{name}.wav"), BeatGrid.constant(bpm, offset))
    import_label_file(workspace, manifest, taxonomy="sections")
    spec = FeatureSpec.parse("dsp", {"region_s": None})
    data = training_data(workspace, spec, taxonomy="sections", window_s=WINDOW_S, min_class_samples=3,
                         val=0.0, test=0.0)
    ref = train_version(workspace, "sections_bench", "logreg", data, window_s=WINDOW_S)

    long_folder = scratch / "long"
    long_folder.mkdir()
    audio, truth = synthesize_section_track(LONG_TRACK, bpm=TRACK_BPM, sample_rate=SR, seed=42)
    track = long_folder / "five_minutes.wav"
    soundfile.write(track, audio, SR)
    import_folder(workspace, long_folder)
    set_grid(workspace, str(track), BeatGrid.constant(TRACK_BPM, 0.0))
    duration = len(audio) / SR

    # The naive pipeline: its own logreg, trained on librosa features of the same kind of windows.
    naive_vector(np.zeros(SR, dtype=np.float32))  # let librosa compile its kernels before timing
    import librosa

    naive_x = np.stack([naive_vector(librosa.load(p, sr=SR, offset=s, duration=WINDOW_S)[0]) for p, s, _ in naive_rows])
    naive_labels = sorted({label for _, _, label in naive_rows})
    naive_model = make_model("logreg").fit(naive_x, np.array([naive_labels.index(label) for *_, label in naive_rows]),
                                           n_classes=len(naive_labels))

    colds, cold_cpus, warms, naives, naive_cpus = [], [], [], [], []
    for _ in range(3):  # medians of 3, as other processes may share the machine
        workspace.cache.clear()  # cold: nothing of the track (or anything else) is cached
        started, cpu = time.perf_counter(), time.process_time()
        _, (prediction,), _ = predict_files(workspace, ref, [track])
        colds.append(time.perf_counter() - started)
        cold_cpus.append(time.process_time() - cpu)
        started = time.perf_counter()
        predict_files(workspace, ref, [track])
        warms.append(time.perf_counter() - started)

    # The same track with no grid stored: predict_files detects one in the same run.
    undetected = long_folder / "five_minutes_no_grid.wav"
    soundfile.write(undetected, np.concatenate([audio, np.zeros(1, dtype=np.float32)]), SR)  # its own clip
    import_folder(workspace, undetected)
    detected = []
    for _ in range(3):
        workspace.cache.clear()
        started = time.perf_counter()
        _, (found,), _ = predict_files(workspace, ref, [undetected])
        detected.append(time.perf_counter() - started)
    assert found.grid is not None, "no grid was detected"
    detect = statistics.median(detected)

    from engine.inference import _window_starts

    from threadpoolctl import threadpool_limits

    starts, _ = _window_starts(duration, WINDOW_S, BeatGrid.constant(TRACK_BPM, 0.0))  # predict_files' starts
    for _ in range(3):
        # One BLAS thread, whatever an earlier call left set: the loop is single-threaded, and two
        # BLAS threads on a shared 2-core machine make it up to four times slower.
        with threadpool_limits(limits=1):
            started, cpu = time.perf_counter(), time.process_time()
            naive_probabilities = []
            for start in starts:
                y, _ = librosa.load(track, sr=SR, offset=float(start), duration=WINDOW_S)
                naive_probabilities.append(naive_model.predict_proba(naive_vector(y)[None])[0])
            naives.append(time.perf_counter() - started)
            naive_cpus.append(time.process_time() - cpu)
    cold, warm, naive = statistics.median(colds), statistics.median(warms), statistics.median(naives)

    ours_right = np.mean([_section_at(prediction.sections, t + 1.0) == _section_at(truth, t + 1.0) for t in starts]) \
        if prediction.sections else 0.0
    naive_right = np.mean([naive_labels[int(np.argmax(p))] == _section_at(truth, t + WINDOW_S / 2)
                           for p, t in zip(naive_probabilities, starts)])
    print(f"{duration:.0f} s track at {TRACK_BPM:g} bpm, {len(starts)} windows of {WINDOW_S:g} s (one per bar); "
          f"section model trained on {data.sizes()['train']} windows of {len(TRAINING_TRACKS)} tracks")
    print("medians of 3 runs:")
    print(f"{'track through section model':<34} ours {cold:>8.2f} s cold  naive {naive:>7.2f} s   "
          f"ratio {naive / cold:>5.1f}x  (target >= 5x)")
    cold_cpu, naive_cpu = statistics.median(cold_cpus), statistics.median(naive_cpus)
    print(f"{'  same, CPU time (all threads)':<34} ours {cold_cpu:>8.2f} s cold  naive {naive_cpu:>7.2f} s   "
          f"ratio {naive_cpu / cold_cpu:>5.1f}x  (less sensitive to other load than wall time)")
    print(f"{'  same, warm cache':<34} ours {warm:>8.2f} s       naive {naive:>7.2f} s   ratio {naive / warm:>5.1f}x")
    print(f"{'  same, grid detected in the run':<34} ours {detect:>8.2f} s cold  naive {naive:>7.2f} s   "
          f"ratio {naive / detect:>5.1f}x  (the naive loop is given the grid)")
    print(f"  sanity: {len(prediction.sections or [])} sections found ({len(truth)} true); bars labelled right: "
          f"ours {ours_right:.0%} (smoothed sections), naive {naive_right:.0%} (raw windows)")


# -- reeval ------------------------------------------------------------------------------------

def bench_reeval(scratch: Path) -> None:
    folder = curated_thousand(scratch, "reeval_1000")
    workspace = Workspace.open(scratch / "reeval_ws")
    import_folder(workspace, folder, curated=True, taxonomy="drums")
    extraction = extract_workspace(workspace, FeatureSpec.parse("dsp"), taxonomy="drums", labelled_only=True)
    data = training_data(workspace, FeatureSpec.parse("dsp"), taxonomy="drums")
    train_version(workspace, "drums_reeval", "logreg", data, C=1.0)
    ref = train_version(workspace, "drums_reeval", "logreg", data, C=0.1)
    timings, result = [], None
    for _ in range(4):
        started = time.perf_counter()
        result = evaluate_on_dataset(workspace, ref, folder)
        timings.append(time.perf_counter() - started)
    metrics = result.evaluation.to_dict()
    print(f"re-evaluate {ref} on {metrics['n']} curated clips (dsp extracted once: {extraction.extracted} in "
          f"{extraction.seconds:.1f} s): first {timings[0]:.2f} s, then median {statistics.median(timings[1:]):.2f} s "
          f"(target < 2 s); accuracy {metrics['accuracy']:.3f} (the clips it was trained on)")
    from engine.datasets.source import curated_items

    probes = []
    for _ in range(3):
        started = time.perf_counter()
        curated_items(folder, None, workspace)
        probes.append(time.perf_counter() - started)
    print(f"  of which identifying the folder's files (engine.datasets.source.curated_items): "
          f"median {statistics.median(probes):.2f} s")


BENCHES = {"training": bench_training, "finetune": bench_finetune, "latency": bench_latency, "track": bench_track,
           "reeval": bench_reeval}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(BENCHES)
    unknown = [name for name in chosen if name not in BENCHES]
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    with tempfile.TemporaryDirectory(prefix="workbench-bench-models-") as scratch:
        for name in chosen:
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(f"== {name}  (load average {load} on {os.cpu_count()} CPUs)")
            BENCHES[name](Path(scratch))
