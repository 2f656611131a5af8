"""Which device heavy tensor work runs on: "auto" (CUDA when torch sees a GPU, else the CPU), "cpu"
or "cuda". Training (torch models) and extraction (the aiSFX embedding, ONNX models) both ask here."""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str):
    """The torch.device for a name; asking for CUDA without it is an error."""
    import torch

    if name not in DEVICES:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {name!r}")
    cuda = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "cpu")
    if name == "cuda" and not cuda:
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA GPU "
                         "(is the CUDA build of torch installed?); use 'cpu' or 'auto'")
    return torch.device(name)
