"""FD / KID / precision-recall on the project's own learned features (offline "FID").

InceptionV3 weights cannot be downloaded on this project's machines, so the learned-feature
distances are computed on classifiers the project trains and caches itself, registered with
torch-fidelity (:mod:`benchmarks.metrics.domain_features`):

- ``digits`` (``stacked-mnist``, ``stacked-digits``, ``mnist``, ``digits``): the digit classifier
  of the mode-coverage metric, per colour channel, penultimate features concatenated -- the
  "Frechet LeNet distance" used for MNIST generators, extended to stacked channels;
- ``cifar10cls`` (``cifar10``, ``cifar10-cars``, ``cifar10:<classes>``): a small CIFAR-10
  classifier trained on the train split, held out on the test split.

Any other data set (celeba, celebahq, folder:) has no domain classifier: skipped, never 0.

- features: torch-fidelity's own batching (``get_featuresdict_from_dataset``) through the
  registered extractor; the reference set's features are cached on disk, keyed by the
  reference identity, the extractor and the weights' content hash;
- statistics / distances: FD = the Frechet distance of :mod:`benchmarks.metrics.inception`
  (checked against torch-fidelity's ``fid_statistics_to_metric`` in the tests); KID and
  precision/recall are torch-fidelity's ``kid_features_to_metric`` / ``prc_features_to_metric``
  with the settings of the Inception / VGG versions (poly kernel of degree 3, 100 subsets;
  k = 3). When N is at most the feature dimension the covariances are singular and FD is
  computed exactly in sample space instead (same value, cheaper).

N is the same for both sides, ``min(domain_n, generated, reference)``, and is in every key:
``fd_digits_10k``, ``kid_digits_10k_mean``, ``precision_cifar10cls_5k`` ... Values are
comparable only at the same extractor and N, never with Inception FID.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.metrics.base import EvalContext, MetricResult, MetricSkipped, n_label
from gancore.errors import UserError

DIGIT_SETS = {
    "stacked-mnist": "mnist",
    "stacked-digits": "digits",
    "mnist": "mnist",
    "digits": "digits",
}
LAYER_NOTES = {
    "digits": "penultimate: flattened 64x4x4 output of the digit classifier's last conv block "
    "(after ReLU + max-pool), 1024 per colour channel, channels concatenated",
    "cifar10cls": "penultimate: global max pool of the CIFAR-10 classifier's last block (128)",
}
FEATURE_BATCH = 512  # small networks: large batches amortise per-call overhead on CPU


@dataclass
class DomainExtractor:
    short: str  # the name in result keys: "digits", "cifar10cls"
    module: Any  # a torch-fidelity FeatureExtractorBase, on its device
    device: str
    note: dict  # protocol: extractor, layer, weights hash, classifier accuracy ...


def extractor_name(dataset: str | None) -> str:
    """``digits`` / ``cifar10cls`` for ``dataset``, or :class:`MetricSkipped` with the reason."""
    from benchmarks.metrics.cifar_classifier import is_cifar10

    if dataset in DIGIT_SETS:
        return "digits"
    if is_cifar10(dataset):
        return "cifar10cls"
    raise MetricSkipped(
        f"no domain classifier for {dataset!r}: learned-feature distances are defined for "
        f"{', '.join(DIGIT_SETS)} (digit classifier) and cifar10, cifar10-cars, "
        "cifar10:<classes> (CIFAR-10 classifier); use Inception FID with weights instead"
    )


def _classifier_weights(ctx: EvalContext, short: str) -> tuple[dict, dict]:
    """The trained classifier's arrays and its protocol note (trained now or from cache)."""
    if short == "digits":
        from benchmarks.metrics import digit_classifier as dc

        base = DIGIT_SETS[str(ctx.dataset)]
        split = ctx.options.classifier_split or ctx.split
        try:
            images, labels = dc.load_digits(base, ctx.data_root, split, str(ctx.cache.root))
        except UserError as exc:
            raise MetricSkipped(
                f"the digit classifier trains on {base} ({split}), which is not available "
                f"here: {exc}"
            ) from exc
        net, note = dc.get_classifier(base, images, labels, ctx.cache, {"split": split})
        return {k: v.numpy() for k, v in net.state_dict().items()}, note
    from benchmarks.metrics import cifar_classifier as cc

    return cc.get_classifier(ctx.data_root, ctx.cache, ctx.progress)


def get_extractor(ctx: EvalContext) -> DomainExtractor:
    """The data set's extractor, built once per evaluation (shared by fd / kid / prc)."""
    short = extractor_name(ctx.dataset)
    if ("domain-extractor", short) in ctx.memo:
        return ctx.memo[("domain-extractor", short)]
    from benchmarks.metrics import domain_features as dfe
    from benchmarks.metrics.fidelity import torch_device

    arrays, cnote = _classifier_weights(ctx, short)
    cls = dfe.DigitFeatures if short == "digits" else dfe.CifarFeatures
    name = dfe.DIGITS if short == "digits" else dfe.CIFAR10CLS
    device = torch_device(ctx.options.device)
    # Both layers from one pass: FD / KID / PRC read the penultimate features, mode coverage
    # (digits) the logits of the same forward pass over the same generated images.
    module = cls(name, [dfe.PENULTIMATE, dfe.LOGITS], feature_extractor_weights=arrays).to(device)
    note = {
        "extractor": short,
        "torch_fidelity_extractor": name,
        "layer": LAYER_NOTES[short],
        "weights_sha256_16": module.weights_sha256_16,
        **cnote,
    }
    ext = DomainExtractor(short, module, device, note)
    ctx.memo[("domain-extractor", short)] = ext
    return ext


