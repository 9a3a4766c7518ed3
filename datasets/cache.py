"""The prepared-dataset cache: where it lives, how it is keyed, how it is read.

A prepared data set is a folder::

    <cache>/<slug>-<key>-r<max_res>/
        manifest.json   source, options, split, count, channels, labels, resolutions,
                        sha256 of every array, skipped files, format version, timings
        4x4.npy ... <max_res>x<max_res>.npy   uint8 NHWC, opened with mmap
        labels.npy      int64 (N,), only when the source has labels

It is written into ``<name>.partial/`` and renamed at the end, so a folder
without the ``.partial`` suffix is always complete. The key hashes everything
that decides the pixels (name, options, split, a fingerprint of the source
files, format version), so a second request is a directory lookup; ``max_res``
is kept outside the key so a cache made at 64 can serve a request for 32.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from datasets.integrity import check_fields, check_files, load_error, read_manifest
from gancore.errors import UserError
from gancore.paths import cache_root

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LABELS_FILE = "labels.npy"


def array_file(res: int) -> str:
    return f"{res}x{res}.npy"


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The project's one cache rule (:func:`gancore.paths.cache_root`)."""
    return cache_root(cache_dir)


def cache_key(identity: dict[str, Any]) -> str:
    """Short, stable hash of a JSON-able description (sorted keys)."""
    blob = json.dumps(identity, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def slugify(name: str) -> str:
    keep = [c if c.isalnum() or c in "-_" else "-" for c in name.lower()]
    return "".join(keep).strip("-")[:40] or "data"


def find_complete(cache: Path, prefix: str, max_res: int) -> Path | None:
    """The smallest complete cache ``<prefix>-r<R>`` with R >= max_res, if any."""
    best: tuple[int, Path] | None = None
    if not cache.is_dir():
        return None
    for path in cache.glob(f"{prefix}-r*"):
        tail = path.name[len(prefix) + 2 :]
        if not tail.isdigit() or not (path / MANIFEST).is_file():
            continue
        res = int(tail)
        if res >= max_res and (best is None or res < best[0]):
            best = (res, path)
    return best[1] if best else None


def find_unfinished(cache: Path, prefix: str) -> list[Path]:
    """Paths named like a finished cache ``<prefix>-r<R>`` that hold no manifest file.

    A build renames its folder into place only after writing the manifest, so such a path
    was damaged afterwards (the manifest deleted, a copy interrupted) and is reported."""
    if not cache.is_dir():
        return []
    return sorted(
        p
        for p in cache.glob(f"{prefix}-r*")
        if p.name[len(prefix) + 2 :].isdigit() and not (p / MANIFEST).is_file()
    )


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock so two processes never prepare the same cache at once."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+")  # noqa: SIM115 - closed below
    except OSError:  # read-only cache: reading needs no lock, and a build reports the problem
        yield
        return
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class PreparedDataset:
    """Read side of a prepared cache. Arrays are memory-mapped, never loaded whole.

    ``max_res`` limits the visible resolutions when a larger cache serves a
    smaller request, so ``max(ds.resolutions)`` is always what was asked for.
    """

    def __init__(self, path: str | os.PathLike, max_res: int | None = None) -> None:
        self.path = Path(path)
        manifest_path = self.path / MANIFEST
        if not manifest_path.is_file():
            raise UserError(
                f"{self.path} is not a prepared data set (no {MANIFEST}); prepare one with "
                "`python -m datasets prepare NAME`."
            )
        self.manifest: dict[str, Any] = read_manifest(self.path, MANIFEST)
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise UserError(
                f"{self.path} has cache format {self.manifest.get('format_version')}, this code reads "
                f"{FORMAT_VERSION}; delete the folder and prepare again."
            )
        check_fields(self.path, self.manifest, MANIFEST)
        all_res = [int(r) for r in self.manifest["resolutions"]]
        if max_res is not None and max_res not in all_res:
            raise UserError(f"{self.path} has resolutions {all_res}, not {max_res}.")
        # headers and sizes only (a few hundred bytes a file): a truncated or deleted array
        # is reported here, naming the file, instead of as a numpy error in a trainer
        check_files(self.path, self.manifest, LABELS_FILE)
        self.resolutions = [r for r in all_res if max_res is None or r <= max_res]
        self.count = int(self.manifest["count"])
        self.channels = int(self.manifest["channels"])
        self.name = str(self.manifest["name"])
        self._arrays: dict[int, np.ndarray] = {}
        self._labels: np.ndarray | None = None

    @property
    def max_res(self) -> int:
        return max(self.resolutions)

    @property
    def labels(self) -> np.ndarray | None:
        """int64 (N,) class labels, or None for unlabelled sources (small: loaded whole)."""
        if self._labels is None and self.manifest["labels"]["present"]:
            self._labels = self._load(LABELS_FILE, None)
        return self._labels

    def array(self, res: int) -> np.ndarray:
        """The (N, res, res, C) uint8 memmap for one resolution."""
        if res not in self.resolutions:
            raise UserError(
                f"data set {self.name!r} has resolutions {self.resolutions}, not {res}; "
                f"prepare it with --max-res {max(res, self.max_res)}."
            )
        if res not in self._arrays:
            self._arrays[res] = self._load(self.manifest["arrays"][str(res)]["file"], "r")
        return self._arrays[res]

    def verify(self) -> list[str]:
        """Recompute every array's sha256 (streamed); return the names that do not match."""
        bad = []
        for res in [int(r) for r in self.manifest["resolutions"]]:
            info = self.manifest["arrays"][str(res)]
            arr = self._load(info["file"], "r")
            h = hashlib.sha256()
            step = max(1, (64 << 20) // max(1, arr[0].nbytes))
            for i in range(0, len(arr), step):
                h.update(np.ascontiguousarray(arr[i : i + step]).data)
            if h.hexdigest() != info["sha256"]:
                bad.append(info["file"])
        return bad

    def _load(self, name: str, mmap_mode: str | None) -> np.ndarray:
        try:
            return np.load(self.path / name, mmap_mode=mmap_mode, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # changed since the checks at open
            raise load_error(self.path, name, exc) from exc

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return (
            f"PreparedDataset({self.name!r}, count={self.count}, channels={self.channels}, "
            f"resolutions={self.resolutions}, path={str(self.path)!r})"
        )
