"""Models in and out of the workspace as ONNX.

- `export_version`: a version as ONNX (with its JSON sidecar), written only when the ONNX graph
  gives the same probabilities as the version's own model on its held-out split (the test split
  training kept back, reproduced as the model gates do) within PARITY_TOLERANCE.
- `import_version`: an ONNX model trained elsewhere plus a sidecar JSON naming its classes,
  taxonomy and features becomes the next version of a name (kind "onnx"), once it has run on a few
  clips of the workspace and given one valid probability row per clip over exactly its classes.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import InputError, NotFound
from engine.features.extract import Target, extract_features, load_features
from engine.features.spec import FeatureSpec
from engine.io import read_json_file, read_small_file
from engine.models.artifacts import MAX_FILE_BYTES
from engine.models.registry import ModelVersion, export, register
from engine.store.clips import all_clips

PARITY_TOLERANCE = 1e-4  # largest |p_onnx - p_native| allowed on any held-out row and class
TRIAL_CLIPS = 4  # clips an imported model is tried on before it is registered
PROBABILITY_SLACK = 1e-4  # how far a probability may stray outside [0, 1], or a row's sum from 1


class ParityFailed(InputError):
    """The exported graph's probabilities differ from the version's own beyond the tolerance."""


@dataclass(frozen=True)
class Parity:
    """How the ONNX graph's probabilities compare with the version's own on its held-out rows."""

    split: str  # "test split" or "validation split"
    rows: int
    max_abs_difference: float
    same_top_class: float  # the fraction of rows where both give the same most likely class
    tolerance: float = PARITY_TOLERANCE

    @property
    def ok(self) -> bool:
        return self.max_abs_difference <= self.tolerance

    def describe(self) -> str:
        return (f"parity on the {self.split} ({self.rows} rows): max |Δp| {self.max_abs_difference:.2g} "
                f"(tolerance {self.tolerance:g}), same top class on {self.same_top_class:.1%}")

    def to_dict(self) -> dict:
        return {"split": self.split, "rows": self.rows, "max_abs_difference": self.max_abs_difference,
                "same_top_class": self.same_top_class, "tolerance": self.tolerance, "ok": self.ok}


def compare(native: np.ndarray, exported: np.ndarray, split: str) -> Parity:
    """Parity of two (rows, classes) probability arrays."""
    if native.shape != exported.shape:
        raise ParityFailed(f"the ONNX graph gives {exported.shape} probabilities where the model gives {native.shape}")
    difference = float(np.max(np.abs(native - exported))) if native.size else 0.0
    same = float(np.mean(native.argmax(axis=1) == exported.argmax(axis=1))) if len(native) else 1.0
    return Parity(split, len(native), difference, same)


@dataclass
class ExportResult:
    path: Path
    parity: Parity | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": str(self.path), "sidecar": str(self.path.with_suffix(".json")),
                "parity": self.parity.to_dict() if self.parity else None, "notes": self.notes}


def export_version(workspace, ref: str, out: Path, fmt: str = "onnx", *, workers: int | None = None,
                   reporter=None, cancel=None) -> ExportResult:
    """Export a version; refused (nothing written) when its ONNX graph misses parity on the held-out split."""
    from engine.gates.model import ModelContext
    from engine.models.external import OnnxClassifier

    result = ExportResult(Path(out), None)

    def check(version: ModelVersion, data: bytes) -> None:
        context = ModelContext(workspace, version, workers=workers, reporter=reporter, cancel=cancel)
        try:
            rows = context.rows
        except (InputError, NotFound) as error:  # no training job (an imported model, a deleted job) or labels changed
            result.notes.append(f"parity not measured: {error}")
            return
        graph = OnnxClassifier.from_bytes(data, len(version.label_set))
        exported = graph.graph_outputs(rows.features) if len(rows.y) else np.zeros_like(rows.probabilities)
        result.parity = compare(rows.probabilities, exported, rows.source)
        if not result.parity.ok:
            raise ParityFailed(f"{version.ref}: the ONNX export misses parity, nothing written: "
                               f"{result.parity.describe()}")

    result.path = export(workspace, ref, out, fmt, check=check)
    return result


# -- import ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sidecar:
    """What the JSON next to an imported ONNX model says about it."""

    path: Path
    classes: list[str]
    taxonomy: str | None
    spec: FeatureSpec
    window_s: float | None


def read_sidecar(path: Path) -> Sidecar:
    """The sidecar at `path`: {"classes": [...], "taxonomy": "drums", "features": "dsp" or
    {"kind", "model", "params"}, optional "window_s"}; InputError naming the file and key otherwise."""
    document = read_json_file(path, "model sidecar")
    if not isinstance(document, dict):
        raise InputError(f"{path}: a model sidecar is a JSON object")
    classes = document.get("classes")
    if (not isinstance(classes, list) or len(classes) < 2
            or not all(isinstance(c, str) and c.strip() for c in classes)):
        raise InputError(f"{path}: 'classes' must list at least 2 class names (strings), in the order of the "
                         "model's output columns")
    if len(set(classes)) != len(classes):
        raise InputError(f"{path}: 'classes' names a class twice")
    taxonomy = document.get("taxonomy", document.get("task"))
    if taxonomy is not None and not isinstance(taxonomy, str):
        raise InputError(f"{path}: 'taxonomy' must be a taxonomy name (a string)")
    features = document.get("features")
    if isinstance(features, str):
        spec = FeatureSpec.parse(features)
    elif isinstance(features, dict) and isinstance(features.get("kind"), str):
        params = features.get("params") or {}
        if not isinstance(params, dict):
            raise InputError(f"{path}: 'features.params' must be an object")
        model = features.get("model")
        spec = FeatureSpec.parse(f"{features['kind']}:{model}" if model else features["kind"], params)
    else:
        raise InputError(f"{path}: 'features' must name the feature set the model reads: \"dsp\", \"mel\", "
                         "\"onnx:NAME\", \"hybrid:NAME\" or {\"kind\": …, \"params\": {…}}")
    window_s = document.get("window_s")
    if window_s is not None and (isinstance(window_s, bool) or not isinstance(window_s, (int, float))
                                 or not math.isfinite(window_s) or window_s <= 0):
        raise InputError(f"{path}: 'window_s' must be a positive number of seconds")
    return Sidecar(path, list(classes), taxonomy, spec, None if window_s is None else float(window_s))


@dataclass
class Trial:
    """What an imported model did on a few clips of the workspace."""

    clips: list[str]
    shape: tuple[int, int]
    row_sums: tuple[float, float]  # the smallest and largest

    def to_dict(self) -> dict:
        return {"clips": self.clips, "shape": list(self.shape), "row_sums": list(self.row_sums)}


def _refuse(path: Path, reason: str) -> InputError:
    return InputError(f"{path}: not imported: {reason}")


def try_model(workspace, model, sidecar: Sidecar, onnx_path: Path, *, workers=None) -> Trial:
    """Run the model on the first TRIAL_CLIPS clips (by path): it must run, give one row per clip
    with one column per class, and each row must be probabilities (in [0, 1], summing to 1)."""
    with workspace.db.transaction(read_only=True) as con:
        clips = all_clips(con)[:TRIAL_CLIPS]
    if not clips:
        raise _refuse(onnx_path, "the workspace has no clips to try it on; import some audio first")
    try:
        extractors = sidecar.spec.extractors(workspace.embeddings_dir)
    except InputError as error:
        raise _refuse(onnx_path, f"{sidecar.path.name}: its features cannot be made here ({error})") from None
    expected_rank = 2 if sidecar.spec.kind == "mel" else 1
    if model.rank_ != expected_rank:
        raise _refuse(onnx_path, f"its input has rank {model.rank_ + 1}, but {sidecar.spec} features are "
                                 f"{'patches (batch, bands, frames)' if expected_rank == 2 else 'vectors (batch, n)'}")
    targets = [Target(c.clip_id, c.path, c.size_bytes) for c in clips]
    report = extract_features(workspace.cache, targets, sidecar.spec, extractors, workers=workers)
    features, kept = load_features(workspace.cache, targets, extractors)
    if not kept:
        reasons = "; ".join(str(r) for r in report.rejections) or "no features"
        raise _refuse(onnx_path, f"no trial clip could be featurised ({reasons})")
    names = [Path(clips[i].path).name for i in kept]
    try:
        probabilities = model.graph_outputs(features)
    except Exception as error:  # ONNX Runtime's own exception types: wrong width, bad graph at run time
        raise _refuse(onnx_path, f"it fails on {len(kept)} {sidecar.spec} feature rows of width "
                                 f"{features.shape[1:]} ({error})") from None
    wanted = (len(kept), len(sidecar.classes))
    if probabilities.shape != wanted:
        raise _refuse(onnx_path, f"on {len(kept)} clips it gives an output of shape {probabilities.shape}, "
                                 f"not {wanted}: one row per clip, one column per class of {sidecar.path.name}")
    if not np.isfinite(probabilities).all():
        raise _refuse(onnx_path, "it gives values that are not finite numbers")
    low, high = float(probabilities.min()), float(probabilities.max())
    sums = probabilities.sum(axis=1)
    if low < -PROBABILITY_SLACK or high > 1 + PROBABILITY_SLACK or np.abs(sums - 1).max() > PROBABILITY_SLACK:
        raise _refuse(onnx_path, f"its outputs are not probabilities (values {low:.3g} to {high:.3g}, rows summing "
                                 f"to {sums.min():.3g} to {sums.max():.3g}); end the graph with a softmax")
    return Trial(names, probabilities.shape, (float(sums.min()), float(sums.max())))


@dataclass
class ImportedModel:
    version: ModelVersion
    trial: Trial
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"model": self.version.ref, "classes": self.version.label_set, "task": self.version.task,
                "features": str(self.version.spec), "trial": self.trial.to_dict(), "notes": self.notes}


def _task(workspace, sidecar: Sidecar, taxonomy: str | None, notes: list[str], onnx_path: Path) -> str:
    """The version's task: the taxonomy asked for, else the sidecar's, else the workspace default; a
    taxonomy of the workspace must hold every class."""
    name = taxonomy or sidecar.taxonomy
    if name is None or name in workspace.taxonomies.names():
        tax = workspace.taxonomy(name)
        unknown = [c for c in sidecar.classes if tax.resolve(c) != c]
        if unknown:
            raise _refuse(onnx_path, f"classes {', '.join(unknown)} of {sidecar.path.name} are not labels of "
                                     f"taxonomy {tax.name} ({', '.join(tax.names)})")
        return tax.name
    notes.append(f"taxonomy {name!r} is not one of this workspace's; its classes are read as written")
    return name


def import_version(workspace, onnx_path: Path, *, name: str, sidecar_path: Path | None = None,
                   taxonomy: str | None = None, workers: int | None = None) -> ImportedModel:
    """Register an external ONNX model as the next version of `name` after trying it on a few clips."""
    from engine.models.external import OnnxClassifier
    from engine.models.kinds import save_model
    from engine.models.orphans import write_registration
    from engine.models.reconcile import reconcile_models
    from engine.taxonomy import check_name

    check_name(name, "model name")
    onnx_path = Path(onnx_path).expanduser().resolve()
    sidecar = read_sidecar(Path(sidecar_path).expanduser().resolve() if sidecar_path else onnx_path.with_suffix(".json"))
    data = read_small_file(onnx_path, "an ONNX model", MAX_FILE_BYTES)
    try:
        model = OnnxClassifier.from_bytes(data, len(sidecar.classes))
    except ValueError as error:
        raise _refuse(onnx_path, str(error)) from None
    except Exception as error:  # ONNX Runtime's own exception types for bytes that are no graph it runs
        raise _refuse(onnx_path, f"ONNX Runtime cannot load it ({str(error).strip().splitlines()[0]})") from None
    notes: list[str] = []
    task = _task(workspace, sidecar, taxonomy, notes, onnx_path)
    trial = try_model(workspace, model, sidecar, onnx_path, workers=workers)
    artifact = workspace.runs_dir / f"import-{uuid.uuid4().hex[:12]}" / "model"
    artifact.mkdir(parents=True)
    save_model(model, artifact)
    registration = dict(name=name, task=task, kind=model.kind, feature_spec=sidecar.spec, classes=sidecar.classes,
                        label_counts={}, hyperparams={}, metrics={}, dataset_fingerprint="", job_id=None,
                        meta={"imported_from": str(onnx_path), "sidecar": str(sidecar.path),
                              "window_s": sidecar.window_s, "trial": trial.to_dict(), "notes": notes})
    write_registration(artifact, {**registration, "feature_spec": sidecar.spec.to_dict()})
    reconcile_models(workspace)
    version = register(workspace, artifact_dir=artifact, **registration)
    return ImportedModel(version, trial, notes)
