"""The feature cache: an LMDB environment of float arrays keyed by what produced them.

Key: `<extractor>:<params hash>:<code version>|<clip hash>|<segment region>`. Values are .npy
bytes read back with allow_pickle=False. LMDB lets many processes read while one writes, and a
killed writer leaves the last committed transaction intact.
"""

from __future__ import annotations

import io
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import lmdb
import numpy as np

INITIAL_MAP_SIZE = 1 << 34  # 16 GiB of address space; the file only grows as it fills


def cache_key(prefix: str, clip_id: str, region_key: str) -> str:
    return f"{prefix}|{clip_id}|{region_key}"


def encode_array(array: np.ndarray) -> bytes:
    """The .npy bytes of the array, as np.save writes them (its header made once per dtype and shape)."""
    array = np.ascontiguousarray(array)
    if array.dtype.hasobject:
        raise ValueError("object arrays are not stored (they would need pickles)")
    return _npy_header(np.lib.format.dtype_to_descr(array.dtype), array.shape) + array.tobytes()


@cache
def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def decode_array(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


@dataclass(frozen=True)
class PrefixStats:
    extractor: str
    prefix: str
    entries: int
    bytes: int


# LMDB allows one open environment per file and process, so every FeatureCache of one path in one
# process shares it (a forked child, with another pid, opens its own); the last close() closes it.
_OPEN: dict[tuple[int, str], list] = {}  # (pid, real path) -> [environment, users]
_OPEN_LOCK = threading.Lock()


def _acquire(path: Path) -> tuple[tuple[int, str], lmdb.Environment]:
    key = (os.getpid(), os.path.realpath(path))
    with _OPEN_LOCK:
        if key not in _OPEN:
            _OPEN[key] = [lmdb.open(str(path), map_size=INITIAL_MAP_SIZE, subdir=True, readahead=False,
                                    max_readers=256), 0]
        _OPEN[key][1] += 1
        return key, _OPEN[key][0]


def _release(key: tuple[int, str]) -> None:
    with _OPEN_LOCK:
        entry = _OPEN.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _OPEN[key]
            entry[0].close()


class FeatureCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._key, self._env = _acquire(self.path)
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release(self._key)

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys that have no entry (checked without reading the values)."""
        with self._env.begin(buffers=True) as txn:
            cursor = txn.cursor()
            return [key for key in keys if not cursor.set_key(key.encode())]

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._env.begin(buffers=True) as txn:
            for key in keys:
                data = txn.get(key.encode())
                if data is not None:
                    found[key] = decode_array(bytes(data))
        return found

    def put_many(self, items: Mapping[str, np.ndarray]) -> None:
        if not items:
            return
        encoded = [(key.encode(), encode_array(value)) for key, value in items.items()]
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    for key, value in encoded:
                        txn.put(key, value)
                return
            except lmdb.MapFullError:
                self._env.set_mapsize(self._env.info()["map_size"] * 2)

    def stats(self) -> list[PrefixStats]:
        entries: dict[str, int] = defaultdict(int)
        sizes: dict[str, int] = defaultdict(int)
        with self._env.begin(buffers=True) as txn:
            for key, value in txn.cursor():
                prefix = bytes(key).split(b"|", 1)[0].decode()
                entries[prefix] += 1
                sizes[prefix] += len(value)
        return [PrefixStats(prefix.split(":", 1)[0], prefix, entries[prefix], sizes[prefix]) for prefix in sorted(entries)]

    def clear(self, keep=lambda prefix: False) -> int:
        """Delete every entry whose prefix `keep` refuses; returns how many went."""
        doomed: list[bytes] = []
        with self._env.begin(buffers=True) as txn:
            for key in txn.cursor().iternext(values=False):
                key = bytes(key)
                if not keep(key.split(b"|", 1)[0].decode()):
                    doomed.append(key)
        with self._env.begin(write=True) as txn:
            for key in doomed:
                txn.delete(key)
        return len(doomed)

    def unreadable(self, *, sample: int | None = None, reporter=None, cancel=None) -> tuple[int, list[str]]:
        """Decode the entries (all, or about `sample` of them spread over the cache); returns how
        many were read and the keys of those that could not be decoded."""
        with self._env.begin(buffers=True) as txn:
            total = txn.stat()["entries"]
            step = max(1, total // sample) if sample else 1
            if reporter is not None:
                reporter.start("reading feature cache", -(-total // step))
            read, bad = 0, []
            for index, (key, value) in enumerate(txn.cursor()):
                if index % step:
                    continue
                if cancel is not None and cancel.cancelled:
                    break
                try:
                    decode_array(bytes(value))
                except Exception:  # whatever the bytes are, the entry cannot be used
                    bad.append(bytes(key).decode(errors="replace"))
                read += 1
                if reporter is not None:
                    reporter.advance(1)
        return read, bad

    def delete(self, keys: Iterable[str]) -> int:
        """Delete these entries; returns how many there were."""
        with self._env.begin(write=True) as txn:
            return sum(bool(txn.delete(key.encode())) for key in keys)
