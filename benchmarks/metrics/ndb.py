"""NDB/K and JS (Richardson & Weiss 2018, "On GANs and GMMs", section 4).

- features: pixels in [0, 1], box-downsampled to at most ``ndb_res`` (default 32) and
  flattened, no whitening (the paper's default; its CelebA runs also used pixels);
- statistics: K-means (k-means++ init, fixed seed, 100 iterations) on the real samples -- above
  1000 dimensions on a random sixth of them, as the authors' code -- then each centre is the
  mean of its members in all dimensions; the bins are the Voronoi cells of the centres; each
  set's statistic is its bin histogram (nearest centre, L2);
- distance: per bin a two-proportion z-test (pooled proportion, two-sided) of the real vs the
  generated proportion at significance 0.05; NDB = number of significantly different bins,
  reported also as NDB/K, and the Jensen-Shannon divergence (natural log) of the histograms.

K rule (when not given): K = clip(N_real // 500, 10, 100) -- about 500 real samples per bin
(the benchmark's choice), at least 10 bins, at most the paper's 100. The centres and the real histogram are
cached per reference set, K, resolution and seed.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.stats import norm

from benchmarks.metrics.base import EvalContext, MetricResult, n_label
from gancore.errors import UserError

ALPHA = 0.05
K_MIN, K_MAX, PER_BIN = 10, 100, 500


def choose_k(n_real: int) -> int:
    return int(np.clip(n_real // PER_BIN, K_MIN, K_MAX))


def ndb_features(images_u8: np.ndarray, max_res: int) -> np.ndarray:
    x = images_u8.astype(np.float32) / 255.0
    while x.shape[1] > max_res:  # 2x2 box average, the data layer's downsampling
        n, h, w, c = x.shape
        x = x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    return x.reshape(len(x), -1)


def fit_bins(real_features: np.ndarray, k: int, seed: int) -> np.ndarray:
    """K-means centres on the real samples (the paper's binning).

    As the authors' ``ndb.py``: above 1000 dimensions the clustering runs on a random sixth of
    the dimensions (for speed), and each centre is then the full-dimensional mean of its
    members; 100 k-means iterations."""
    from sklearn.cluster import KMeans

    n, d = real_features.shape
    if n < 2 * k:
        raise UserError(f"NDB with K={k} bins needs at least {2 * k} real images; got {n}.")
    dims = np.random.default_rng([seed, 17]).permutation(d)[: d // 6] if d > 1000 else np.arange(d)
    km = KMeans(n_clusters=k, n_init=1, max_iter=100, random_state=seed)
    labels = km.fit_predict(real_features[:, dims])
    centres = np.stack([real_features[labels == i].mean(axis=0) for i in range(k)])
    return centres.astype(np.float32)


def bin_histogram(features: np.ndarray, centres: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Counts of samples per nearest centre (L2), batched matrix products."""
    c2 = np.sum(centres.astype(np.float64) ** 2, axis=1)
    labels = []
    for s in range(0, len(features), batch):
        f = features[s : s + batch].astype(np.float64)
        d = c2[None, :] - 2.0 * f @ centres.T.astype(np.float64)  # ||f||^2 is constant per row
        labels.append(np.argmin(d, axis=1))
    return np.bincount(np.concatenate(labels), minlength=len(centres))


def two_proportion_z(count_a: np.ndarray, n_a: int, count_b: np.ndarray, n_b: int) -> np.ndarray:
    """Two-sided p-values of H0: same proportion, per bin (pooled standard error)."""
    pa, pb = count_a / n_a, count_b / n_b
    p = (count_a + count_b) / (n_a + n_b)
    se = np.sqrt(p * (1.0 - p) * (1.0 / n_a + 1.0 / n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (pa - pb) / se, 0.0)
    return 2.0 * norm.cdf(-np.abs(z))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))

    return 0.5 * (kl(p) + kl(q))


def ndb_distance(real_hist: np.ndarray, gen_hist: np.ndarray, alpha: float = ALPHA) -> dict:
    pvals = two_proportion_z(real_hist, int(real_hist.sum()), gen_hist, int(gen_hist.sum()))
    different = np.flatnonzero(pvals < alpha)
    return {
        "ndb": int(len(different)),
        "js": js_divergence(real_hist, gen_hist),
        "different_bins": different.tolist(),
    }


def compute(ctx: EvalContext) -> MetricResult:
    opts = ctx.options
    ref = ctx.need_reference("ndb")
    gen = ctx.take(opts.ndb_n, "NDB", minimum=2)
    n_real = min(opts.ndb_ref_n, len(ref))
    k = opts.ndb_k or choose_k(n_real)
    res = min(opts.ndb_res, ctx.res)
    t0 = time.perf_counter()
    real, ref_id = ref.subset(n_real)

    def fit() -> dict[str, np.ndarray]:
        feats = ndb_features(real, res)
        centres = fit_bins(feats, k, opts.seed)
        return {"centres": centres, "real_hist": bin_histogram(feats, centres)}

    key = {
        "reference": ref_id,
        "k": k,
        "res": res,
        "seed": opts.seed,
        "kmeans": "sklearn n_init=1 max_iter=100, d/6 dims above 1000",
    }
    stats, hit = ctx.cache.arrays("ndb-bins", key, fit)
    gen_hist = bin_histogram(ndb_features(gen, res), stats["centres"])
    out = ndb_distance(stats["real_hist"], gen_hist)
    values: dict[str, float | int | None] = {
        f"ndb_k{k}": out["ndb"],
        f"ndb_frac_k{k}": out["ndb"] / k,
        f"ndb_js_k{k}": out["js"],
    }
    protocol = {
        "n": len(gen),
        "n_label": n_label(len(gen)),
        "n_requested": opts.ndb_n,
        "k": k,
        "k_rule": f"clip(N_real // {PER_BIN}, {K_MIN}, {K_MAX})" if not opts.ndb_k else "given",
        "reference": ref_id,
        "features": f"pixels in [0,1] at {res}x{res}",
        "alpha": ALPHA,
        "test": "two-proportion z-test, pooled, two-sided",
        "js": "natural log",
        "different_bins": out["different_bins"],
        "gen_hist": gen_hist.tolist(),
        "real_hist": stats["real_hist"].tolist(),
        "bins_cached": hit,
        "seconds_compute": time.perf_counter() - t0,
    }
    return MetricResult(values, protocol)
