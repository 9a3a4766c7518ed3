"""Multi-scale sliced Wasserstein distance (Karras et al. 2018, section 5 and appendix D).

Follows the official ``metrics/sliced_wasserstein.py`` of tkarras/progressive_growing_of_gans:

- images as float32 pixel values in [0, 255], grey repeated to RGB;
- a Laplacian pyramid built with the 5x5 binomial filter ([1 4 6 4 1]^2 / 256) and mirror
  borders (cv2.pyrDown / pyrUp), levels from the full resolution down to 16x16 (the last
  level is the low-pass residual, as in the official code);
- 128 random 7x7 neighbourhoods per image per level (centres at least 3 pixels from the border);
- each descriptor set normalised per colour channel (its own mean and std);
- 4 repeats x 128 random unit directions; projections sorted; mean |difference|;
- x 1e3 per level, and the average over levels.

Deliberate differences, none of which changes the expected value: neighbourhood positions come
from ``numpy.random.default_rng([seed, level])`` drawn once per level for the whole set (the
official code uses the global numpy RNG per minibatch), so two identical sets give exactly 0;
directions come from ``default_rng([seed, 1000 + level])``; projections are processed in chunks
of directions to bound memory. ``tests/benchmarks/test_metric_swd.py`` re-implements the
procedure with loops and scipy and checks this file against it.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.metrics.base import EvalContext, MetricResult, n_label, to_rgb
from gancore.errors import UserError

NHOOD_SIZE = 7  # official nhood_size
NHOODS_PER_IMAGE = 128  # official nhoods_per_image
DIR_REPEATS = 4  # official dir_repeats
DIRS_PER_REPEAT = 128  # official dirs_per_repeat
MIN_RES = 16  # the pyramid stops at 16x16
BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0], dtype=np.float32)


def pyramid_resolutions(res: int) -> list[int]:
    out = []
    while res >= MIN_RES:
        out.append(res)
        res //= 2
    return out


def _blur(x, scale: float):
    """5x5 binomial filter with mirror ('reflect' in torch) borders, depthwise."""
    import torch
    import torch.nn.functional as F

    k = torch.from_numpy(np.outer(BINOMIAL_5, BINOMIAL_5) / 256.0 * scale).to(x.dtype)
    c = x.shape[1]
    w = k.expand(c, 1, 5, 5).contiguous()
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), w, groups=c)


def laplacian_pyramid(images_u8: np.ndarray, num_levels: int) -> list[np.ndarray]:
    """Official ``generate_laplacian_pyramid`` on uint8 NHWC images -> list of float32 NCHW."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images_u8.transpose(0, 3, 1, 2))).float()
    levels = [x]
    for _ in range(1, num_levels):
        down = _blur(levels[-1], 1.0)[:, :, ::2, ::2]  # pyrDown
        up = torch.zeros_like(levels[-1])
        up[:, :, ::2, ::2] = down
        levels[-1] = levels[-1] - _blur(up, 4.0)  # minus pyrUp(down)
        levels.append(down)
    return [lv.numpy() for lv in levels]


