"""Precision and recall (Kynkaanniemi et al. 2019) through torch-fidelity's ``prc`` protocol.

VGG16 "fc2_relu" features (torchvision ImageNet weights, images resized to 224x224), k = 3
nearest-neighbour balls; precision = fraction of generated samples inside the real manifold,
recall = fraction of real samples inside the generated one. Computed in its own call with its
own weights (torch-fidelity takes one weights path per call), never mixed with Inception
features. The same N of real and generated images (the paper's setting).
"""

from __future__ import annotations

import time

from benchmarks.metrics.base import EvalContext, MetricResult, n_label
from benchmarks.metrics.fidelity import features_for
from benchmarks.metrics.weights import VGG16
from gancore.errors import UserError

PRC_LAYER = "fc2_relu"
NEIGHBOURHOOD = 3


def prc_distance(gen_features, real_features) -> dict[str, float]:
    """torch-fidelity's ``prc_features_to_metric`` (generated first, real second)."""
    from torch import from_numpy
    from torch_fidelity.metric_prc import prc_features_to_metric

    return prc_features_to_metric(
        from_numpy(gen_features),
        from_numpy(real_features),
        prc_neighborhood=NEIGHBOURHOOD,
        prc_batch_size=10000,
        save_cpu_ram=False,
        verbose=False,
    )


def compute(ctx: EvalContext) -> MetricResult:
    t0 = time.perf_counter()
    ref = ctx.need_reference("prc")
    n = min(ctx.options.prc_n, len(ctx.images), len(ref))
    if n <= NEIGHBOURHOOD:
        raise UserError(
            f"precision/recall with k={NEIGHBOURHOOD} needs more than {NEIGHBOURHOOD} "
            f"generated and reference images; got {n}."
        )
    gen = ctx.images[:n]
    fg, note = features_for(ctx, VGG16, ctx.options.vgg_weights, (PRC_LAYER,), images=gen)
    fr, rnote = features_for(ctx, VGG16, ctx.options.vgg_weights, (PRC_LAYER,), reference=(ref, n))
    out = prc_distance(fg[PRC_LAYER], fr[PRC_LAYER])
    label = n_label(n)
    values = {
        f"precision_{label}": out["precision"],
        f"recall_{label}": out["recall"],
        f"prc_f_score_{label}": out["f_score"],
    }
    protocol = {
        "n": n,
        "n_requested": ctx.options.prc_n,
        **note,
        "reference": rnote["reference"],
        "reference_cached": rnote["reference_cached"],
        "layer": PRC_LAYER,
        "neighbourhood_k": NEIGHBOURHOOD,
        "seconds_compute": time.perf_counter() - t0,
    }
    return MetricResult(values, protocol)
