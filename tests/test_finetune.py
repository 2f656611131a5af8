"""The "finetune" kind: the pretrained aiSFX network fine-tuned with a new head, on `wave` features.

Tiny but real: a few synthetic hits, one epoch, the last block trained. Needs the aiSFX weights
(`pip install --no-deps aisfx==0.1.2`, installed in CI); skipped when they are absent.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from engine.audio.decode import resample
from engine.audio.synth import DEMO_PACKS, synthesize_hit
from engine.embeddings import aisfx
from engine.errors import InputError
from engine.features.spec import FeatureSpec
from engine.models.artifacts import ModelFilesDamaged, file_hashes
from engine.models.base import TrainingCallback
from engine.models.finetune import FinetuneClassifier, mask_maps
from engine.models.kinds import load_model, make_model, save_model

pytestmark = pytest.mark.skipif(aisfx.installed_package_dir() is None,
                                reason="aisfx weights not installed (pip install --no-deps aisfx==0.1.2)")

SECONDS = 0.4
CLASSES = ("kick", "snare", "hihat_closed")
ONNX_TOLERANCE = 1e-4  # absolute, on probabilities: float32 kernels of onnxruntime vs torch


def hits(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Waveforms as the `wave` extractor gives them (44100 Hz, SECONDS long) and class indices."""
    rng = np.random.default_rng(seed)
    extractor = FeatureSpec.parse("wave", {"seconds": SECONDS}).extractors(None)[0]
    pack = DEMO_PACKS[0]
    rows, labels = [], []
    for label, kind in enumerate(CLASSES):
        for _ in range(per_class):
            hit = resample(synthesize_hit(kind, pack, rng), pack.sample_rate, aisfx.SAMPLE_RATE)
            rows.append(extractor.extract(hit))
            labels.append(label)
    return np.stack(rows), np.array(labels)


def block_rows(fit) -> Counter:
    """How many rows went through each aiSFX conv block (1-4, told apart by their input channels)
    while `fit()` ran."""
    number = {channels: n for n, channels in enumerate((1, *aisfx.CHANNELS[:-1]), start=1)}
    rows: Counter = Counter()

    def hook(module, inputs, output):
        if type(module).__name__ == "ConvBlock":
            rows[number[module.conv1.in_channels]] += inputs[0].shape[0]

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        fit()
    finally:
        handle.remove()
    return rows


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    X, y = hits(3, seed=0)
    model = make_model("finetune", epochs=2, patience=5, train_blocks=1, batch_size=4, device="cpu")
    rows = block_rows(lambda: model.fit(X, y, X_val=X[::3], y_val=y[::3], n_classes=len(CLASSES)))
    folder = tmp_path_factory.mktemp("finetune")
    save_model(model, folder)
    return model, folder, X, rows


def test_the_wave_extractor_gives_a_fixed_length_from_the_onset():
    extractor = FeatureSpec.parse("wave", {"seconds": 0.5}).extractors(None)[0]
    sound = np.zeros(44100, dtype=np.float32)
    sound[10000:10100] = 1.0
    later = np.roll(sound, 5000)
    out, out_later = extractor.extract(sound), extractor.extract(later)
    assert out.shape == (22050,) and out.dtype == np.float32
    np.testing.assert_array_equal(out, out_later)  # aligned on the onset, not on the file's start
    assert extractor.extract(sound[:10050]).shape == (22050,)  # a short sound is padded


def test_only_the_head_and_the_last_block_move_from_the_pretrained_weights(fitted):
    model, _, _, _ = fitted
    data, where = aisfx.checkpoint_bytes()
    pretrained = aisfx.load_checkpoint(data, where)
    tuned = model.net_.embedder.net.state_dict()
    for name, value in pretrained.items():
        same = torch.equal(tuned[name], value.float())
        if name.startswith("conv_block4") and name.endswith("weight") and "conv" in name.split(".")[1]:
            assert not same, f"{name} was to be trained"
        elif not name.startswith("conv_block4"):
            assert same, f"{name} was to stay frozen (batch-norm statistics included)"


def test_the_frozen_blocks_run_once_per_clip_and_the_trained_block_every_epoch(fitted):
    _, _, X, rows = fitted
    n_train, n_val = len(X), len(X[::3])
    for frozen in (1, 2, 3):  # the maps of every training and validation clip, and of one silent clip
        assert rows[frozen] == n_train + n_val + 1
    assert rows[4] == 2 * (n_train + n_val)  # 2 epochs, each with its validation pass


class WholeNetworkEachEpoch(FinetuneClassifier):
    """The frozen blocks run on every batch of every epoch, as when every block trains."""

    def _fitted_part(self, net, X, X_val, device, callback):
        return self._on_waveforms(net, X, X_val)


