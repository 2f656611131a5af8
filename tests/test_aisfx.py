"""The aiSFX embedding export: checkpoint discovery, safe loading, the ONNX graph and its parity."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError, NotFound
from engine.io import file_sha256

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")  # torch.onnx.export needs it

from engine.embeddings import aisfx  # noqa: E402

PIP_LINE = "pip install --no-deps aisfx==0.1.2"
SR = aisfx.SAMPLE_RATE
# Class counts of the nine per-dataset heads in the real checkpoint (fc.<i>.4 has this many outputs).
HEAD_CLASSES = {"prosfx": 78, "soundlyTrain": 79, "ucsMixed": 69, "soundstormBalanced": 81,
                "productionelementsBalanced": 10, "cartoonexpressBalanced": 27, "hpxdigitalBalanced": 3,
                "series6000Balanced": 23, "series9000Balanced": 8}


def synthetic_checkpoint(path: Path, seed: int = 0) -> Path:
    """A file shaped like aisfx's checkpoint.pth: (state_dict, ds_dict), random weights of sane scale."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in aisfx.build_network().state_dict().items():
        if key.endswith("num_batches_tracked"):
            tensor = torch.tensor(1000, dtype=torch.int64)
        elif key.endswith("running_var"):
            tensor = 0.5 + torch.rand(value.shape, generator=generator)
        elif key.endswith("running_mean") or key.endswith("bias"):
            tensor = 0.1 * torch.randn(value.shape, generator=generator)
        elif key.endswith("bn1.weight") or key.endswith("bn2.weight"):
            tensor = 1.0 + 0.1 * torch.randn(value.shape, generator=generator)
        else:  # conv weights, He-scaled
            fan_in = value[0].numel()
            tensor = torch.randn(value.shape, generator=generator) * (2.0 / fan_in) ** 0.5
        state[f"embedding_net.{key}"] = tensor
    for index, classes in enumerate(HEAD_CLASSES.values()):
        for layer, (rows, cols) in zip((0, 2, 4), ((256, 512), (128, 256), (classes, 128))):
            state[f"fc.{index}.{layer}.weight"] = 0.05 * torch.randn(rows, cols, generator=generator)
            state[f"fc.{index}.{layer}.bias"] = torch.zeros(rows)
    # numpy int64 indices, as in the real file: exercises the loader's two extra allowed globals
    datasets = {name: (np.int64(index), classes) for index, (name, classes) in enumerate(HEAD_CLASSES.items())}
    torch.save((state, datasets), path)
    return path


