"""The exported-samples contract: ``samples.npz`` with uint8 NHWC images and seeds.

Every model's ``sample`` CLI writes this; every metric reads only this (or an
image folder), never a framework model.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from gancore.errors import UserError, file_error
from gancore.io import atomic_path


def save_samples(
    path: str | os.PathLike,
    images: np.ndarray,
    seeds: np.ndarray,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write ``images`` (uint8 NHWC, 1 or 3 channels) and their per-image ``seeds``."""
    images = np.asarray(images)
    seeds = np.asarray(seeds, dtype=np.int64)
    validate_images(images, "images to save")
    if seeds.shape != (images.shape[0],):
        raise ValueError(
            f"need one seed per image: {images.shape[0]} images, seeds shape {seeds.shape}"
        )
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, images=images, seeds=seeds, meta=np.array(json.dumps(meta or {})))


def load_samples(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read a ``samples.npz``; a one-line :class:`UserError` for anything that is not one."""
    path = Path(path)
    remedy = "export samples with the model's sample CLI (it writes a samples.npz)"
    if not path.exists():
        raise UserError(f"samples file {path} does not exist; {remedy}.")
    if path.is_dir():
        raise UserError(f"samples file {path} is a folder; pass the samples.npz inside it.")
    if path.stat().st_size == 0:
        raise UserError(f"samples file {path} is empty (0 bytes); {remedy} again.")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{file_error(path, exc, 'samples file')}; {remedy} again.") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise UserError(
            f"samples file {path} is a single .npy array, not a samples .npz with 'images' "
            f"and 'seeds'; {remedy}, or write one with gancore.samples.save_samples."
        )
    try:
        with data:
            if "images" not in data:
                raise UserError(f"{path} has no 'images' array (keys: {sorted(data.keys())}).")
            images = data["images"]
            seeds = data["seeds"] if "seeds" in data else np.arange(len(images), dtype=np.int64)
            meta = json.loads(str(data["meta"])) if "meta" in data else {}
    # a truncated archive fails when a member is read: BadZipFile, zlib.error, EOFError, ...
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise UserError(f"{file_error(path, exc, 'samples file')}; {remedy} again.") from exc
    validate_images(images, str(path))
    if not isinstance(meta, dict):
        raise UserError(f"{path}: 'meta' must be a JSON object, got {type(meta).__name__}.")
    if seeds.shape != (len(images),) or not np.issubdtype(seeds.dtype, np.integer):
        raise UserError(
            f"{path}: 'seeds' must hold one integer per image ({len(images)} images), got "
            f"{seeds.dtype} of shape {seeds.shape}; {remedy} again."
        )
    return images, seeds, meta


def validate_images(images: np.ndarray, what: str) -> None:
    if images.dtype != np.uint8:
        raise UserError(
            f"{what}: images must be uint8 in [0, 255], got dtype {images.dtype}. "
            "Convert model outputs with gancore.grid.to_uint8."
        )
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise UserError(
            f"{what}: images must be NHWC with 1 or 3 channels, got shape {images.shape}."
        )
    if images.shape[1] != images.shape[2]:
        raise UserError(f"{what}: images must be square, got {images.shape[1]}x{images.shape[2]}.")