def test_training_on_the_frozen_blocks_maps_is_training_the_whole_network():
    X, y = hits(2, seed=1)
    settings = dict(epochs=2, train_blocks=1, batch_size=4, augment=False, mixup=0.0, device="cpu")
    on_maps = make_model("finetune", **settings).fit(X, y, X_val=X[::2], y_val=y[::2], n_classes=len(CLASSES))
    whole = WholeNetworkEachEpoch(**settings).fit(X, y, X_val=X[::2], y_val=y[::2], n_classes=len(CLASSES))
    tuned, reference = on_maps.net_.state_dict(), whole.net_.state_dict()
    pretrained, _ = aisfx.network_weights()
    assert not torch.equal(tuned["embedder.net.conv_block4.conv2.weight"], pretrained["conv_block4.conv2.weight"])
    for name, value in tuned.items():
        torch.testing.assert_close(value, reference[name], rtol=1e-4, atol=1e-5, msg=name)
    np.testing.assert_allclose(on_maps.predict_proba(X), whole.predict_proba(X), atol=1e-5)


def test_masking_the_maps_puts_silence_in_one_band_of_cells_and_one_span():
    maps = torch.rand(200, 3, 4, 12) + 1.0
    silence = -torch.rand(3, 4, 12)
    masked = mask_maps(maps, silence, torch.Generator().manual_seed(0))
    assert torch.equal(masked, mask_maps(maps, silence, torch.Generator().manual_seed(0)))
    changed = masked != maps
    assert torch.equal(masked[changed], silence.expand_as(maps)[changed])
    cells = changed[:, 0]  # [maps, time, freq]: every channel alike
    assert torch.equal(changed, cells[:, None].expand_as(changed))
    columns = cells.all(dim=1).sum(dim=1)  # frequency cells masked at every time
    rows = cells.all(dim=2).sum(dim=1)  # time cells masked at every frequency
    assert set(columns.tolist()) == {0, 1} and set(rows.tolist()) == {0, 1}  # 8 mels / 8 and 12 frames // 8 = 1 cell
    expected = (cells.any(dim=1, keepdim=True) & cells.any(dim=2, keepdim=True)) & (
        cells.all(dim=1, keepdim=True) | cells.all(dim=2, keepdim=True))
    assert torch.equal(cells, expected)  # a union of whole columns and rows, nothing else


def test_a_fit_cancelled_while_the_maps_are_computed_trains_nothing():
    class Cancelled(TrainingCallback):
        def __init__(self) -> None:
            self.epochs = 0

        def on_epoch_end(self, *args) -> None:
            self.epochs += 1

        def should_stop(self) -> bool:
            return True

    X, y = hits(1, seed=2)
    callback = Cancelled()
    rows = block_rows(lambda: make_model("finetune", device="cpu").fit(X, y, n_classes=len(CLASSES), callback=callback))
    assert callback.epochs == 0 and sum(rows.values()) == 0


def test_when_every_block_trains_each_epoch_runs_the_whole_network_and_all_blocks_move():
    X, y = hits(1, seed=3)
    model = make_model("finetune", epochs=2, train_blocks=4, batch_size=3, device="cpu")
    rows = block_rows(lambda: model.fit(X, y, n_classes=len(CLASSES)))
    assert rows == {1: 2 * len(X), 2: 2 * len(X), 3: 2 * len(X), 4: 2 * len(X)}
    pretrained, _ = aisfx.network_weights()
    tuned = model.net_.embedder.net.state_dict()
    assert not torch.equal(tuned["conv_block1.conv1.weight"], pretrained["conv_block1.conv1.weight"].float())
    assert model.net_.frame_augment is None


def test_learning_rates_are_discriminative():
    model = make_model("finetune", lr=1e-3, lr_decay=0.5, train_blocks=4)
    model.n_classes_ = 2
    net = model._build({"input_shape": [100]})
    rates = [group["lr"] for group in model._param_groups(net)]
    assert rates == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4, 6.25e-5])  # head, then blocks 4, 3, 2, 1
    with pytest.raises(ValueError, match="train_blocks"):
        make_model("finetune", train_blocks=5)


def test_saved_weights_load_back_checked_and_predict_the_same(fitted):
    model, folder, X, _ = fitted
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "network.json", "weights.safetensors"]
    hashes = file_hashes(folder)
    loaded = load_model(folder, hashes=hashes, kind="finetune", n_classes=len(CLASSES))
    probabilities = model.predict_proba(X)
    np.testing.assert_allclose(loaded.predict_proba(X), probabilities, atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
    weights = folder / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFilesDamaged, match="SHA-256"):
        load_model(folder, hashes=hashes)
    weights.write_bytes(bytes(data[:-1]) + bytes([data[-1] ^ 0xFF]))  # restored for the other tests


def test_onnx_export_matches_torch(fitted, tmp_path):
    import onnxruntime

    model, _, X, _ = fitted
    path = tmp_path / "finetune.onnx"
    model.export_onnx(path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_probabilities,) = session.run(None, {"features": X})
    assert np.abs(onnx_probabilities - model.predict_proba(X)).max() < ONNX_TOLERANCE


def test_a_finetune_request_on_other_features_is_refused_before_its_job_starts(workspace):
    from engine.training.launch import check_request
    from engine.training.run import TrainRequest

    with pytest.raises(InputError, match="finetune trains on --features wave, not dsp"):
        check_request(workspace, TrainRequest(name="drums", model="finetune", features="dsp"))
    check_request(workspace, TrainRequest(name="drums", model="finetune"))  # wave by default
