"""The exported-samples contract: ``samples.npz`` with uint8 NHWC images and seeds.

Every model's ``sample`` CLI writes this; every metric reads only this (or an
image folder), never a framework model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gancore.errors import UserError
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
    """Read a ``samples.npz``; clear errors for anything that is not one."""
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"samples file {path} does not exist; export one with the model's sample CLI."
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            if "images" not in data:
                raise UserError(f"{path} has no 'images' array (keys: {sorted(data.keys())}).")
            images = data["images"]
            seeds = data["seeds"] if "seeds" in data else np.arange(len(images), dtype=np.int64)
            meta = json.loads(str(data["meta"])) if "meta" in data else {}
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable samples .npz file: {exc}") from exc
    validate_images(images, str(path))
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
