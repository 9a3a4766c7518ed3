"""MS-SSIM diversity (Odena et al. 2017; ProGAN paper table 1), vectorised in torch.

Protocol, as the official ProGAN ``metrics/ms_ssim.py`` (itself the TensorFlow models
implementation of Wang et al. 2003): disjoint consecutive pairs (0,1), (2,3), ... of
generated images, pixel values in [0, 255] (max_val 255), 5 scales with weights
(0.0448, 0.2856, 0.3001, 0.2363, 0.1333), an 11x11 Gaussian window with sigma 1.5 and
'valid' borders, 2x2 average downsampling between scales, k1 = 0.01, k2 = 0.03, negative
values clipped to 0, average over pairs at the end. Lower = more diverse samples.

Small images: the window cannot exceed the image, so at each scale it is clipped to
``min(11, H, W)`` with sigma scaled by the same factor (the official behaviour); for 32x32
images the five scales (32, 16, 8, 4, 2 pixels) use 11, 11, 8, 4 and 2 pixel windows -- values
at such sizes are not comparable to published high-resolution figures. ``tf.image.ssim_multiscale`` refuses images
smaller than 161x161 instead.

Channels: ``channel_mode="progan"`` (default) averages SSIM/CS over the colour channels at
each scale before combining scales, as the official ProGAN code; ``"per_channel"`` combines
scales per channel and averages at the end, as ``tf.image.ssim_multiscale``. They coincide for
grey images; ``tests/benchmarks/test_metric_msssim.py`` checks both against TensorFlow.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.metrics.base import EvalContext, MetricResult, n_label
from gancore.errors import UserError

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
FILTER_SIZE = 11
FILTER_SIGMA = 1.5
K1, K2 = 0.01, 0.03
MAX_VAL = 255.0


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    """1-D factor of the normalised 2-D Gaussian (MATLAB fspecial): g2d = outer(g, g)."""
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _ssim_cs(x, y, filter_size: int, sigma: float):
    """Per-image, per-channel mean SSIM and contrast-structure terms: two (B, C) tensors.

    Float32 (as TensorFlow and the official code). The separable window is applied as two
    1-D 'valid' convolutions, written as products with banded matrices (``Gy @ t @ Gx^T``,
    row i of ``Gy`` holding the window at columns i..i+size-1), which equals the 2-D
    convolution; the five maps (x, y, x^2, y^2, xy) are blurred in one batched product, several
    times faster on a CPU than five depthwise convolutions."""
    import torch

    b, c, h, w = x.shape
    size = min(filter_size, h, w)
    g = torch.from_numpy(gaussian_window(size, size * sigma / filter_size)).to(x.dtype)

    def band(n: int):
        m = torch.zeros(n - size + 1, n, dtype=x.dtype)
        for i in range(n - size + 1):
            m[i, i : i + size] = g
        return m

    gy, gx = band(h), band(w)
    maps = torch.stack((x, y, x * x, y * y, x * y))  # (5, B, C, H, W)
    mu1, mu2, xx, yy, xy = gy @ maps @ gx.T
    s11 = xx - mu1 * mu1
    s22 = yy - mu2 * mu2
    s12 = xy - mu1 * mu2
    c1, c2 = (K1 * MAX_VAL) ** 2, (K2 * MAX_VAL) ** 2
    cs_map = (2.0 * s12 + c2) / (s11 + s22 + c2)
    ssim_map = (2.0 * mu1 * mu2 + c1) / (mu1 * mu1 + mu2 * mu2 + c1) * cs_map
    return ssim_map.mean(dim=(2, 3)), cs_map.mean(dim=(2, 3))


def _downsample(x):
    """2x2 box average; odd sizes padded symmetrically first (as tf.image.ssim_multiscale)."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")  # symmetric pad of 1 == replicate
    return F.avg_pool2d(x, 2)


