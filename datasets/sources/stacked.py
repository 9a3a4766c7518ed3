"""Stacked digit data sets: three independent digits, one per RGB channel.

Stacked MNIST (Metz et al. 2017 "Unrolled GANs"; Srivastava et al. 2017
"VEEGAN"; Lin et al. 2018 "PacGAN") has 10^3 = 1000 modes, one per digit
triple; a generator's mode coverage is measured by classifying each channel.
The label stored here is ``100 * d_red + 10 * d_green + d_blue``.

Both stacked sets are defined at 32x32: each digit is first brought to 32x32
grey (bicubic upscaling from 28x28 MNIST or 8x8 scikit-learn digits), then
three of them are stacked. The digit triples are drawn uniformly with
``numpy.random.default_rng([seed, 3])``, so ``count`` and ``seed`` fully
determine the set.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image

from datasets.sources.base import Chunk
from gancore.errors import UserError

STACKED_RES = 32
STACKED_LABEL_MEANING = "100 * red digit + 10 * green digit + blue digit (1000 modes)"
_CHUNK = 4096


def upscale_digits(digits_u8: np.ndarray, res: int = STACKED_RES) -> np.ndarray:
    """(N, h, w) uint8 grey digits -> (N, res, res) uint8 with PIL bicubic (clipped to 0..255)."""
    out = np.empty((len(digits_u8), res, res), dtype=np.uint8)
    for i, d in enumerate(digits_u8):
        img = Image.fromarray(d, "L")
        out[i] = np.asarray(
            img if img.size == (res, res) else img.resize((res, res), Image.BICUBIC)
        )
    return out


def stacked_triples(n_digits: int, count: int, seed: int) -> np.ndarray:
    """(count, 3) indices of the digits in the red, green and blue channels."""
    rng = np.random.default_rng([seed, 3])  # the extra word keeps this stream apart from others
    return rng.integers(0, n_digits, size=(count, 3))


def stacked_chunks(
    digits32: np.ndarray, labels: np.ndarray, count: int, seed: int
) -> tuple[int, Iterator[Chunk]]:
    """``count`` stacked 32x32x3 images built from 32x32 grey digits, in chunks."""
    triples = stacked_triples(len(digits32), count, seed)

    def gen() -> Iterator[Chunk]:
        for s in range(0, count, _CHUNK):
            t = triples[s : s + _CHUNK]
            images = np.stack([digits32[t[:, 0]], digits32[t[:, 1]], digits32[t[:, 2]]], axis=-1)
            lab = 100 * labels[t[:, 0]] + 10 * labels[t[:, 1]] + labels[t[:, 2]]
            yield Chunk(images, lab.astype(np.int64))

    return count, gen()


def check_stacked_options(options: dict, default_count: int) -> dict:
    """Validate and fill ``count`` / ``seed`` for a stacked set."""
    count = options.get("count")
    count = default_count if count is None else int(count)
    seed = options.get("seed")
    seed = 0 if seed is None else int(seed)
    if count < 1:
        raise UserError(f"--count must be positive, got {count}")
    if seed < 0:
        raise UserError(f"--seed must be non-negative, got {seed}")
    return {"count": count, "seed": seed}