def neighbourhood_positions(
    n_images: int, size: int, level: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Centres (y, x) of the 128 neighbourhoods of every image: arrays of shape (n*128,)."""
    h = NHOOD_SIZE // 2
    rng = np.random.default_rng([seed, level])
    count = n_images * NHOODS_PER_IMAGE
    ys = rng.integers(h, size - h, size=count)
    xs = rng.integers(h, size - h, size=count)
    return ys, xs


def gather_descriptors(level: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """7x7 neighbourhoods of a batch (official ``get_descriptors_for_minibatch``), laid out
    descriptor-last: (C, 7, 7, M), so projections come out contiguous for sorting."""
    n, c, hgt, wid = level.shape
    h = NHOOD_SIZE // 2
    img = (np.arange(n * NHOODS_PER_IMAGE) // NHOODS_PER_IMAGE)[None, None, None, :]
    off = np.arange(-h, h + 1)
    chan = np.arange(c)[:, None, None, None]
    y = ys[None, None, None, :] + off[None, :, None, None]
    x = xs[None, None, None, :] + off[None, None, :, None]
    return level.reshape(-1)[((img * c + chan) * hgt + y) * wid + x]


def swd_features(
    images_u8: np.ndarray, seed: int, batch: int = 256, progress: bool = False
) -> list[np.ndarray]:
    """Normalised descriptors per pyramid level: list of float32 (C*49, n*128) arrays."""
    images = to_rgb(images_u8)
    n, res = len(images), images.shape[1]
    resolutions = pyramid_resolutions(res)
    if not resolutions:
        raise UserError(f"SWD needs images of at least {MIN_RES}x{MIN_RES}; got {res}x{res}.")
    c = images.shape[-1]
    m = n * NHOODS_PER_IMAGE
    desc = [np.empty((c, NHOOD_SIZE, NHOOD_SIZE, m), np.float32) for _ in resolutions]
    pos = [neighbourhood_positions(n, r, lv, seed) for lv, r in enumerate(resolutions)]
    starts = range(0, n, batch)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="SWD descriptors", unit="batch", leave=False)
    for s in starts:
        e = min(s + batch, n)
        pyr = laplacian_pyramid(images[s:e], len(resolutions))
        a, b = s * NHOODS_PER_IMAGE, e * NHOODS_PER_IMAGE
        for lv, level in enumerate(pyr):
            desc[lv][..., a:b] = gather_descriptors(level, pos[lv][0][a:b], pos[lv][1][a:b])
    return [swd_statistics(d) for d in desc]


def swd_statistics(desc: np.ndarray) -> np.ndarray:
    """Official ``finalize_descriptors``: per-channel mean/std normalisation (over all
    descriptors and the 7x7 positions), then flatten to (C*49, M)."""
    mean = desc.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
    desc -= mean
    std = desc.std(axis=(1, 2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
    desc /= np.maximum(std, 1e-12)  # a constant channel (blank images) would divide by 0
    return desc.reshape(-1, desc.shape[-1])


def sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, seed: int, level: int, chunk: int = 32
) -> float:
    """Official ``sliced_wasserstein`` on (D, M) descriptor sets: mean over 4 repeats x 128
    unit directions of the mean absolute difference between sorted projections."""
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets differ in shape: {a.shape} vs {b.shape}")
    rng = np.random.default_rng([seed, 1000 + level])
    results = []
    for _ in range(DIR_REPEATS):
        dirs = rng.standard_normal((a.shape[0], DIRS_PER_REPEAT))
        dirs /= np.sqrt(np.sum(np.square(dirs), axis=0, keepdims=True))
        dirs_t = np.ascontiguousarray(dirs.astype(np.float32).T)  # (directions, D)
        total = 0.0
        for j in range(0, DIRS_PER_REPEAT, chunk):  # chunks bound memory at 16k images
            pa = dirs_t[j : j + chunk] @ a  # (chunk, M), contiguous rows: fast in-place sort
            pb = dirs_t[j : j + chunk] @ b
            pa.sort(axis=1)
            pb.sort(axis=1)
            total += float(np.abs(pa - pb).sum(dtype=np.float64))
        results.append(total / (a.shape[1] * DIRS_PER_REPEAT))
    return float(np.mean(results))


def swd_distance(desc_a: list[np.ndarray], desc_b: list[np.ndarray], seed: int) -> list[float]:
    """Per-level SWD x 1e3 (official scaling), highest resolution first."""
    return [
        sliced_wasserstein(a, b, seed, lv) * 1e3 for lv, (a, b) in enumerate(zip(desc_a, desc_b))
    ]


def compute(ctx: EvalContext) -> MetricResult:
    opts = ctx.options
    ref = ctx.need_reference("swd")
    n = min(opts.swd_n, len(ctx.images), len(ref))
    if n < 2:
        raise UserError(f"SWD needs at least 2 generated and 2 reference images; got {n}.")
    fake = ctx.images[:n]
    real, ref_id = ref.subset(n)
    t0 = time.perf_counter()
    desc_real = swd_features(real, opts.seed, progress=ctx.progress)
    desc_fake = swd_features(fake, opts.seed, progress=ctx.progress)
    dists = swd_distance(desc_real, desc_fake, opts.seed)
    label = n_label(n)
    values: dict[str, float | int | None] = {
        f"swd_{label}_{r}px": d for r, d in zip(pyramid_resolutions(ctx.res), dists)
    }
    values[f"swd_{label}_avg"] = float(np.mean(dists))
    protocol = {
        "n": n,
        "n_requested": opts.swd_n,
        "reference": ref_id,
        "seed": opts.seed,
        "levels": pyramid_resolutions(ctx.res),
        "nhood_size": NHOOD_SIZE,
        "nhoods_per_image": NHOODS_PER_IMAGE,
        "dir_repeats": DIR_REPEATS,
        "dirs_per_repeat": DIRS_PER_REPEAT,
        "scale": 1e3,
        "note": "ProGAN official protocol; the same N of real and generated images (official "
        "code asserts equal descriptor counts). Compare against the real-vs-real floor "
        "at the same N.",
        "seconds_compute": time.perf_counter() - t0,
    }
    return MetricResult(values, protocol)
