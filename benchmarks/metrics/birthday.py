"""Birthday-paradox support estimate (Arora & Zhang 2017, "Do GANs learn the distribution?").

The paper's test: draw a batch of s samples and look at its closest pairs; if a batch of size
s contains a duplicate with probability >= 1/2, the support size is about s^2. The paper
decides "duplicate" by human inspection of the closest pairs. This module does it
automatically, which is an approximation:

- features: pixels in [0, 1] (box-downsampled to at most ``birthday_res``, default 64);
- statistics: for each of up to ``birthday_batches`` disjoint batches of s generated samples,
  all pairwise L2 distances (batched matrix products), and their closest pairs;
- threshold: a generated pair counts as a duplicate when it is closer than
  ``birthday_dup_factor`` (default 0.5) times the closest pair found among s *real* images
  (same s, up to the same number of batches). The real data sets the scale of "as close as two
  different images get"; the factor 0.5 is a choice, made because with factor 1 a generator
  equal to the data would still produce a "duplicate" in about half of the batches (the two
  minima are exchangeable), which measured as a false duplicate on cifar10-cars test vs train;
- estimate: with c duplicate pairs per batch on average, a uniform support of size S gives
  E[c] = s(s-1) / (2S), so S ~ s(s-1) / (2c) (``birthday_support_s*``, null when c = 0:
  then the support is likely larger than about s^2 / 2). ``birthday_dup_frac_s*`` is the
  fraction of batches holding a duplicate (the paper's >= 1/2 criterion).

The closest pairs are saved as a PNG (each pair side by side, labelled with its distance, a
caption saying what was measured) for a person to judge, as the paper intends; the report
shows it. Treat the number as a screening figure.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.metrics.base import EvalContext, MetricResult, n_label
from gancore.errors import UserError

PAIRS_SHOWN = 10


def birthday_features(images_u8: np.ndarray, max_res: int) -> np.ndarray:
    x = images_u8.astype(np.float32) / 255.0
    while x.shape[1] > max_res:
        n, h, w, c = x.shape
        x = x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    return x.reshape(len(x), -1)


def pairwise_distances(feats: np.ndarray, block: int = 1024) -> np.ndarray:
    """Full (s, s) L2 distance matrix, +inf on and below the diagonal (each pair once)."""
    f = feats.astype(np.float64)
    sq = np.sum(f * f, axis=1)
    s = len(f)
    d = np.empty((s, s), np.float64)
    for a in range(0, s, block):
        d[a : a + block] = sq[a : a + block, None] + sq[None, :] - 2.0 * f[a : a + block] @ f.T
    d = np.sqrt(np.clip(d, 0.0, None))
    d[np.tril_indices(s)] = np.inf
    return d


def closest_pairs(dist: np.ndarray, k: int) -> list[tuple[int, int, float]]:
    flat = np.argpartition(dist, min(k, dist.size - 1), axis=None)[:k]
    flat = flat[np.argsort(dist.flat[flat])]
    return [
        (int(i), int(j), float(dist[i, j]))
        for i, j in zip(*np.unravel_index(flat, dist.shape))
        if np.isfinite(dist[i, j])
    ]


def batch_statistics(
    feats: np.ndarray, s: int, batches: int, threshold: float | None = None
) -> list[dict]:
    """Per batch: its closest pairs (indices into ``feats``, closest first) and, given a
    threshold, how many pairs are closer than it."""
    out = []
    for b in range(batches):
        d = pairwise_distances(feats[b * s : (b + 1) * s])
        pairs = [(i + b * s, j + b * s, v) for i, j, v in closest_pairs(d, PAIRS_SHOWN)]
        dups = int(np.sum(d < threshold)) if threshold is not None else None
        out.append({"pairs": pairs, "dups": dups})
    return out


def support_estimate(dup_counts: list[int], s: int) -> float | None:
    mean_c = float(np.mean(dup_counts)) if dup_counts else 0.0
    return s * (s - 1) / (2.0 * mean_c) if mean_c > 0 else None


def save_pairs_png(
    path: Path,
    images_u8: np.ndarray,
    pairs: list[tuple[int, int, float]],
    caption: str = "",
    threshold: float | None = None,
) -> None:
    """The closest pairs for a person to judge: each pair side by side, labelled with its rank
    and L2 distance (red, "dup", when under ``threshold``), at least 512 px wide, with
    ``caption`` (what was measured) above."""
    from PIL import Image, ImageDraw, ImageFont

    from gancore.grid import save_image

    if not pairs:
        return
    res = images_u8.shape[1]
    scale = max(1, -(-64 // res))  # small samples upscaled (nearest) to >= 64 px each
    ncol = 5 if res * scale <= 96 else 2
    side, gap = res * scale, 4
    tile_w = 2 * side + gap
    labels = [
        f"#{n + 1} d={d:.3g}" + (" dup" if threshold is not None and d < threshold else "")
        for n, (_, _, d) in enumerate(pairs)
    ]
    font_px = max(12, side // 6)
    font = ImageFont.load_default(size=font_px)
    while font_px > 9 and max(font.getlength(t) for t in labels) > tile_w:
        font_px -= 1  # the label stays under its own pair, never under the next one
        font = ImageFont.load_default(size=font_px)
    tile_h = side + font_px + 8
    nrow = -(-len(pairs) // ncol)
    width = max(512, ncol * (tile_w + 3 * gap) + gap)
    canvas = Image.new("RGB", (width, nrow * (tile_h + 2 * gap) + gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for n, (i, j, d) in enumerate(pairs):
        r, c = divmod(n, ncol)
        x, y = gap + c * (tile_w + 3 * gap), gap + r * (tile_h + 2 * gap)
        for k, idx in enumerate((i, j)):
            im = Image.fromarray(np.squeeze(images_u8[idx])).convert("RGB")
            canvas.paste(im.resize((side, side), Image.NEAREST), (x + k * (side + gap), y))
        dup = threshold is not None and d < threshold
        draw.text((x, y + side + 3), labels[n], fill=(180, 0, 0) if dup else (0, 0, 0), font=font)
    save_image(path, np.asarray(canvas), caption=caption or None)


def compute(ctx: EvalContext) -> MetricResult:
    opts = ctx.options
    s = min(opts.birthday_s, len(ctx.images))
    if s < 2:
        raise UserError(f"the birthday test needs at least 2 samples, got {len(ctx.images)}.")
    batches = max(1, min(opts.birthday_batches, len(ctx.images) // s))
    res = min(opts.birthday_res, ctx.res)
    t0 = time.perf_counter()
    gen = ctx.images[: s * batches]

    threshold, ref_note = None, None
    if ctx.reference is not None:
        ref = ctx.need_reference("birthday")
        s_real = min(s, len(ref))
        real_batches = max(1, min(batches, len(ref) // max(s_real, 1)))
        real, ref_id = ref.subset(s_real * real_batches)

        def real_min() -> float:
            rstats = batch_statistics(birthday_features(real, res), s_real, real_batches)
            return float(min(st["pairs"][0][2] for st in rstats))

        key = {"reference": ref_id, "s": s_real, "batches": real_batches, "res": res}
        real_closest, hit = ctx.cache.json_value("birthday-threshold", key, real_min)
        threshold = opts.birthday_dup_factor * real_closest
        ref_note = {
            "reference": ref_id,
            "s_real": s_real,
            "real_batches": real_batches,
            "real_closest_pair": real_closest,
            "dup_factor": opts.birthday_dup_factor,
            "threshold_cached": hit,
        }
    stats = batch_statistics(birthday_features(gen, res), s, batches, threshold)
    label = n_label(s)
    all_pairs = sorted((p for st in stats for p in st["pairs"]), key=lambda p: p[2])
    values: dict[str, float | int | None] = {f"birthday_min_dist_s{label}": all_pairs[0][2]}
    protocol: dict = {
        "s": s,
        "batches": batches,
        "features": f"pixels in [0,1] at {res}x{res}, L2",
        "closest_pairs": [[i, j, round(v, 6)] for i, j, v in all_pairs[:PAIRS_SHOWN]],
        "note": "automatic duplicate rule (closer than dup_factor x the closest real "
        "pair) approximates the paper's human inspection; look at the PNG",
    }
    if threshold is not None:
        dups = [st["dups"] for st in stats]
        values[f"birthday_dup_pairs_s{label}"] = int(sum(dups))
        values[f"birthday_dup_frac_s{label}"] = float(np.mean([d > 0 for d in dups]))
        values[f"birthday_support_s{label}"] = support_estimate(dups, s)
        protocol.update(
            threshold=threshold,
            dup_pairs_per_batch=dups,
            **ref_note,
            estimate="s(s-1)/(2 * mean duplicate pairs per batch); null when none",
        )
    if opts.artifact_dir:
        png = Path(opts.artifact_dir) / f"birthday_pairs_s{label}.png"
        # One line (the caption strip holds one): the rest is in the protocol.
        caption = f"Closest pairs, {batches} x {s} samples, L2 on {res}px pixels" + (
            f"; duplicate < {threshold:.3g}" if threshold is not None else ""
        )
        save_pairs_png(png, gen, all_pairs[:PAIRS_SHOWN], caption, threshold)
        protocol["pairs_png"] = str(png)
    protocol["seconds_compute"] = time.perf_counter() - t0
    return MetricResult(values, protocol)
