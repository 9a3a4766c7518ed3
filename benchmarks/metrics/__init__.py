"""The metric registry: one file per metric, looked up by name (no if/elif chains).

Each entry names the module and function ``compute(ctx) -> MetricResult``; modules are imported
only when their metric runs, so ``python -m benchmarks.evaluate list`` stays instant and this
package imports neither torch nor tensorflow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str
    target: str  # "module:function"
    needs: str  # what must be available for it to run
    keys: str  # the result keys it writes
    summary: str

    def load(self) -> Callable:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)


_M = "benchmarks.metrics."
_DOMAIN_NEEDS = (
    "32x32 digit sets (stacked-mnist, stacked-digits, mnist, digits; digit classifier) or "
    "CIFAR-10 sets (cifar10, cifar10-cars, cifar10:<classes>; a classifier trained once, in "
    "minutes, on the CIFAR-10 train split of --data-root); weights cached"
)
METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in [
        MetricSpec(
            "swd",
            _M + "swd:compute",
            "reference images >= 16x16; nothing downloaded",
            "swd_<N>_<res>px per level, swd_<N>_avg",
            "ProGAN multi-scale sliced Wasserstein distance x1e3 (Laplacian pyramid, 7x7 patches)",
        ),
        MetricSpec(
            "msssim",
            _M + "msssim:compute",
            "nothing (real value needs reference images)",
            "msssim_<P>_pairs, msssim_real_<P>_pairs",
            "MS-SSIM of consecutive generated pairs (lower = more diverse), real value beside it",
        ),
        MetricSpec(
            "fid",
            _M + "inception:compute_fid",
            "InceptionV3 weights (--inception-weights, "
            "$GANBENCH_INCEPTION_WEIGHTS, torch hub cache or download)",
            "fid_<N>",
            "Frechet Inception distance, torch-fidelity features",
        ),
        MetricSpec(
            "kid",
            _M + "inception:compute_kid",
            "InceptionV3 weights (as fid)",
            "kid_<N>_mean, kid_<N>_std",
            "kernel Inception distance (torch-fidelity, 100 subsets)",
        ),
        MetricSpec(
            "isc",
            _M + "inception:compute_isc",
            "InceptionV3 weights (as fid); no reference",
            "is_<N>_mean, is_<N>_std",
            "Inception score (torch-fidelity, 10 splits)",
        ),
        MetricSpec(
            "prc",
            _M + "prc:compute",
            "VGG16 weights (--vgg-weights, $GANBENCH_VGG16_WEIGHTS, torch hub cache or download)",
            "precision_<N>, recall_<N>, prc_f_score_<N>",
            "precision / recall, torch-fidelity VGG16 k=3 protocol",
        ),
        MetricSpec(
            "modes",
            _M + "modes:compute",
            "stacked-mnist or stacked-digits; trains a digit "
            "classifier on the split's single digits (cached)",
            "modes_covered_<N>, kl_modes_<N>",
            "Stacked-MNIST modes covered out of 1000 and KL(generated || uniform)",
        ),
        MetricSpec(
            "ndb",
            _M + "ndb:compute",
            "reference images; nothing downloaded",
            "ndb_k<K>, ndb_frac_k<K>, ndb_js_k<K>",
            "NDB/K and JS of k-means bins on pixels (Richardson & Weiss 2018)",
        ),
        MetricSpec(
            "birthday",
            _M + "birthday:compute",
            "nothing (duplicate threshold needs reference)",
            "birthday_min_dist_s<S>, birthday_dup_pairs_s<S>, birthday_dup_frac_s<S>, "
            "birthday_support_s<S>",
            "birthday-paradox support estimate + closest-pairs PNG",
        ),
        MetricSpec(
            "fd_domain",
            _M + "domain:compute_fd",
            _DOMAIN_NEEDS,
            "fd_<E>_<N> (E = digits or cifar10cls)",
            "Frechet distance on the project's own classifier features (offline FID analogue; "
            "not comparable with Inception FID)",
        ),
        MetricSpec(
            "kid_domain",
            _M + "domain:compute_kid",
            _DOMAIN_NEEDS,
            "kid_<E>_<N>_mean, kid_<E>_<N>_std",
            "kernel distance (torch-fidelity KID, 100 subsets) on the same features",
        ),
        MetricSpec(
            "prc_domain",
            _M + "domain:compute_prc",
            _DOMAIN_NEEDS,
            "precision_<E>_<N>, recall_<E>_<N>, prc_f_score_<E>_<N>",
            "precision / recall (torch-fidelity, k=3) on the same features",
        ),
    ]
}

DEFAULT_METRICS = (
    "swd",
    "msssim",
    "ndb",
    "birthday",
    "modes",
    "fd_domain",
    "kid_domain",
    "prc_domain",
    "fid",
    "kid",
    "isc",
    "prc",
)
OFFLINE_METRICS = (
    "swd",
    "msssim",
    "ndb",
    "birthday",
    "modes",
    "fd_domain",
    "kid_domain",
    "prc_domain",
)

__all__ = ["DEFAULT_METRICS", "METRICS", "OFFLINE_METRICS", "MetricSpec"]