def msssim_pairs(
    a_u8: np.ndarray,
    b_u8: np.ndarray,
    channel_mode: str = "progan",
    filter_size: int = FILTER_SIZE,
    filter_sigma: float = FILTER_SIGMA,
    weights: tuple[float, ...] = WEIGHTS,
):
    """MS-SSIM of each pair (a[i], b[i]) of uint8 NHWC images: float64 array of shape (B,)."""
    import torch

    if channel_mode not in ("progan", "per_channel"):
        raise ValueError(f"channel_mode must be 'progan' or 'per_channel', got {channel_mode!r}")
    x = torch.from_numpy(np.ascontiguousarray(a_u8.transpose(0, 3, 1, 2))).float()
    y = torch.from_numpy(np.ascontiguousarray(b_u8.transpose(0, 3, 1, 2))).float()
    w = torch.tensor(weights, dtype=torch.float64)
    css, ssim = [], None
    for scale in range(len(weights)):
        if scale:
            x, y = _downsample(x), _downsample(y)
        s, cs = _ssim_cs(x, y, filter_size, filter_sigma)
        if channel_mode == "progan":
            s, cs = s.mean(dim=1, keepdim=True), cs.mean(dim=1, keepdim=True)
        css.append(cs.clamp_min(0.0))
        ssim = s.clamp_min(0.0)
    terms = torch.stack(css[:-1] + [ssim], dim=-1)  # (B, C', scales)
    per = torch.prod(terms.double() ** w, dim=-1)  # weighted geometric mean over scales
    return per.mean(dim=1).numpy()


def msssim_features(
    images_u8: np.ndarray,
    pairs: int,
    batch: int = 256,
    progress: bool = False,
    channel_mode: str = "progan",
) -> np.ndarray:
    """MS-SSIM of the first ``pairs`` disjoint consecutive pairs (0,1), (2,3), ..."""
    scores = []
    starts = range(0, pairs, batch)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="MS-SSIM pairs", unit="batch", leave=False)
    for s in starts:
        e = min(s + batch, pairs)
        chunk = images_u8[2 * s : 2 * e]
        scores.append(msssim_pairs(chunk[0::2], chunk[1::2], channel_mode))
    return np.concatenate(scores)


def msssim_statistics(scores: np.ndarray) -> float:
    """The reported value is the mean over pairs (the official code averages at the end)."""
    return float(np.mean(scores))


def compute(ctx: EvalContext) -> MetricResult:
    opts = ctx.options
    gen = ctx.take(2 * opts.msssim_pairs, "MS-SSIM", minimum=2)
    pairs = len(gen) // 2
    t0 = time.perf_counter()
    value = msssim_statistics(msssim_features(gen, pairs, progress=ctx.progress))
    values: dict[str, float | int | None] = {f"msssim_{n_label(pairs)}_pairs": value}
    protocol = {
        "pairs": pairs,
        "pairs_requested": opts.msssim_pairs,
        "pairing": "(0,1),(2,3),...",
        "weights": list(WEIGHTS),
        "filter_size": FILTER_SIZE,
        "filter_sigma": FILTER_SIGMA,
        "channel_mode": "progan",
        "max_val": MAX_VAL,
        "window_per_scale": [min(FILTER_SIZE, ctx.res >> s) for s in range(len(WEIGHTS))],
        "note": "window clipped to the image size at small scales (sigma scaled with it); "
        "values below ~176x176 are not comparable to published high-resolution ones",
    }
    if ctx.reference is not None:
        ref = ctx.need_reference("msssim")
        real_pairs = min(pairs, len(ref) // 2)
        if real_pairs >= 1:
            real, ref_id = ref.subset(2 * real_pairs)

            def real_value() -> float:
                return msssim_statistics(msssim_features(real, real_pairs, progress=ctx.progress))

            key = {"metric": "msssim_real", "reference": ref_id, "pairs": real_pairs}
            rv, hit = ctx.cache.json_value("msssim-real", key, real_value)
            values[f"msssim_real_{n_label(real_pairs)}_pairs"] = float(rv)
            protocol.update(real_pairs=real_pairs, reference=ref_id, real_cached=hit)
    elif pairs < 1:
        raise UserError("MS-SSIM needs at least one pair of images.")
    protocol["seconds_compute"] = time.perf_counter() - t0
    return MetricResult(values, protocol)