def domain_features(ext: DomainExtractor, images_u8: np.ndarray, progress: bool) -> np.ndarray:
    """float32 (N, D) penultimate features, batched by torch-fidelity's own feature loop."""
    from benchmarks.metrics.domain_features import PENULTIMATE

    return domain_outputs(ext, images_u8, progress)[PENULTIMATE]


def generated_outputs(ctx: EvalContext, ext: DomainExtractor, n: int) -> dict[str, np.ndarray]:
    """Penultimate features and logits of the first ``n`` generated images, computed once per
    evaluation: every metric that reads the extractor (fd, kid, prc, mode coverage) shares the
    pass. Rows are independent (the classifiers run in eval mode), so a pass over more images
    serves a request for fewer by slicing."""
    key = ("domain-gen", ext.short, ext.note["weights_sha256_16"])
    have = ctx.memo.get(key)
    if have is None or len(next(iter(have.values()))) < n:
        have = domain_outputs(ext, ctx.images[:n], ctx.progress)
        ctx.memo[key] = have
    return {name: a[:n] for name, a in have.items()}


def domain_outputs(
    ext: DomainExtractor, images_u8: np.ndarray, progress: bool
) -> dict[str, np.ndarray]:
    """Every layer the extractor provides (penultimate, logits) as float32 (N, D) arrays."""
    import torch
    from torch_fidelity.utils import get_featuresdict_from_dataset

    class _Images(torch.utils.data.Dataset):  # uint8 CHW tensors, torch-fidelity's input type
        def __len__(self) -> int:
            return len(images_u8)

        def __getitem__(self, i: int):
            return torch.from_numpy(np.ascontiguousarray(images_u8[i].transpose(2, 0, 1)))

    feats = get_featuresdict_from_dataset(
        _Images(),
        ext.module,
        batch_size=FEATURE_BATCH,
        cuda=ext.device == "cuda",
        save_cpu_ram=True,  # no DataLoader worker processes: the data is already in memory
        verbose=progress,
    )
    return {name: f.numpy().astype(np.float32, copy=False) for name, f in feats.items()}


def paired_features(
    ctx: EvalContext, metric: str, minimum: int
) -> tuple[np.ndarray, np.ndarray, int, dict, dict]:
    """Generated and reference features at one N for both sides, the reference features'
    cache key (FD caches its statistics under it) and the protocol note.

    Checks run before any classifier is trained: no domain classifier -> skipped; wrong
    resolution or too few images -> user error."""
    short = extractor_name(ctx.dataset)
    ref = ctx.need_reference(metric)
    if ctx.images.shape[1:3] != (32, 32):
        raise UserError(
            f"the {short} extractor reads 32x32 images (its classifier's input); got "
            f"{ctx.res}x{ctx.res}. Export samples at 32x32."
        )
    n = min(ctx.options.domain_n, len(ctx.images), len(ref))
    if n < minimum:
        raise UserError(
            f"{metric} needs at least {minimum} generated and reference images; got "
            f"{len(ctx.images)} generated, {len(ref)} reference."
        )
    t0 = time.perf_counter()
    ext = get_extractor(ctx)
    from benchmarks.metrics.domain_features import PENULTIMATE

    fg = generated_outputs(ctx, ext, n)[PENULTIMATE]
    real, ref_id = ref.subset(n)
    cache_key = {
        "reference": ref_id,
        "extractor": ext.note["torch_fidelity_extractor"],
        "layer": "penultimate",
        "weights_sha256_16": ext.note["weights_sha256_16"],
    }
    feats, hit = ctx.cache.arrays(
        "domain-features",
        cache_key,
        lambda: {"features": domain_features(ext, real, ctx.progress)},
    )
    fr = feats["features"]
    note = {
        "n": n,
        "n_requested": ctx.options.domain_n,
        **ext.note,
        "feature_dim": int(fg.shape[1]),
        "reference": ref_id,
        "reference_split": ref_id.get("split"),
        "reference_cached": hit,
        "seconds_features": round(time.perf_counter() - t0, 3),
    }
    return fg, fr, n, cache_key, note


