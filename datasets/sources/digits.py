"""``digits`` / ``stacked-digits``: scikit-learn's bundled 8x8 digits, no file, no network.

The 1,797 digits (UCI "Optical Recognition of Handwritten Digits", test part)
ship inside scikit-learn, so this is the embedded default that works on any
machine. Pixel values are 0..16; they are scaled to 0..255 (x 255/16, rounded)
and upscaled to 32x32 with PIL's bicubic filter. There is no official
train/test split, so the whole set is the ``train`` split and ``test`` is
refused rather than silently being the same images.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from datasets.sources.base import Chunk, SourceSpec, fingerprint_files
from datasets.sources.stacked import (
    STACKED_LABEL_MEANING,
    STACKED_RES,
    check_stacked_options,
    stacked_chunks,
    upscale_digits,
)
from gancore.errors import UserError

# The Stacked-MNIST papers' training set size (PacGAN / VEEGAN: 128,000 triples), so the offline
# default behaves like Stacked MNIST: with only 10,000 triples the discriminator memorised them and
# DCGAN covered 504 of 1000 modes after 40k images against 785 with 128,000 triples (same seed and
# settings; README "Data sets"). About 500 MB of cache, built in seconds.
DEFAULT_STACKED_DIGITS_COUNT = 128_000


def _digits_file() -> Path:
    """The bundled data file, found without importing scikit-learn (1-2 s), so that a
    cache hit stays instant."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the digits data sets need scikit-learn (pip install scikit-learn).")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"


def load_digits_u8() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) uint8 images in 0..255 and (1797,) int64 labels."""
    import sklearn.datasets as skd

    bunch = skd.load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


def digits_source(name: str, split: str, options: dict) -> SourceSpec:
    if split != "train":
        raise UserError(
            f"{name!r} has only one split (scikit-learn's 1,797 digits have no official test set); "
            "use --split train."
        )
    data_file = _digits_file()
    fp = fingerprint_files([data_file] if data_file.exists() else [], extra="sklearn-digits")
    common = dict(
        split="train",
        fingerprint=fp,
        location=f"scikit-learn bundled digits ({data_file})",
        native_res=STACKED_RES,
        allow_upscale=True,
    )
    if name == "digits":

        def open_digits(_workdir: Path):
            images8, labels = load_digits_u8()
            digits32 = upscale_digits(images8, STACKED_RES)
            return len(digits32), iter([Chunk(digits32[..., None], labels)])

        return SourceSpec(
            name="digits",
            kind="digits",
            options={},
            channels=1,
            open=open_digits,
            label_names=[str(d) for d in range(10)],
            num_classes=10,
            label_meaning="the digit",
            **common,
        )
    opts = check_stacked_options(options, DEFAULT_STACKED_DIGITS_COUNT)

    def open_stacked(_workdir: Path):
        images8, labels = load_digits_u8()
        return stacked_chunks(
            upscale_digits(images8, STACKED_RES), labels, opts["count"], opts["seed"]
        )

    return SourceSpec(
        name="stacked-digits",
        kind="stacked-digits",
        options=opts,
        channels=3,
        open=open_stacked,
        num_classes=1000,
        label_meaning=STACKED_LABEL_MEANING,
        **common,
    )
