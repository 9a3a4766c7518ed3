"""The restricted unpickler: loads real CIFAR-style batches, refuses everything else."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from datasets.safe_pickle import safe_load
from gancore.errors import UserError


def _sbs(b: bytes) -> bytes:  # SHORT_BINSTRING: a Python 2 str
    return b"U" + bytes([len(b)]) + b


def _bi1(i: int) -> bytes:
    return b"K" + bytes([i])


def _bi(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def py2_cifar_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch as the official files hold it: Python 2 + numpy 1.x, protocol 2, written
    opcode by opcode (the real file cannot be fetched offline)."""
    n, m = data.shape
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + b"cnumpy\nndarray\n"
        + _bi1(0)
        + b"\x85"
        + _sbs(b"b")
        + b"\x87R"
        + b"("
        + _bi1(1)
        + _bi(n)
        + _bi(m)
        + b"\x86"
        + b"cnumpy\ndtype\n"
        + _sbs(b"u1")
        + _bi1(0)
        + _bi1(1)
        + b"\x87R"
        + b"("
        + _bi1(3)
        + _sbs(b"|")
        + b"NNN"
        + _bi(-1)
        + _bi(-1)
        + _bi1(0)
        + b"tb"
        + b"\x89"
        + b"T"
        + struct.pack("<i", n * m)
        + data.tobytes()
        + b"tb"
    )
    labs = b"](" + b"".join(_bi1(v) for v in labels) + b"e"
    return (
        b"\x80\x02}("
        + _sbs(b"data")
        + array
        + _sbs(b"labels")
        + labs
        + _sbs(b"batch_label")
        + _sbs(b"training batch 1 of 5")
        + b"u."
    )


def test_python2_numpy1_batch_loads() -> None:
    data = np.arange(2 * 3072, dtype=np.uint16).astype(np.uint8).reshape(2, 3072)
    raw = py2_cifar_pickle(data, [1, 9])
    assert pickle.loads(raw, encoding="bytes")[b"labels"] == [1, 9]  # the builder is valid
    d = safe_load(raw, "batch")
    assert np.array_equal(d[b"data"], data) and d[b"labels"] == [1, 9]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_python3_pickles_load(protocol: int) -> None:
    obj = {b"data": np.arange(12, dtype=np.uint8).reshape(2, 6), b"labels": [3, 4], b"x": "s"}
    d = safe_load(pickle.dumps(obj, protocol=protocol), "batch")
    assert np.array_equal(d[b"data"], obj[b"data"]) and d[b"labels"] == [3, 4]


class _Reduce:
    def __init__(self, fn, args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


@pytest.mark.parametrize("payload", ["system", "eval", "nested", "object_array"])
def test_code_execution_is_refused(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "ran"
    cmd = f"touch {marker}"
    obj = {
        "system": {b"data": _Reduce(os.system, (cmd,))},
        "eval": {b"data": _Reduce(eval, (f"open({str(marker)!r}, 'w')",))},
        "nested": {b"labels": [1, [2, {b"x": _Reduce(os.system, (cmd,))}]]},
        "object_array": {b"data": np.array([1, "a"], dtype=object)},
    }[payload]
    with pytest.raises(UserError, match="refusing|not a readable"):
        safe_load(pickle.dumps(obj, protocol=2), "batch")
    assert not marker.exists()


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="not a readable CIFAR-10 batch"):
        safe_load(b"\x80\x02}(U\x04data", "batch")