# ------------------------------------------------------------------------- Frechet distance
def frechet_distance_sample_space(f1: np.ndarray, f2: np.ndarray) -> float:
    """The Frechet distance of the two feature sets' Gaussians, computed from the samples.

    With centred features A_i (n_i x d), S_i = A_i^T A_i / (n_i - 1) and the non-zero
    eigenvalues of S1 S2 are those of M M^T / ((n1-1)(n2-1)) with M = A1 A2^T (n1 x n2), so
    Tr((S1 S2)^(1/2)) needs an eigen-decomposition of size min(n1, n2) instead of d. Exact;
    used when N <= d (singular covariances), where it is also much cheaper.
    """
    a1 = np.asarray(f1, np.float64)
    a2 = np.asarray(f2, np.float64)
    mu1, mu2 = a1.mean(axis=0), a2.mean(axis=0)
    a1, a2 = a1 - mu1, a2 - mu2
    n1, n2 = len(a1), len(a2)
    m = a1 @ a2.T
    small = m @ m.T if n1 <= n2 else m.T @ m
    eig = np.linalg.eigvalsh((small + small.T) / 2.0)
    # M M^T has rank <= min(n1, n2, d) - 1; its zero eigenvalues come back as rounding noise
    # of either sign, and sqrt(noise) would add up over hundreds of them: zero them (the usual
    # numerical-rank tolerance).
    eig[eig < eig.max(initial=0.0) * len(eig) * np.finfo(np.float64).eps] = 0.0
    tr_covmean = float(np.sum(np.sqrt(eig))) / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    tr1 = float(np.sum(a1 * a1)) / (n1 - 1)
    tr2 = float(np.sum(a2 * a2)) / (n2 - 1)
    return float(diff @ diff + tr1 + tr2 - 2.0 * tr_covmean)


def fd_statistics(features: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, covariance and its square root (the reference's is cached: one d^3 step saved)."""
    from benchmarks.metrics.inception import fid_statistics, psd_sqrt

    stats = fid_statistics(features)
    return {**stats, "sqrt_sigma": psd_sqrt(stats["sigma"])}


def compute_fd(ctx: EvalContext) -> MetricResult:
    from benchmarks.metrics.inception import fid_statistics, frechet_distance

    t0 = time.perf_counter()
    fg, fr, n, key, note = paired_features(ctx, "fd_domain", minimum=2)
    dim = fg.shape[1]
    warn = []
    if n <= dim:
        route = "sample space (N <= feature dimension)"
        value = frechet_distance_sample_space(fr, fg)
        msg = (
            f"FD with {dim}-d features needs N > {dim} for full-rank covariances; got N={n}. "
            "The value is biased upward; compare it only with values at the same N."
        )
        warnings.warn(msg, stacklevel=2)
        warn.append(msg)
    else:
        route = "covariance (cached reference mean, covariance and its square root)"
        sr, _ = ctx.cache.arrays("domain-fd-stats", key, lambda: fd_statistics(fr))
        sg = fid_statistics(fg)
        value = frechet_distance(
            sr["mu"], sr["sigma"], sg["mu"], sg["sigma"], sqrt_sigma1=sr["sqrt_sigma"]
        )
    protocol = {
        **note,
        "route": route,
        "warnings": warn,
        "seconds_compute": round(time.perf_counter() - t0, 3),
    }
    return MetricResult({f"fd_{note['extractor']}_{n_label(n)}": value}, protocol)


def compute_kid(ctx: EvalContext) -> MetricResult:
    from torch import from_numpy
    from torch_fidelity.metric_kid import kid_features_to_metric

    t0 = time.perf_counter()
    fg, fr, n, _, note = paired_features(ctx, "kid_domain", minimum=2)
    subset = min(ctx.options.kid_subset_size, n)
    out = kid_features_to_metric(
        from_numpy(fg),
        from_numpy(fr),
        kid_subsets=ctx.options.kid_subsets,
        kid_subset_size=subset,
        kid_kernel="poly",
        kid_kernel_poly_degree=3,
        kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1,
        rng_seed=2020,
        verbose=False,
    )
    label = f"{note['extractor']}_{n_label(n)}"
    values = {
        f"kid_{label}_mean": out["kernel_inception_distance_mean"],
        f"kid_{label}_std": out["kernel_inception_distance_std"],
    }
    protocol = {
        **note,
        "subsets": ctx.options.kid_subsets,
        "subset_size": subset,
        "kernel": "poly degree 3, coef0 1, gamma 1/d (torch-fidelity defaults)",
        "rng_seed": 2020,
        "seconds_compute": round(time.perf_counter() - t0, 3),
    }
    return MetricResult(values, protocol)


def compute_prc(ctx: EvalContext) -> MetricResult:
    from benchmarks.metrics.prc import NEIGHBOURHOOD, prc_distance

    t0 = time.perf_counter()
    fg, fr, n, _, note = paired_features(ctx, "prc_domain", minimum=NEIGHBOURHOOD + 1)
    out = prc_distance(fg, fr)
    label = f"{note['extractor']}_{n_label(n)}"
    values = {
        f"precision_{label}": out["precision"],
        f"recall_{label}": out["recall"],
        f"prc_f_score_{label}": out["f_score"],
    }
    protocol = {
        **note,
        "neighbourhood_k": NEIGHBOURHOOD,
        "seconds_compute": round(time.perf_counter() - t0, 3),
    }
    return MetricResult(values, protocol)
