"""Model readiness gates: scores with confidence intervals, per-class recall, calibration, open-set
rejection, streaming section boundaries and multi-microphone alignment.

`ModelContext` is what every check reads. It computes lazily, once per run: the version's
predictions on its test split (reproduced from the training job's stored parameters and seed, so
it is the split training held out) or on a labelled folder (`--test DIR`), and its scores on a
folder of sounds outside its label set (`--ood DIR`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from engine.concepts import Split
from engine.errors import InputError
from engine.evaluation.metrics import Evaluation, evaluate
from engine.features.extract import Target
from engine.gates.core import GateResult, gate
from engine.models.registry import ModelVersion
from engine.store.labels import labelled_segments

CI_RESAMPLES = 1000


@dataclass
class EvaluationRows:
    """The labelled rows a model is judged on: features, true class indices, probabilities."""

    source: str  # "test split", "validation split" or the folder
    features: np.ndarray
    y: np.ndarray
    probabilities: np.ndarray
    unknown_features: np.ndarray | None = None  # rows labelled with classes the model does not know
    notes: list[str] = field(default_factory=list)


class ModelContext:
    """What the model gates of one version share, computed when first asked for."""

    def __init__(self, workspace, version: ModelVersion, *, test_folder: Path | None = None,
                 ood_folder: Path | None = None, reporter=None, cancel=None, workers: int | None = None) -> None:
        self.workspace = workspace
        self.version = version
        self.test_folder = Path(test_folder).expanduser().resolve() if test_folder else None
        self.ood_folder = Path(ood_folder).expanduser().resolve() if ood_folder else None
        self.reporter = reporter
        self.cancel = cancel
        self.workers = workers
        self._evaluations: dict[int, Evaluation] = {}

    @property
    def classes(self) -> list[str]:
        return self.version.label_set

    @property
    def seed(self) -> int:
        return int(self.version.hyperparams.get("seed", 0))

    @cached_property
    def model(self):
        from engine.inference import LoadedModel
        from engine.models.registry import load_classifier

        return LoadedModel(self.version, load_classifier(self.version),
                           self.version.spec.extractors(self.workspace.embeddings_dir))

    @cached_property
    def training(self):
        """The version's training data, reproduced from its job's parameters (same labels, seed and
        split method give the same splits); a note says when the data changed since."""
        from engine.jobs.log import get_job
        from engine.training.data import training_data
        from engine.training.run import TrainRequest

        if not self.version.job_id:
            raise InputError(f"{self.version.ref} has no training job to reproduce its test split from; "
                             "pass a labelled folder (--test DIR)")
        request = TrainRequest(**get_job(self.workspace, self.version.job_id).params)
        data = training_data(  # the features and window the version was trained with, as registered
            self.workspace, self.version.spec if (request.features or not request.dataset) else None,
            dataset=Path(request.dataset) if request.dataset else None, taxonomy=request.taxonomy,
            window_s=self.version.meta.get("window_s"), min_class_samples=request.min_class_samples,
            min_confidence=request.min_confidence, split_by=request.split_by, val=request.val, test=request.test,
            seed=request.seed, augment=request.augment, workers=self.workers, reporter=self.reporter,
            cancel=self.cancel)
        if data.classes != self.classes:
            raise InputError(f"the labels changed since {self.version.ref} was trained (classes now "
                             f"{', '.join(data.classes)}); pass a labelled folder (--test DIR)")
        if data.fingerprint != self.version.dataset_fingerprint:
            data.notes.append("the training data changed since this version was trained; its splits are "
                              "reproduced from the current labels")
        return data

    @cached_property
    def rows(self) -> EvaluationRows:
        """The rows to judge the model on: the labelled folder if given, else the held-out test split
        (the validation split when training had no test split)."""
        if self.test_folder is not None:
            return self._folder_rows()
        data = self.training
        source = "test split"
        features, y = data.part(Split.TEST)
        if not len(y):
            features, y, source = *data.part(Split.VAL), "validation split"
        if not len(y):
            raise InputError(f"{self.version.ref} has neither a test nor a validation split; pass --test DIR")
        return EvaluationRows(source, features, y, self.model.classifier.predict_proba(features),
                              notes=list(data.notes))

    def _folder_rows(self) -> EvaluationRows:
        from engine.datasets.source import open_dataset
        from engine.training.evaluate import known_rows

        data = open_dataset(self.test_folder, self.workspace, spec=self.version.spec,
                            taxonomy=self.version.task_taxonomy(self.workspace), workers=self.workers,
                            reporter=self.reporter, cancel=self.cancel)
        known, y, notes = known_rows(self.version, data)
        features = data.features[known]
        return EvaluationRows(str(self.test_folder), features, y, self.model.classifier.predict_proba(features),
                              unknown_features=data.features[~known] if (~known).any() else None, notes=notes)

    def evaluation(self, resamples: int = CI_RESAMPLES) -> Evaluation:
        """Accuracy, macro-F1 (with bootstrap CIs), per-class metrics, confusion and ECE. The version's
        stored test metrics are used when they answer the question (same resamples, no --test)."""
        stored = self.version.metrics.get("test")
        if self.test_folder is None and stored and stored.get("bootstrap_resamples") == resamples:
            return Evaluation.from_dict(stored)
        if resamples not in self._evaluations:
            rows = self.rows
            self._evaluations[resamples] = evaluate(rows.y, rows.probabilities, self.classes, resamples=resamples,
                                                    seed=self.seed)
        return self._evaluations[resamples]

    @property
    def evaluated_on(self) -> str:
        stored = self.version.metrics.get("test")
        if self.test_folder is None and stored:
            return "the stored test metrics"
        return self.rows.source

    @cached_property
    def ood_features(self) -> np.ndarray | None:
        """Features of every audio file under the OOD folder (their folders' names are ignored)."""
        if self.ood_folder is None:
            return None
        from engine.library.clips import identify_files
        from engine.library.scan import find_audio_files

        files, _ = find_audio_files(self.ood_folder)
        if not files:
            raise InputError(f"{self.ood_folder}: no audio files in the OOD folder")
        probed, _ = identify_files(self.workspace, [str(f) for f in files], workers=self.workers,
                                   reporter=self.reporter, cancel=self.cancel)
        targets = [Target(info.clip_id, path, info.size_bytes) for path, info in sorted(probed.items())]
        features, kept, _ = self.model.features(self.workspace, targets, workers=self.workers,
                                                reporter=self.reporter, cancel=self.cancel)
        if not kept:
            raise InputError(f"{self.ood_folder}: none of its files could be featurised")
        return features

    @property
    def unknown_features(self) -> np.ndarray | None:
        """Sounds outside the label set: the OOD folder, and rows of --test labelled with other classes."""
        parts = [f for f in (self.ood_features, self.rows.unknown_features if self.test_folder else None)
                 if f is not None]
        return np.concatenate(parts) if parts else None

    @cached_property
    def centroids(self):
        from engine.evaluation.openset import Centroids

        features, y = self.training.part(Split.TRAIN)
        return Centroids.fit(features, y, len(self.classes))

    def store_open_set(self, record: dict) -> None:
        from engine.models.registry import record_open_set

        self.version = record_open_set(self.workspace, self.version, record)


# -- scores ------------------------------------------------------------------------------------

def _confusion_item(evaluation: Evaluation) -> dict:
    return {"confusion": [list(map(int, row)) for row in evaluation.confusion], "classes": list(evaluation.classes)}


@gate("model.accuracy", "Accuracy (95% CI lower bound)", min_lower=0.80, resamples=CI_RESAMPLES)
def accuracy_gate(context: ModelContext, settings: dict) -> GateResult:
    """The lower end of the 95% percentile-bootstrap interval of accuracy (1,000 resamples) must be
    at least `min_lower` (0.80): a model that is good only by luck of a small test split fails.
    items[0] always holds the confusion matrix: {"confusion": rows = true, columns = predicted,
    "classes": their names}."""
    evaluation = context.evaluation(int(settings["resamples"]))
    low, high = evaluation.accuracy_ci
    return GateResult("model.accuracy", "Accuracy (95% CI lower bound)", low >= settings["min_lower"], round(low, 4),
                      f">= {settings['min_lower']}",
                      detail=f"accuracy {evaluation.accuracy:.3f} [{low:.3f}, {high:.3f}] on {evaluation.n} "
                             f"examples ({context.evaluated_on})",
                      items=[_confusion_item(evaluation)])


@gate("model.macro_f1", "Macro-F1 (95% CI lower bound)", min_lower=0.75, resamples=CI_RESAMPLES)
def macro_f1_gate(context: ModelContext, settings: dict) -> GateResult:
    """The lower end of the 95% bootstrap interval of macro-F1 (1,000 resamples) must be at least
    `min_lower` (0.75); macro-F1 weighs every class equally, so a neglected small class shows."""
    evaluation = context.evaluation(int(settings["resamples"]))
    low, high = evaluation.macro_f1_ci
    return GateResult("model.macro_f1", "Macro-F1 (95% CI lower bound)", low >= settings["min_lower"], round(low, 4),
                      f">= {settings['min_lower']}",
                      detail=f"macro-F1 {evaluation.macro_f1:.3f} [{low:.3f}, {high:.3f}] ({context.evaluated_on})")


@gate("model.class_recall", "Per-class recall floor", floor=0.60)
def class_recall_gate(context: ModelContext, settings: dict) -> GateResult:
    """Every class with test examples must be recalled at least `floor` (0.60) of the time; items are
    the failing classes with their recall, support and the class they are most often taken for."""
    evaluation = context.evaluation()
    confusion = np.asarray(evaluation.confusion)
    failing = []
    for index, metrics in enumerate(evaluation.per_class):
        if metrics.support and metrics.recall < settings["floor"]:
            row = confusion[index].copy()
            row[index] = -1
            failing.append({"class": metrics.label, "recall": round(metrics.recall, 4), "support": metrics.support,
                            "taken_for": evaluation.classes[int(row.argmax())]})
    recalls = [m.recall for m in evaluation.per_class if m.support]
    lowest = min(recalls) if recalls else None
    return GateResult("model.class_recall", "Per-class recall floor", not failing,
                      None if lowest is None else round(lowest, 4), f">= {settings['floor']} for every class",
                      detail=(f"{len(failing)} class(es) below the floor: " + ", ".join(f["class"] for f in failing))
                      if failing else f"lowest recall {lowest:.3f}", items=failing)


@gate("model.calibration", "Expected calibration error", max_ece=0.10)
def calibration_gate(context: ModelContext, settings: dict) -> GateResult:
    """Expected calibration error (15 equal-width confidence bins) at most `max_ece` (0.10): a
    confidence of 0.9 should be right about 9 times in 10, or thresholds on it mislead."""
    evaluation = context.evaluation()
    return GateResult("model.calibration", "Expected calibration error", evaluation.ece <= settings["max_ece"],
                      round(evaluation.ece, 4), f"<= {settings['max_ece']}",
                      detail=f"ECE over 15 bins on {evaluation.n} examples ({context.evaluated_on})")


# -- open set ----------------------------------------------------------------------------------

@gate("model.open_set", "Open-set rejection", min_auroc=0.90, max_fpr=0.10, tpr=0.95, method="max_softmax",
      store_threshold=True)
def open_set_gate(context: ModelContext, settings: dict) -> GateResult:
    """Sounds outside the label set (--ood DIR, and --test rows of other classes) must be told from
    the model's own test examples: AUROC >= `min_auroc` (0.90) and, at the threshold that keeps
    `tpr` (95%) of known examples, at most `max_fpr` (0.10) of unknown ones accepted. Scored by
    `method`: max_softmax, energy (logsumexp of logits) or distance (to the nearest class centroid
    of the standardised training features). With `store_threshold` the threshold is stored with the
    version (reject_threshold, meta["open_set"]) and `predict` answers "unknown" below it.
    Skipped without an unknown-class set. items = every method's AUROC and FPR, for comparison."""
    from engine.evaluation.openset import METHODS, known_scores, separate

    gate_id, title = "model.open_set", "Open-set rejection"
    if settings["method"] not in METHODS:
        raise InputError(f"[model.open_set] method must be one of {', '.join(METHODS)}, not {settings['method']!r}")
    unknown = context.unknown_features
    if unknown is None:
        return GateResult(gate_id, title, None, None, f"AUROC >= {settings['min_auroc']}",
                          detail="no unknown-class set (give --ood DIR, or --test with classes the model lacks)")
    known = context.rows.features
    tpr = float(settings["tpr"])
    results, compared = {}, []
    for method in METHODS:
        try:
            centroids = context.centroids if method == "distance" else None
            classifier = context.model.classifier
            results[method] = separate(method, known_scores(method, classifier, known, centroids=centroids),
                                       known_scores(method, classifier, unknown, centroids=centroids), tpr)
            compared.append(results[method].to_dict())
        except InputError as error:
            if method == settings["method"]:
                raise
            compared.append({"method": method, "skipped": str(error)})
    chosen = results[settings["method"]]
    passed = chosen.auroc >= settings["min_auroc"] and chosen.fpr <= settings["max_fpr"]
    if settings["store_threshold"]:
        record = {**chosen.to_dict(), "unknown_set": str(context.ood_folder or context.test_folder)}
        if settings["method"] == "distance":
            record["centroids"] = context.centroids.to_dict()
        context.store_open_set(record)
    return GateResult(gate_id, title, passed, round(chosen.auroc, 4),
                      f"AUROC >= {settings['min_auroc']} and FPR@{tpr:.0%} TPR <= {settings['max_fpr']}",
                      detail=f"{chosen.method}: AUROC {chosen.auroc:.3f}, FPR {chosen.fpr:.3f} at {tpr:.0%} TPR, "
                             f"reject below {chosen.threshold:.4g} ({chosen.n_known} known, {chosen.n_unknown} unknown)"
                             + ("; threshold stored" if settings["store_threshold"] else ""),
                      items=compared)


# -- streaming boundaries ----------------------------------------------------------------------

@gate("model.boundaries", "Streaming section boundaries", min_recall=0.95, tolerance_bars=1.0, tolerance_s=2.0,
      window_s=0.0, hop_bars=1.0, tracks="test")
def boundaries_gate(context: ModelContext, settings: dict) -> GateResult:
    """For a section model: slide it along labelled tracks as `predict` does (windows of `window_s`
    seconds, 0 = the model's own, every `hop_bars` bars of the track's grid), and find each labelled
    change of section among the predicted ones within `tolerance_bars` (1 bar; `tolerance_s`, 2 s,
    on a track without a grid). Macro recall over the labels the boundaries open must be at least
    `min_recall` (0.95). `tracks` = "test" (the tracks of the held-out split) or "all" (every track
    labelled in the model's taxonomy). items = the missed boundaries. Skipped for one-shot models."""
    from engine.evaluation.boundaries import labelled_tracks, score_boundaries
    from engine.inference import track_sections

    gate_id, title = "model.boundaries", "Streaming section boundaries"
    threshold = f"macro recall >= {settings['min_recall']}"
    if not context.version.meta.get("window_s"):
        return GateResult(gate_id, title, None, None, threshold, detail="a one-shot model (not trained on windows)")
    taxonomy = context.version.task_taxonomy(context.workspace)
    if taxonomy is None:
        return GateResult(gate_id, title, None, None, threshold,
                          detail=f"task {context.version.task!r} is not a taxonomy of the workspace: no labelled tracks")
    if settings["tracks"] not in ("test", "all"):
        raise InputError(f"[model.boundaries] tracks must be 'test' or 'all', not {settings['tracks']!r}")
    clip_ids = None
    if settings["tracks"] == "test":
        data = context.training
        held_out = Split.TEST if (data.splits == str(Split.TEST)).any() else Split.VAL
        clip_ids = {t.clip_id for t, s in zip(data.targets, data.splits) if s == str(held_out)}
    tracks = labelled_tracks(context.workspace, taxonomy, clip_ids)
    if not tracks:
        return GateResult(gate_id, title, None, None, threshold, detail=f"no {settings['tracks']} tracks with "
                                                                        "two or more labelled sections")
    predicted = []
    for track in tracks:
        clip = track.clip
        timeline = track_sections(context.workspace, context.model, clip.clip_id, clip.path, clip.size_bytes,
                                  clip.duration_s, window_s=float(settings["window_s"]) or None,
                                  hop_bars=float(settings["hop_bars"]), workers=context.workers, cancel=context.cancel)
        predicted.append((track, timeline.sections))
    score = score_boundaries(predicted, tolerance_bars=float(settings["tolerance_bars"]),
                             tolerance_s=float(settings["tolerance_s"]))
    if not score.boundaries:
        return GateResult(gate_id, title, None, None, threshold, detail="the labelled tracks have no section changes")
    return GateResult(gate_id, title, score.macro_recall >= settings["min_recall"], round(score.macro_recall, 4),
                      threshold, detail=f"{score.boundaries - len(score.missed)}/{score.boundaries} boundaries found on "
                                        f"{len(tracks)} track(s); per label: "
                                        + ", ".join(f"{k} {v:.2f}" for k, v in score.per_label.items()),
                      items=score.missed)


# -- multi-mic alignment -----------------------------------------------------------------------

def _audio_in_set(context: ModelContext) -> list[tuple[str, int]]:
    """(path, channels) of the clips the model is judged on: the --test folder, else the clips labelled
    in its taxonomy, else its curated training folder."""
    import soundfile

    from engine.library.clips import clips_by_ids
    from engine.library.scan import find_audio_files

    taxonomy = context.version.task_taxonomy(context.workspace)
    if context.test_folder is None and taxonomy is not None:
        with context.workspace.db.transaction(read_only=True) as con:
            clips = clips_by_ids(con, sorted({item.clip_id for item in labelled_segments(con, taxonomy)}))
        return sorted({(clip.path, int(clip.channels)) for clip in clips.values()})
    folder = context.test_folder or (Path(context.version.meta["dataset"]) if context.version.meta.get("dataset") else None)
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in find_audio_files(folder)[0]:
        try:
            found.append((str(path), soundfile.info(str(path)).channels))
        except (RuntimeError, soundfile.LibsndfileError):
            continue
    return found


@gate("model.alignment", "Multi-mic alignment", tolerance_ms=1.0, max_lag_ms=50.0)
def alignment_gate(context: ModelContext, settings: dict) -> GateResult:
    """For every multi-channel clip in the set, each channel's lag behind the first (FFT
    cross-correlation, searched within ±`max_lag_ms`, 50 ms) must be within `tolerance_ms` (1 ms):
    a model trained on aligned takes hears a smeared sound from misaligned ones. A silent channel
    (a dead microphone) has no lag: it is reported as "silent", not as misaligned. items = the
    misaligned clips and those with a silent channel, with their lags. Skipped when the set has no
    multi-channel clip, or no channel with a lag to measure."""
    from engine.audio.alignment import SILENCE_DB, channel_lags

    gate_id, title = "model.alignment", "Multi-mic alignment"
    threshold = f"|lag| <= {settings['tolerance_ms']} ms"
    multi = [path for path, channels in _audio_in_set(context) if channels > 1]
    if not multi:
        return GateResult(gate_id, title, None, None, threshold, detail="no multi-channel clips in the set")
    flagged, misaligned, silent, measured = [], 0, 0, []
    for path in multi:
        _, lags = channel_lags(path, float(settings["max_lag_ms"]) / 1000)
        lags_ms = ["silent" if lag is None else round(lag * 1000, 3) for lag in lags]
        found = [abs(lag) for lag in lags_ms if lag != "silent"]
        measured += found
        late = any(lag > settings["tolerance_ms"] for lag in found)
        dead = len(found) < len(lags)  # a channel, or channel 0, is silent
        misaligned += late
        silent += dead
        if late or dead:
            flagged.append({"path": path, "lags_ms": lags_ms})
    quiet = f"{silent} with a silent channel (peak below {SILENCE_DB:g} dBFS)"
    if not measured:
        return GateResult(gate_id, title, None, None, threshold, detail=f"no lag to measure: {quiet}", items=flagged)
    worst = max(measured)
    return GateResult(gate_id, title, not misaligned, round(worst, 3), threshold,
                      detail=f"{misaligned} of {len(multi)} multi-channel clips misaligned"
                             f"{f', {quiet}' if silent else ''}; worst lag {worst:.3f} ms",
                      items=flagged)
