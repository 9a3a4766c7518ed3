"""What every source hands to the preparer: a description plus a stream of items.

A source never writes the cache itself. It resolves where its files are
(raising :class:`gancore.UserError` with the URL / ``--data-root`` hint when
they are missing), fingerprints them, and yields :class:`Item` objects whose
``load()`` decodes one image lazily, so decoding errors are attributed to one
file and a 30,000-image folder is never held in memory.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".pbm",
)


@dataclass
class Item:
    ident: str  # file name or "index 17": what a skipped-file list shows
    load: Callable[[], Image.Image | np.ndarray]
    label: int | None = None


@dataclass
class Chunk:
    """Already-decoded images at the source's native resolution (array sources)."""

    images: np.ndarray  # uint8 (n, native_res, native_res, C)
    labels: np.ndarray | None = None


# ``open(workdir)`` returns (upper bound of the image count, iterator of Item or Chunk).
# ``workdir`` is a scratch folder inside the partial cache (archives are extracted there).
Opener = Callable[[Path], tuple[int, Iterator["Item | Chunk"]]]


@dataclass
class SourceSpec:
    """A resolved source, ready to be prepared."""

    name: str  # canonical data set name, e.g. "cifar10:automobile"
    kind: str  # source family: "digits", "folder", "cifar10", ...
    split: str  # the split actually read (may differ from the one asked; see notes)
    options: dict[str, Any]  # every option that changes the pixels, defaults filled in
    channels: int
    fingerprint: str  # hash of the source files' paths, sizes and mtimes
    open: Opener
    location: str  # where the data came from, for the manifest and messages
    label_names: list[str] | None = None
    num_classes: int | None = None  # None: unlabelled
    label_meaning: str = ""
    native_res: int | None = None  # largest resolution the source defines (digits: 32)
    allow_upscale: bool = False  # tiny sources (8x8 digits, 28x28 MNIST) are upscaled on purpose
    crop: int | None = None  # centred square crop in source pixels (CelebA: 178)
    file_based: bool = False  # decoding errors are bad files (counted, skipped)
    notes: list[str] = field(default_factory=list)  # warnings worth keeping in the manifest
    # The share of the opener's count hint expected to be kept, for the free-space check only
    # (the array writers keep the hint as their capacity): a class subset of CIFAR-10's
    # batches keeps len(classes) / 10 of each batch's 10,000 images.
    keep_fraction: float = 1.0


def fingerprint_files(paths: list[Path], extra: Any = None) -> str:
    """Hash of (path, size, mtime) of every file: cheap, and changes when a file does."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:  # a dangling symlink: fingerprint the link; decoding skips it
            st = os.lstat(p)
        h.update(f"{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(repr(extra).encode())
    return h.hexdigest()[:16]


def open_image(path: str | os.PathLike) -> Image.Image:
    """Decode an image fully now (PIL is lazy), so truncation errors surface here.

    EXIF orientation is applied, so a phone photo stored sideways is used upright.
    """
    with Image.open(path) as img:
        img.load()
        return ImageOps.exif_transpose(img) if img.getexif().get(0x0112, 1) != 1 else img.copy()


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)