def kick(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    frequency = 45.0 + 140.0 * np.exp(-t * 35.0)
    return (0.9 * np.sin(2 * np.pi * np.cumsum(frequency) / SR) * np.exp(-t * 9.0)).astype(np.float32)


def hat(seconds: float = 1.0, seed: int = 3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    noise = np.random.default_rng(seed).standard_normal(t.size)
    bright = np.diff(noise, prepend=0.0)  # first difference: a high-passed, hat-like hiss
    return (0.4 * bright * np.exp(-t * 45.0)).astype(np.float32)


def run_onnx(path: Path, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    embedding, blocks = session.run(None, {session.get_inputs()[0].name: samples[None, :].astype(np.float32)})
    return embedding, blocks


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def synthetic_install(tmp_path_factory):
    """One export from a synthetic checkpoint, shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("aisfx_synthetic")
    checkpoint = synthetic_checkpoint(folder / "checkpoint.pth")
    onnx_path = aisfx.install_aisfx(folder / "ws", source=checkpoint)
    return checkpoint, onnx_path


def test_synthetic_checkpoint_exports_onnx_and_sidecar(synthetic_install):
    _, onnx_path = synthetic_install
    assert onnx_path == onnx_path.parent / "aisfx.onnx" and onnx_path.parent.name == "embeddings"
    assert onnx_path.is_file()
    sidecar = json.loads(onnx_path.with_suffix(".json").read_text())
    assert sidecar == {"sample_rate": 44100, "source": "aisfx 0.1.2 (CC-BY-4.0)", "dim": 512}
    assert not [p for p in onnx_path.parent.iterdir() if p.name.endswith(".tmp")]  # no temp files left


def test_onnx_matches_the_torch_module(synthetic_install):
    checkpoint, onnx_path = synthetic_install
    model = aisfx.build_model(aisfx.load_checkpoint(checkpoint.read_bytes()))
    noise = (0.3 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    for samples in (noise, kick(3.7), hat(0.05)):
        embedding, blocks = run_onnx(onnx_path, samples)
        assert embedding.shape == (1, 512) and np.isfinite(embedding).all()
        with torch.no_grad():
            expected, expected_blocks = model(torch.from_numpy(samples[None, :]))
        assert blocks.shape == tuple(expected_blocks.shape)
        np.testing.assert_allclose(embedding, expected.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(blocks, expected_blocks.numpy(), atol=1e-4, rtol=0)


def test_input_length_is_dynamic_and_blocked_like_the_package(synthetic_install):
    _, onnx_path = synthetic_install
    # frames = samples // 1024 + 1; blocks of 100 frames, hop 50, incomplete last block dropped, at least one
    for samples, blocks_expected in ((1, 1), (SR, 1), (148 * 1024, 1), (149 * 1024, 2), (10 * SR, 7)):
        _, blocks = run_onnx(onnx_path, np.zeros(samples, dtype=np.float32) + 0.01)
        assert blocks.shape == (1, blocks_expected, 512)


def test_the_onnx_extractor_reads_the_installed_model(synthetic_install):
    from engine.features.onnx_embed import OnnxExtractor

    _, onnx_path = synthetic_install
    extractor = OnnxExtractor.from_folder(onnx_path.parent, "aisfx")
    assert extractor.sample_rate == 44100
    features = extractor.extract(kick(0.8))
    assert features.shape == (512,) and np.isfinite(features).all()


def test_silence_gives_a_finite_embedding(synthetic_install):
    embedding, _ = run_onnx(synthetic_install[1], np.zeros(SR // 2, dtype=np.float32))
    assert np.isfinite(embedding).all()


def test_checkpoint_is_found_in_a_wheel_a_folder_or_as_a_file(tmp_path):
    checkpoint = synthetic_checkpoint(tmp_path / "checkpoint.pth")
    wheel = tmp_path / "aisfx-0.1.2-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("aisfx/__init__.py", "raise RuntimeError('must not be imported')\n")
        archive.write(checkpoint, "aisfx/models/checkpoint.pth")
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    expected = checkpoint.read_bytes()
    for source in (wheel, unpacked, unpacked / "aisfx", checkpoint):
        data, _ = aisfx.checkpoint_bytes(source)
        assert data == expected
    assert set(aisfx.load_checkpoint(expected)) == set(aisfx.build_network().state_dict())


def test_missing_source_raises_not_found_with_the_pip_hint(tmp_path, monkeypatch):
    with pytest.raises(NotFound, match="pip install --no-deps aisfx==0.1.2"):
        aisfx.install_aisfx(tmp_path / "ws", source=tmp_path / "aisfx-0.1.2-py2.py3-none-any.whl")
    with pytest.raises(NotFound, match="pip download --no-deps aisfx==0.1.2"):
        aisfx.install_aisfx(tmp_path / "ws", source=tmp_path / "empty_folder_that_does_not_exist")
    empty_wheel = tmp_path / "other.whl"
    with zipfile.ZipFile(empty_wheel, "w") as archive:
        archive.writestr("other/__init__.py", "")
    with pytest.raises(NotFound, match="--source <wheel>"):
        aisfx.install_aisfx(tmp_path / "ws", source=empty_wheel)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    monkeypatch.setattr(aisfx, "BUNDLED_WEIGHTS", tmp_path / "not_shipped.safetensors")
    with pytest.raises(NotFound, match="pip install --no-deps aisfx==0.1.2"):
        aisfx.install_aisfx(tmp_path / "ws", source=None)
    assert not (tmp_path / "ws" / "models" / "embeddings" / "aisfx.onnx").exists()


class _Planted:
    """Pickles as a call to os.system: what a malicious checkpoint would hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_a_checkpoint_with_a_forbidden_global_is_refused_without_running_it(tmp_path, writer):
    marker = tmp_path / "pwned"
    evil = tmp_path / "checkpoint.pth"
    payload = ({"embedding_net.conv_block1.conv1.weight": _Planted(marker)}, {})
    if writer == "torch.save":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(InputError, match="refused to load"):
        aisfx.load_checkpoint(evil.read_bytes(), str(evil))
    with pytest.raises(InputError):
        aisfx.install_aisfx(tmp_path / "ws", source=evil)
    assert not marker.exists()


def test_a_checkpoint_with_other_keys_is_rejected(tmp_path):
    state = {f"embedding_net.{key}": value for key, value in aisfx.build_network().state_dict().items()}
    del state["embedding_net.conv_block4.bn2.running_var"]
    path = tmp_path / "checkpoint.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match="does not match"):
        aisfx.install_aisfx(tmp_path / "ws", source=path)


def test_importing_the_module_is_cheap():
    code = "import engine.embeddings.aisfx, sys; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).parents[1]).stdout.split())
    assert not {"torch", "librosa", "onnxruntime", "aisfx"} & {name.split(".")[0] for name in loaded}


@pytest.fixture(scope="module")
def first_use(tmp_path_factory):
    """A fresh workspace of one kick whose first `features extract --extractor onnx:aisfx` converted
    the bundled weights (no install-aisfx); the two runs' CLI results."""
    import soundfile
    from typer.testing import CliRunner

    from cli.main import app

    home = tmp_path_factory.mktemp("aisfx_real")
    soundfile.write(home / "kick.wav", kick(0.5), SR)
    ws = home / "ws"

    def cli(*args):
        return CliRunner().invoke(app, ["--headless", "--workspace", str(ws), *args])

    assert cli("import", str(home / "kick.wav")).exit_code == 0
    return ws, cli("features", "extract", "--extractor", "onnx:aisfx", "--workers", "1"), \
        cli("features", "extract", "--extractor", "hybrid:aisfx", "--workers", "1")


@pytest.fixture(scope="module")
def real_install(first_use):
    return first_use[0] / "models" / "embeddings" / "aisfx.onnx"


def test_the_first_use_of_aisfx_features_converts_the_bundled_weights_once(first_use):
    ws, first, second = first_use
    assert first.exit_code == 0, first.stdout + first.stderr
    assert "converted the aiSFX embedding from" in first.stderr and aisfx.BUNDLED_WEIGHTS.name in first.stderr
    assert "1 extracted" in first.stdout
    assert second.exit_code == 0 and "converted" not in second.stderr  # already there: not again
    model = ws / "models" / "embeddings" / "aisfx.onnx"
    sidecar = json.loads(model.with_suffix(".json").read_text())
    assert sidecar == {"sample_rate": SR, "source": aisfx.SOURCE_NOTE, "dim": aisfx.DIM,
                       "weights_sha256": aisfx.BUNDLED_SHA256, "onnx_sha256": file_sha256(model)}


def test_the_bundled_weights_are_the_packages_own():
    if importlib.util.find_spec("aisfx") is None:
        pytest.skip(f"the aisfx package is not installed; `{PIP_LINE}` to compare with it")
    bundled, _ = aisfx.bundled_weights()
    data, where = aisfx.checkpoint_bytes(aisfx.installed_package_dir())
    package = aisfx.load_checkpoint(data, where)
    assert bundled.keys() == package.keys()
    for key, tensor in package.items():
        assert torch.equal(bundled[key], tensor), key


def test_bundled_weights_that_differ_are_refused_before_parsing(tmp_path):
    changed = tmp_path / aisfx.BUNDLED_WEIGHTS.name
    data = bytearray(aisfx.BUNDLED_WEIGHTS.read_bytes())
    data[-1] ^= 1
    changed.write_bytes(bytes(data))
    with pytest.raises(InputError, match="SHA-256 differs"):
        aisfx.bundled_weights(changed)
    with pytest.raises(NotFound, match="bundled aiSFX weights are missing"):
        aisfx.bundled_weights(tmp_path / "gone.safetensors")


def test_real_package_embeds_a_kick_and_a_hat_differently(real_install):
    kick_embedding, _ = run_onnx(real_install, kick(1.0))
    hat_embedding, _ = run_onnx(real_install, hat(1.0))
    for embedding in (kick_embedding, hat_embedding):
        assert embedding.shape == (1, 512) and np.isfinite(embedding).all()
    assert cosine(kick_embedding, hat_embedding) < 0.99
    # the same kind of sound stays closer than the other kind
    other_hat, _ = run_onnx(real_install, hat(1.0, seed=11))
    assert cosine(hat_embedding, other_hat) > cosine(hat_embedding, kick_embedding)


def test_real_package_install_did_not_import_it(real_install):
    assert "aisfx" not in sys.modules


def test_the_port_batched_on_a_torch_device_matches_the_exported_file(real_install):
    from engine.features.onnx_embed import OnnxExtractor

    rng = np.random.default_rng(4)
    segments = [kick(0.3), hat(0.02), kick(4.1), (0.2 * rng.standard_normal(SR * 7)).astype(np.float32),
                np.zeros(300, dtype=np.float32), hat(1.0, seed=5)]
    for params in ({}, {"standardize": True, "region_s": 1.5}):
        extractor = OnnxExtractor.from_folder(real_install.parent, "aisfx", **params)
        assert extractor.runs_as_port()
        expected = [extractor.extract(samples) for samples in segments]  # onnxruntime, one at a time
        for got, want in zip(extractor.extract_with_port(segments, "cpu"), expected, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_a_torch_device_runs_the_port_only_for_its_own_unchanged_export(real_install, synthetic_install, monkeypatch):
    from engine.features.onnx_embed import OnnxExtractor

    ported = []
    monkeypatch.setattr(OnnxExtractor, "extract_with_port", lambda self, batch, device: ported.append(device) or [])
    own = OnnxExtractor.from_folder(real_install.parent, "aisfx")
    own.device = "cuda"
    assert own.extract_batch([kick(0.2)]) == [] and ported == ["cuda"]
    own.device = "cpu"  # the CPU runs the file through onnxruntime
    assert own.extract_batch([kick(0.2)])[0].shape == (512,) and ported == ["cuda"]

    changed = OnnxExtractor(**{**own.params, "model_sha256": "0" * 64})  # the file is not the one installed
    other = OnnxExtractor.from_folder(synthetic_install[1].parent, "aisfx")  # converted from another checkpoint
    for extractor in (changed, other):
        extractor.device = "cuda"
        assert not extractor.runs_as_port()
        assert extractor.extract_batch([kick(0.2)])[0].shape == (512,) and ported == ["cuda"]
