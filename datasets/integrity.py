"""Is a prepared cache folder intact? Cheap checks with one-line answers.

A cache can be damaged after it was built (a disk filled up, a copy was interrupted, a
file was deleted or edited by hand). Reading such a folder used to end in a numpy or json
traceback deep inside a trainer. These checks run when a cache is opened: the manifest
must be a JSON object with the fields the reader uses, and every array file must exist
with a ``.npy`` header whose shape and dtype match the manifest and a size that holds the
whole array. They read a few hundred bytes per file, never the pixels (``info --verify``
hashes the pixels). Nothing here deletes anything: the message says what to delete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gancore.errors import UserError


def damaged(folder: Path, detail: str) -> UserError:
    """The one message for a damaged cache: which file, what is wrong, how to rebuild."""
    return UserError(
        f"the prepared data set in {folder} is damaged: {detail}. Delete that folder "
        f"(rm -r '{folder}') and prepare it again (`python -m datasets prepare NAME` with "
        "the same flags, or let the trainer do it); nothing was deleted."
    )


def read_manifest(folder: Path, manifest: str) -> dict[str, Any]:
    """The manifest as a dict with the fields the reader needs, or a :func:`damaged` error."""
    path = folder / manifest
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise damaged(folder, f"{manifest} is not readable JSON ({reason})") from exc
    if not isinstance(data, dict):
        raise damaged(folder, f"{manifest} holds a JSON {type(data).__name__}, not an object")
    return data


def check_fields(folder: Path, m: dict[str, Any], manifest: str) -> None:
    """The manifest fields every reader uses, with the right types."""

    def bad(what: str) -> UserError:
        return damaged(folder, f"{manifest} {what}")

    for key in ("name", "count", "channels", "resolutions", "labels", "arrays"):
        if key not in m:
            raise bad(f"has no {key!r} field")
    res = m["resolutions"]
    if not isinstance(res, list) or not res or not all(_is_int(r) and r >= 1 for r in res):
        raise bad(f"has resolutions {res!r}, not a list of positive integers")
    if not _is_int(m["count"]) or m["count"] < 1:
        raise bad(f"has count {m['count']!r}, not a positive integer")
    if m["channels"] not in (1, 3):
        raise bad(f"has channels {m['channels']!r}, not 1 or 3")
    labels = m["labels"]
    if not isinstance(labels, dict) or not isinstance(labels.get("present"), bool):
        raise bad("has a 'labels' field without a true/false 'present'")
    arrays = m["arrays"]
    if not isinstance(arrays, dict) or not all(
        isinstance(arrays.get(str(r)), dict) and isinstance(arrays[str(r)].get("file"), str)
        for r in res
    ):
        raise bad("does not name an array file for every resolution")


def check_npy(folder: Path, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """``folder/name`` exists and is a complete ``.npy`` of ``shape`` and ``dtype``."""
    path = folder / name
    if Path(name).name != name:  # the manifest must not point outside its folder
        raise damaged(folder, f"the manifest names the array file {name!r}")
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                got_shape, fortran, got_dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                got_shape, fortran, got_dtype = np.lib.format.read_array_header_2_0(fh)
            offset = fh.tell()
        size = os.path.getsize(path)
    except FileNotFoundError as exc:
        raise damaged(folder, f"{name} is missing") from exc
    except (OSError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise damaged(folder, f"{name} is not a readable .npy file ({reason})") from exc
    if tuple(got_shape) != tuple(shape) or np.dtype(got_dtype) != dtype or fortran:
        raise damaged(
            folder,
            f"{name} holds {np.dtype(got_dtype)} {tuple(got_shape)}, the manifest says "
            f"{dtype} {tuple(shape)}",
        )
    need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < need:
        raise damaged(folder, f"{name} is truncated ({size:,} bytes, needs {need:,})")


def check_files(folder: Path, m: dict[str, Any], labels_file: str) -> None:
    """Every array of the manifest, and the labels when present, is complete on disk."""
    count, channels = int(m["count"]), int(m["channels"])
    for r in m["resolutions"]:
        check_npy(folder, m["arrays"][str(r)]["file"], (count, r, r, channels), np.dtype(np.uint8))
    if m["labels"]["present"]:
        check_npy(folder, labels_file, (count,), np.dtype(np.int64))


def load_error(folder: Path, name: str, exc: BaseException) -> UserError:
    """For a file that passed the checks but failed to open later (changed meanwhile)."""
    if isinstance(exc, FileNotFoundError):
        return damaged(folder, f"{name} is missing")
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return damaged(folder, f"{name} cannot be read ({type(exc).__name__}: {reason})")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
