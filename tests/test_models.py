"""Every model kind honours the Classifier contract: learning, probabilities, artifacts, seeds, callbacks, ONNX."""

from __future__ import annotations

import copy

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.models.base import TrainingCallback
from engine.models.kinds import MODEL_KINDS, load_model, make_model, save_model

KINDS = ["logreg", "lgbm", "mlp", "cnn"]
ONNX_KINDS = ["logreg", "lgbm", "mlp", "cnn"]
# Small but enough to learn the synthetic data below; the torch kinds on CPU so seeds repeat exactly.
FAST = {
    "logreg": {},
    "lgbm": {"n_estimators": 60, "patience": 10},
    "mlp": {"epochs": 12, "hidden": 64, "lr": 3e-3, "device": "cpu"},
    "cnn": {"epochs": 6, "batch_size": 16, "lr": 3e-3, "device": "cpu"},
}
ARTIFACT_SUFFIXES = {".json", ".txt", ".safetensors"}  # JSON, LightGBM text, safetensors: never pickle


def blobs(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 20 dimensions around fixed centres, offset like real features."""
    centres = np.random.default_rng(0).normal(0.0, 3.0, (3, 20)) + np.linspace(-50, 500, 20)
    y = np.repeat(np.arange(3), per_class)
    return (centres[y] + np.random.default_rng(seed).normal(0.0, 1.0, (len(y), 20))).astype(np.float32), y


def patches(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 64, 96) dB patches: quiet noise plus a low band, a high band or a vertical stripe per class."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), per_class)
    X = rng.uniform(-80.0, -60.0, (len(y), 64, 96)).astype(np.float32)
    X[y == 0, 8:16, 10:60] = -10.0
    X[y == 1, 40:48, 10:60] = -10.0
    X[y == 2, :, 30:38] = -10.0
    return X, y


def dataset(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    make = patches if MODEL_KINDS[kind].input_rank == 2 else blobs
    return (*make(16, seed=1), *make(4, seed=2))


def quick(kind: str) -> dict:
    """FAST settings cut to two epochs or boosting rounds, for tests that need not learn much."""
    rounds = {key: 2 for key in ("epochs", "n_estimators") if key in MODEL_KINDS[kind].defaults}
    return {**FAST[kind], **rounds}


class Recorder(TrainingCallback):
    def __init__(self, stop: bool = False) -> None:
        self.calls: list[tuple] = []
        self.stop = stop

    def on_epoch_end(self, epoch, total_epochs, train_loss, val_loss, val_metric) -> None:
        self.calls.append((epoch, total_epochs, train_loss, val_loss, val_metric))

    def should_stop(self) -> bool:
        return self.stop


@pytest.fixture(scope="module")
def trained():
    """kind -> (model fitted with FAST settings, its data, its callback's calls), each fitted once."""
    cache = {}

    def get(kind: str):
        if kind not in cache:
            X, y, X_val, y_val = dataset(kind)
            recorder = Recorder()
            model = make_model(kind, **FAST[kind]).fit(X, y, X_val=X_val, y_val=y_val, callback=recorder)
            cache[kind] = model, X, y, recorder.calls
        return cache[kind]

    return get


@pytest.mark.parametrize("kind", KINDS)
def test_fit_learns_and_gives_probabilities(kind, trained):
    model, X, y, _ = trained(kind)
    probabilities = model.predict_proba(X)
    assert probabilities.shape == (len(X), 3)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert np.mean(model.predict(X) == y) > 0.9
    assert model.n_classes_ == 3


@pytest.mark.parametrize("kind", KINDS)
def test_callback_hears_finite_losses_in_order(kind, trained):
    _, _, _, calls = trained(kind)
    assert calls
    assert [call[0] for call in calls] == sorted({call[0] for call in calls})
    for epoch, total, train_loss, val_loss, val_metric in calls:
        assert 1 <= epoch <= total
        assert np.isfinite(train_loss) and np.isfinite(val_loss)
        assert 0.0 <= val_metric <= 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_saved_model_loads_with_the_same_probabilities_and_no_pickle(kind, trained, tmp_path):
    model, X, _, _ = trained(kind)
    save_model(model, tmp_path / "model")
    assert all(path.suffix in ARTIFACT_SUFFIXES for path in (tmp_path / "model").iterdir())
    assert json.loads((tmp_path / "model" / "model.json").read_text())["kind"] == kind

    loaded = load_model(tmp_path / "model")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_fits_the_same_model(kind):
    X, y, X_val, y_val = dataset(kind)
    first, second = (make_model(kind, **quick(kind)).fit(X, y, X_val=X_val, y_val=y_val) for _ in range(2))
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_hyperparameter_is_refused(kind):
    with pytest.raises(ValueError, match="not_a_setting"):
        make_model(kind, not_a_setting=1)


def test_unknown_kind_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="logreg, lgbm, mlp, cnn"):
        make_model("svm")


@pytest.mark.parametrize("kind", KINDS)
def test_classes_missing_from_the_labels_still_get_columns(kind):
    X, y, _, _ = dataset(kind)
    model = make_model(kind, **quick(kind)).fit(X, y, n_classes=5)
    probabilities = model.predict_proba(X)
    assert model.n_classes_ == 5 and probabilities.shape == (len(X), 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["lgbm", "mlp", "cnn"])
def test_should_stop_ends_training_early(kind):
    X, y, X_val, y_val = dataset(kind)
    recorder = Recorder(stop=True)
    model = make_model(kind, **FAST[kind]).fit(X, y, X_val=X_val, y_val=y_val, callback=recorder)
    requested = model.get_params().get("epochs") or model.get_params()["n_estimators"]
    assert 1 <= len(recorder.calls) and recorder.calls[-1][0] < requested
    assert model.predict_proba(X).shape == (len(X), 3)


@pytest.mark.parametrize("kind", ONNX_KINDS)
def test_onnx_export_matches_native_probabilities(kind, trained, tmp_path):
    import onnxruntime

    model, X, _, _ = trained(kind)
    model.export_onnx(tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    for rows in (X[:5], X):  # the batch size is free
        exported = session.run(["probabilities"], {"features": rows})[0]
        assert np.max(np.abs(exported - model.predict_proba(rows))) < 1e-4
    # a calibrated model's temperature is part of the graph
    calibrated = copy.copy(model)
    calibrated.temperature_ = 2.5
    calibrated.export_onnx(tmp_path / "calibrated.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "calibrated.onnx"), providers=["CPUExecutionProvider"])
    exported = session.run(["probabilities"], {"features": X})[0]
    assert np.max(np.abs(exported - calibrated.predict_proba(X))) < 1e-4
    assert np.max(np.abs(exported - model.predict_proba(X))) > 1e-3


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_asking_for_cuda_without_it_is_a_clear_error(kind):
    X, y, _, _ = dataset(kind)
    with pytest.raises(ValueError, match="CUDA"):
        make_model(kind, device="cuda").fit(X, y)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_auto_batch_size_on_the_cpu_is_the_kinds_default_and_is_saved_as_a_number(kind, tmp_path):
    X, y, _, _ = dataset(kind)
    model = make_model(kind, **{**quick(kind), "batch_size": "auto"}).fit(X, y)
    assert model.get_params()["batch_size"] == MODEL_KINDS[kind].cpu_batch_size
    save_model(model, tmp_path / "m")
    assert load_model(tmp_path / "m").get_params()["batch_size"] == model.get_params()["batch_size"]
    with pytest.raises(ValueError, match="batch_size"):
        make_model(kind, **{**quick(kind), "batch_size": "big"}).fit(X, y)


def test_training_reads_the_loss_once_per_epoch_not_once_per_step(monkeypatch):
    """The epoch's loss is summed where the network runs; reading it (a host sync on a GPU) happens per
    epoch. Counted: the engine's own reads (the optimizer's step counters live on the host anyway)."""
    import sys

    import torch

    X, y, X_val, y_val = dataset("mlp")
    reads = []
    original = torch.Tensor.item

    def counted(tensor):
        if "engine" in Path(sys._getframe(1).f_code.co_filename).parts:
            reads.append(tensor.shape)
        return original(tensor)

    monkeypatch.setattr(torch.Tensor, "item", counted)
    recorder = Recorder()
    make_model("mlp", **{**quick("mlp"), "epochs": 3, "batch_size": 4}).fit(X, y, X_val=X_val, y_val=y_val,
                                                                           callback=recorder)
    steps_per_epoch = -(-len(y) // 4)
    assert len(recorder.calls) == 3 and steps_per_epoch == 12
    assert len(reads) <= 3 * 3  # per epoch: the training loss, the validation loss and accuracy


def test_spec_augment_masks_and_shifts_with_the_floor_value():
    import torch

    from engine.models.cnn import FLOOR_DB, spec_augment

    patches = torch.full((8, 64, 96), -20.0)
    augmented = spec_augment(patches, torch.Generator().manual_seed(0))
    assert augmented.shape == patches.shape
    assert set(augmented.unique().tolist()) == {FLOOR_DB, -20.0}
    assert torch.equal(augmented, spec_augment(patches, torch.Generator().manual_seed(0)))


def test_kinds_import_without_torch_or_lightgbm():
    code = "import sys, engine.models.kinds; print(sorted({'torch', 'lightgbm', 'sklearn'} & set(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parents[1]).stdout
    assert output.strip() == "[]"
