"""A restricted unpickler for the CIFAR-10 python batches.

The official batches are Python-2 pickles of a dict holding a uint8 numpy
array, a list of ints and some bytes. A pickle can name any importable
callable (``os.system`` through ``__reduce__``) and the loader calls it, so
loading an untrusted pickle with :mod:`pickle` runs code. This unpickler
resolves only the few globals numpy needs to rebuild a plain array
(``_reconstruct``, ``ndarray``, ``dtype``); any other global refuses the file
before anything is called. Lists, dicts, bytes, str and ints need no globals.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from gancore.errors import UserError


class UnsafePickleError(pickle.UnpicklingError):
    pass


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as fn  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


def _frombuffer():
    try:
        from numpy._core.numeric import _frombuffer as fn  # numpy >= 2, pickle protocol 5
    except ImportError:  # pragma: no cover
        from numpy.core.numeric import _frombuffer as fn
    return fn


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Python 3 writes ndarray state in protocol 2 as ``_codecs.encode(str, 'latin1')``."""
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


_ALLOWED = {
    ("_codecs", "encode"): lambda: _latin1_encode,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        get = _ALLOWED.get((module, name))
        if get is None:
            raise UnsafePickleError(f"global {module}.{name} is not allowed")
        return get()


def safe_load(data: bytes, what: str) -> Any:
    """Unpickle ``data`` allowing only numpy arrays and plain containers; UserError otherwise."""
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except UnsafePickleError as exc:
        raise UserError(
            f"refusing {what}: it is not a plain CIFAR-10 batch ({exc}); "
            "it may be malicious. Re-download the official file."
        ) from exc
    except Exception as exc:  # truncated or garbage pickles raise many different types
        raise UserError(
            f"{what} is not a readable CIFAR-10 batch ({type(exc).__name__}: {exc}); "
            "re-download it."
        ) from exc
    _check_plain(obj, what)
    return obj


def _check_plain(obj: Any, what: str, depth: int = 0) -> None:
    """No object arrays (their items could be anything) and nothing exotic in containers."""
    if depth > 4:
        raise UserError(f"{what}: unexpectedly deep structure; refusing it.")
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise UserError(f"{what}: contains an object array; refusing it.")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_plain(k, what, depth + 1)
            _check_plain(v, what, depth + 1)
    elif isinstance(obj, list):
        if obj and not all(isinstance(v, (int, bytes, str)) for v in obj[:100]):
            for v in obj:
                _check_plain(v, what, depth + 1)
    elif not isinstance(obj, (int, bytes, str, float, type(None))):
        raise UserError(f"{what}: unexpected {type(obj).__name__} inside; refusing it.")
