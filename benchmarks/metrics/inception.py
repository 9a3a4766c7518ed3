"""FID, KID and Inception Score from torch-fidelity's InceptionV3 features.

- features: torch-fidelity's "inception-v3-compat" network: pool3 ("2048") for FID / KID,
  "logits_unbiased" for IS (torch-fidelity's defaults), see :mod:`benchmarks.metrics.fidelity`;
- statistics: mean and covariance (float64) for FID, cached for the reference set;
- distance: the Frechet distance computed here (and checked in the tests against the closed
  form on Gaussians and against ``torch_fidelity.calculate_metrics``); KID and IS use
  torch-fidelity's own ``kid_features_to_metric`` / ``isc_features_to_metric`` unchanged.

N: the first ``inception_n`` (default 5000) generated images -- the same N for every model,
stated in the key (``fid_5k``); the reference is the first ``inception_ref_n`` (default
50,000, or all) images of the split in the fixed shuffled order.

Few samples: FID estimates a 2048x2048 covariance, full rank only with N > 2048. With fewer
samples it is still computed (the value is biased upward but comparable between models at the
same N) and the protocol carries a warning; it is refused only below N = 2.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from benchmarks.metrics.base import EvalContext, MetricResult, n_label
from benchmarks.metrics.fidelity import features_for
from benchmarks.metrics.weights import INCEPTION
from gancore.errors import UserError

FID_LAYER, ISC_LAYER = "2048", "logits_unbiased"
LAYERS = (FID_LAYER, ISC_LAYER)  # one pass extracts both, shared by fid / kid / isc


def fid_statistics(features: np.ndarray) -> dict[str, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    return {"mu": f.mean(axis=0), "sigma": np.cov(f, rowvar=False)}


def psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (negative rounding clipped)."""
    w, v = np.linalg.eigh((s + s.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    sqrt_sigma1: np.ndarray | None = None,
) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    Tr((S1 S2)^(1/2)) = Tr((S1^(1/2) S2 S1^(1/2))^(1/2)): the symmetric form has real,
    non-negative eigenvalues, so no complex square root is needed (torch-fidelity takes the
    eigenvalues of S1 S2 instead; the tests check the two agree). ``sqrt_sigma1`` (from
    :func:`psd_sqrt`, e.g. cached with a reference set's statistics) saves one d x d
    eigen-decomposition.
    """
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"statistics differ in shape: {mu1.shape}/{sigma1.shape} vs {mu2.shape}/{sigma2.shape}"
        )
    r1 = psd_sqrt(sigma1) if sqrt_sigma1 is None else sqrt_sigma1
    m = r1 @ sigma2 @ r1
    tr_covmean = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2.0), 0.0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def _low_rank_warning(n: int, dim: int) -> str | None:
    if n > dim:
        return None
    msg = (
        f"FID with {dim}-d features needs N > {dim} for a full-rank covariance; got N={n}. "
        "The value is biased upward; compare it only with values at the same N."
    )
    warnings.warn(msg, stacklevel=3)
    return msg


def _gen_and_ref(ctx: EvalContext, metric: str, minimum: int):
    ref = ctx.need_reference(metric)
    gen = ctx.take(ctx.options.inception_n, metric, minimum=minimum)
    n_ref = min(ctx.options.inception_ref_n, len(ref))
    if n_ref < minimum:
        raise UserError(f"{metric} needs at least {minimum} reference images, got {n_ref}.")
    fg, note = features_for(ctx, INCEPTION, ctx.options.inception_weights, LAYERS, images=gen)
    fr, rnote = features_for(
        ctx, INCEPTION, ctx.options.inception_weights, LAYERS, reference=(ref, n_ref)
    )
    return (
        gen,
        fg,
        fr,
        {**note, "reference": rnote["reference"], "reference_cached": rnote["reference_cached"]},
    )


def compute_fid(ctx: EvalContext) -> MetricResult:
    t0 = time.perf_counter()
    gen, fg, fr, note = _gen_and_ref(ctx, "FID", minimum=2)
    sg = fid_statistics(fg[FID_LAYER])
    key = {
        "reference": note["reference"],
        "weights": note["weights"]["sha256_16"],
        "layer": FID_LAYER,
    }
    sr, _ = ctx.cache.arrays("fid-stats", key, lambda: fid_statistics(fr[FID_LAYER]))
    fid = frechet_distance(sg["mu"], sg["sigma"], sr["mu"], sr["sigma"])
    warn = [
        w
        for w in (
            _low_rank_warning(len(gen), fg[FID_LAYER].shape[1]),
            _low_rank_warning(len(fr[FID_LAYER]), fr[FID_LAYER].shape[1]),
        )
        if w
    ]
    protocol = {
        "n": len(gen),
        "n_requested": ctx.options.inception_n,
        **note,
        "layer": FID_LAYER,
        "warnings": warn,
        "seconds_compute": time.perf_counter() - t0,
    }
    return MetricResult({f"fid_{n_label(len(gen))}": fid}, protocol)


def compute_kid(ctx: EvalContext) -> MetricResult:
    from torch import from_numpy
    from torch_fidelity.metric_kid import kid_features_to_metric

    t0 = time.perf_counter()
    gen, fg, fr, note = _gen_and_ref(ctx, "KID", minimum=2)
    subset = min(ctx.options.kid_subset_size, len(gen), len(fr[FID_LAYER]))
    out = kid_features_to_metric(
        from_numpy(fg[FID_LAYER]),
        from_numpy(fr[FID_LAYER]),
        kid_subsets=ctx.options.kid_subsets,
        kid_subset_size=subset,
        kid_kernel="poly",
        kid_kernel_poly_degree=3,
        kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1,
        rng_seed=2020,
        verbose=False,
    )
    label = n_label(len(gen))
    values = {
        f"kid_{label}_mean": out["kernel_inception_distance_mean"],
        f"kid_{label}_std": out["kernel_inception_distance_std"],
    }
    protocol = {
        "n": len(gen),
        **note,
        "layer": FID_LAYER,
        "subsets": ctx.options.kid_subsets,
        "subset_size": subset,
        "kernel": "poly degree 3, coef0 1, gamma 1/d",
        "rng_seed": 2020,
        "seconds_compute": time.perf_counter() - t0,
    }
    return MetricResult(values, protocol)


def compute_isc(ctx: EvalContext) -> MetricResult:
    from torch import from_numpy
    from torch_fidelity.metric_isc import isc_features_to_metric

    t0 = time.perf_counter()
    gen = ctx.take(ctx.options.inception_n, "IS", minimum=ctx.options.isc_splits)
    fg, note = features_for(ctx, INCEPTION, ctx.options.inception_weights, LAYERS, images=gen)
    out = isc_features_to_metric(
        from_numpy(fg[ISC_LAYER]), splits=ctx.options.isc_splits, shuffle=True, rng_seed=2020
    )
    label = n_label(len(gen))
    values = {
        f"is_{label}_mean": out["inception_score_mean"],
        f"is_{label}_std": out["inception_score_std"],
    }
    protocol = {
        "n": len(gen),
        **note,
        "layer": ISC_LAYER,
        "splits": ctx.options.isc_splits,
        "rng_seed": 2020,
        "seconds_compute": time.perf_counter() - t0,
    }
    return MetricResult(values, protocol)
