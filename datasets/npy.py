"""Stream images into a ``.npy`` file without holding the array in memory.

The file is created with room for the upper bound of the image count and
filled front to back through a memmap; when some images were skipped, the
header is rewritten in place with the true count (padded to the same length,
as the .npy format allows) and the file is truncated. A sha256 of the array
bytes is computed while writing, so the manifest's checksum costs no extra pass.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


class NpyWriter:
    def __init__(self, path: Path, capacity: int, item_shape: tuple[int, ...]) -> None:
        self.path = Path(path)
        self.capacity = int(capacity)
        self.item_shape = tuple(item_shape)
        self.count = 0
        self._hash = hashlib.sha256()
        self._mm = np.lib.format.open_memmap(
            self.path, mode="w+", dtype=np.uint8, shape=(self.capacity, *self.item_shape)
        )
        self._offset = self._mm.offset

    def append(self, batch: np.ndarray) -> None:
        n = len(batch)
        if self.count + n > self.capacity:
            raise RuntimeError(f"{self.path.name}: more images than the announced {self.capacity}")
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        self._mm[self.count : self.count + n] = batch
        self._hash.update(batch.data)
        self.count += n

    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        self._mm.flush()
        del self._mm
        if self.count != self.capacity:
            shrink_npy(self.path, self.count, self.item_shape, self._offset)


def _header_bytes(shape: tuple[int, ...], total_len: int) -> bytes:
    """A version-1.0 .npy header for uint8 C-order ``shape``, exactly ``total_len`` bytes."""
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    body_len = total_len - 10  # magic (6) + version (2) + length field (2)
    pad = body_len - len(text) - 1
    if pad < 0:
        raise RuntimeError("new .npy header does not fit in the old one")
    body = (text + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + body_len.to_bytes(2, "little") + body


def shrink_npy(path: Path, count: int, item_shape: tuple[int, ...], data_offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.write(_header_bytes((count, *item_shape), data_offset))
    os.truncate(path, data_offset + count * int(np.prod(item_shape)))
