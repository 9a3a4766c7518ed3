"""What every metric shares: the evaluation context, key naming, input checks and the cache.

A metric is a function ``compute(ctx) -> MetricResult``. Inside it, three stages
stay apart (features -> statistics -> distance): a ``*_features``
function turns images into descriptors, a ``*_statistics`` function summarises
them (cached for the reference set), a ``*_distance`` function compares two
summaries. The context hands each metric the generated images, a lazily loaded
reference set, the options and the cache; it never imports a framework.

Result layout (documented in ``benchmarks/metrics/README.md``)::

    {"swd_16k_32px": 7.1, "swd_16k_avg": 6.2, ...,          # flat numbers, keys name the protocol
     "protocol": {"swd": {"n": 16384, "split": "train", ..., "seconds": 3.2}, ...},
     "skipped": {"fid": "no InceptionV3 weights: ..."}}
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gancore.errors import UserError
from gancore.io import atomic_path, atomic_write_json, read_json
from gancore.paths import cache_root

# Bump when a cached artefact's recipe changes, so stale cache entries are never reused.
CACHE_VERSION = 1


class MetricSkipped(Exception):
    """Raised by a metric that cannot run here (e.g. no feature-extractor weights offline).

    The evaluator records ``skipped[metric] = reason``; the metric is never reported as 0.
    """


def n_label(n: int) -> str:
    """Protocol label for a sample count: 5000 -> '5k', 16384 -> '16k', 1797 -> '1797'.

    Multiples of 1000 use 'k' = 1000; powers of two of at least 1024 use 'k' = 1024, the
    ProGAN convention (its 'SWD 16k' means 16,384 images). Anything else is written out, so a
    label never rounds. The exact N is always in the protocol dict beside the value.
    """
    n = int(n)
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    if n >= 1024 and n & (n - 1) == 0:
        return f"{n // 1024}k"
    return str(n)


def check_images(images: Any, what: str) -> np.ndarray:
    """uint8 NHWC, 1 or 3 channels, square; anything else is a :class:`UserError`."""
    if not isinstance(images, np.ndarray):
        raise UserError(f"{what}: expected a numpy uint8 array, got {type(images).__name__}.")
    if images.dtype != np.uint8:
        hint = ""
        if np.issubdtype(images.dtype, np.floating) and images.size:
            lo, hi = float(np.min(images)), float(np.max(images))
            hint = (
                f" (values in [{lo:.3g}, {hi:.3g}]; map [-1, 1] model outputs with "
                "gancore.grid.to_uint8)"
            )
        raise UserError(
            f"{what}: images must be uint8 in [0, 255], got dtype {images.dtype}{hint}."
        )
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise UserError(
            f"{what}: images must be NHWC with 1 or 3 channels, got shape {images.shape}."
        )
    if images.shape[1] != images.shape[2]:
        raise UserError(f"{what}: images must be square, got {images.shape[1]}x{images.shape[2]}.")
    if images.shape[0] == 0:
        raise UserError(f"{what}: no images.")
    return images


def to_rgb(images: np.ndarray) -> np.ndarray:
    """Grey -> RGB by repeating the channel, as the official ProGAN metrics do."""
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-serialisable description (sorted keys), for cache file names."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def array_fingerprint(images: np.ndarray) -> str:
    """Content hash of an array (shape, dtype and bytes): identifies an explicit reference set."""
    h = hashlib.sha256(f"{images.shape}{images.dtype}".encode())
    h.update(np.ascontiguousarray(images).data)
    return h.hexdigest()[:16]


def file_sha256(path: str | os.PathLike, length: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def default_cache_dir() -> Path:
    return cache_root()


class MetricCache:
    """Reference features / statistics on disk, keyed by a hash of everything that made them.

    Each entry is ``<root>/metrics/<kind>-<hash>.npz`` plus a ``.json`` describing its key,
    both written atomically (temp file then rename), so a crash never leaves a torn entry.
    """

    def __init__(self, root: str | os.PathLike | None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled

    def path(self, kind: str, key: dict[str, Any], ext: str = ".npz") -> Path:
        return self.root / "metrics" / f"{kind}-{stable_hash({'v': CACHE_VERSION, **key})}{ext}"

    def arrays(
        self, kind: str, key: dict[str, Any], compute: Callable[[], dict[str, np.ndarray]]
    ) -> tuple[dict[str, np.ndarray], bool]:
        """Load the cached arrays for ``key`` or compute and store them; returns (arrays, hit)."""
        path = self.path(kind, key)
        if self.enabled and path.exists():
            try:
                with np.load(path, allow_pickle=False) as data:
                    return {k: data[k] for k in data.files}, True
            except (OSError, ValueError):
                pass  # unreadable entry (e.g. disk full when written): recompute and overwrite
        arrays = compute()
        if self.enabled:
            with atomic_path(path, suffix=".npz") as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **arrays)
            atomic_write_json(path.with_suffix(".json"), {"kind": kind, "key": key})
        return arrays, False

    def json_value(
        self, kind: str, key: dict[str, Any], compute: Callable[[], Any]
    ) -> tuple[Any, bool]:
        path = self.path(kind, key, ext=".json")
        if self.enabled and path.exists():
            try:
                return read_json(path)["value"], True
            except (OSError, ValueError, KeyError):
                pass
        value = compute()
        if self.enabled:
            atomic_write_json(path, {"kind": kind, "key": key, "value": value})
        return value, False


@dataclass
class ReferenceSet:
    """Real images a metric compares against, read lazily from a (memory-mapped) array.

    ``order`` is a fixed shuffled order of the usable images: metrics take its first ``n``
    (``subset``), so every metric and every model sees the same real images for a given N.
    ``identity`` names the set in cache keys and protocol notes: data set, split, resolution,
    selection rule, and a fingerprint of the data (manifest checksum or content hash).
    """

    array: np.ndarray  # (N, H, W, C) uint8, may be a np.memmap
    order: np.ndarray  # indices into ``array``
    identity: dict[str, Any]

    def __post_init__(self) -> None:
        check_images(self.array[:1], f"reference set {self.identity.get('name')}")

    def __len__(self) -> int:
        return int(len(self.order))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape[1:])

    def subset(self, n: int) -> tuple[np.ndarray, dict[str, Any]]:
        """The first ``n`` images in the fixed order (read sorted from disk, then reordered)."""
        idx = np.asarray(self.order[: int(n)])
        srt = np.argsort(idx, kind="stable")
        images = np.empty((len(idx), *self.shape), np.uint8)
        images[srt] = self.array[idx[srt]]
        return images, {**self.identity, "n": int(len(idx))}


def reference_from_array(images: np.ndarray, name: str = "array", **identity: Any) -> ReferenceSet:
    """An explicit reference set (tests, real-vs-real); identified by a content hash."""
    images = check_images(images, f"reference set {name}")
    return ReferenceSet(
        images,
        np.arange(len(images)),
        {
            "name": name,
            "content_sha256_16": array_fingerprint(images),
            "res": int(images.shape[1]),
            **identity,
        },
    )


@dataclass
class MetricResult:
    values: dict[str, float | int | None]
    protocol: dict[str, Any]


@dataclass
class EvalContext:
    """Everything one evaluation needs; built by :func:`benchmarks.evaluate.evaluate_images`."""

    images: np.ndarray  # generated (or second real set), uint8 NHWC
    reference: ReferenceSet | None
    options: Any  # benchmarks.evaluate.EvalOptions (kept Any to avoid an import cycle)
    cache: MetricCache
    dataset: str | None = None
    data_root: str | None = None
    split: str = "train"
    progress: bool = True
    memo: dict[Any, Any] = field(default_factory=dict)  # features shared by metrics of one run

    @property
    def res(self) -> int:
        return int(self.images.shape[1])

    def need_reference(self, metric: str) -> ReferenceSet:
        if self.reference is None:
            raise UserError(
                f"metric {metric!r} compares against real images: pass --dataset "
                "(or reference images to evaluate_images)."
            )
        ref = self.reference.array
        if ref.shape[1:3] != self.images.shape[1:3]:
            raise UserError(
                f"samples are {self.res}x{self.res} but the reference set "
                f"{self.reference.identity.get('name')} is {ref.shape[1]}x{ref.shape[2]}: export "
                "samples at the data set's resolution (or prepare the data at the samples' one)."
            )
        if ref.shape[3] != self.images.shape[3]:
            raise UserError(
                f"samples have {self.images.shape[3]} channel(s) but the reference set "
                f"has {ref.shape[3]}; they must come from the same data set."
            )
        return self.reference

    def take(self, n: int, metric: str, minimum: int) -> np.ndarray:
        """The first ``min(n, available)`` generated images; refuse fewer than ``minimum``."""
        have = len(self.images)
        if have < minimum:
            raise UserError(f"{metric} needs at least {minimum} samples, got {have}.")
        return self.images[: min(int(n), have)]
