"""Atomic writes leave files with the mode a plain write would give."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from engine.datasets.export import _write_atomically as write_dataset_folder
from engine.io import write_atomically, write_bytes_atomically, write_json_atomically


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring the previous one after."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0o027], ids=oct)
def test_atomic_writes_give_new_files_the_mode_of_a_plain_write(tmp_path, umask, mask):
    umask(mask)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert mode(plain) == 0o666 & ~mask
    write_bytes_atomically(tmp_path / "bytes.bin", b"x")
    write_json_atomically(tmp_path / "report.json", {"a": 1})
    write_atomically(tmp_path / "model.onnx", lambda temporary: temporary.write_bytes(b"onnx"))
    for name in ("bytes.bin", "report.json", "model.onnx"):
        assert mode(tmp_path / name) == mode(plain), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bytes.bin", "model.onnx", "plain.txt", "report.json"]


def test_rewriting_a_file_keeps_its_mode_like_a_plain_write(tmp_path, umask):
    umask(0o022)
    target = write_bytes_atomically(tmp_path / "report.json", b"{}")
    target.chmod(0o640)
    write_json_atomically(target, {"again": True})
    assert mode(target) == 0o640 and target.read_text() == '{\n  "again": true\n}\n'
    target.chmod(0o444)  # read-only: the rename still replaces it, and it stays read-only
    write_bytes_atomically(target, b"third")
    assert mode(target) == 0o444 and target.read_bytes() == b"third"


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path):
    target = write_bytes_atomically(tmp_path / "kept.bin", b"old")

    def fail(temporary):
        temporary.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(target, fail)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["kept.bin"]


@pytest.mark.parametrize("mask", [0o022, 0o077], ids=oct)
def test_an_exported_dataset_folder_gets_the_mode_of_a_plain_mkdir(tmp_path, umask, mask):
    umask(mask)
    plain = tmp_path / "plain"
    plain.mkdir()
    out = tmp_path / "export"
    write_dataset_folder(out, {"manifest.json": b"{}", "X.npy": np.zeros(3)})
    write_dataset_folder(out, {"manifest.json": b"{}"})  # a re-export swaps the folder
    assert mode(out) == mode(plain) == 0o777 & ~mask
    assert mode(out / "manifest.json") == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "plain"]

