"""Mode coverage on Stacked MNIST (Metz et al. 2017; VEEGAN; PacGAN table 2).

- features: each colour channel of a generated 32x32 sample classified by the project's digit
  classifier (:mod:`benchmarks.metrics.digit_classifier`); mode = 100*d_red + 10*d_green + d_blue;
- statistics: the histogram of the 1000 modes over N samples (the papers use N = 26,000);
- distance: modes covered (bins with at least one sample) and
  KL(generated mode histogram || uniform over 1000) in nats.

Defined only for ``stacked-mnist`` and ``stacked-digits``; on other data sets the metric is
reported as skipped.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.metrics.base import EvalContext, MetricResult, MetricSkipped, n_label
from benchmarks.metrics.digit_classifier import BASE_DATASET, get_classifier, load_digits, predict
from gancore.errors import UserError

NUM_MODES = 1000


def mode_features(net, images_u8: np.ndarray) -> np.ndarray:
    """Mode index 0..999 of each stacked RGB image (N, 32, 32, 3)."""
    n = len(images_u8)
    channels = np.ascontiguousarray(images_u8.transpose(0, 3, 1, 2)).reshape(n * 3, 32, 32)
    digits = predict(net, channels).reshape(n, 3)
    return 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]


def mode_statistics(modes: np.ndarray) -> np.ndarray:
    return np.bincount(np.asarray(modes, dtype=np.int64), minlength=NUM_MODES)


def mode_distance(hist: np.ndarray) -> tuple[int, float]:
    """(modes covered, KL(p || uniform)) with p the normalised histogram, natural log."""
    p = hist / hist.sum()
    nz = p > 0
    return int(nz.sum()), float(np.sum(p[nz] * np.log(p[nz] * len(hist))))


def compute(ctx: EvalContext) -> MetricResult:
    base = BASE_DATASET.get(str(ctx.dataset))
    if base is None:
        raise MetricSkipped(
            f"mode coverage is defined for {sorted(BASE_DATASET)} only, not {ctx.dataset!r}"
        )
    if ctx.images.shape[1:] != (32, 32, 3):
        raise UserError(
            f"mode coverage needs 32x32 RGB stacked samples; got {ctx.images.shape[1:]}."
        )
    gen = ctx.take(ctx.options.modes_n, "mode coverage", minimum=1)
    t0 = time.perf_counter()
    split = ctx.options.classifier_split or ctx.split
    images, labels = load_digits(base, ctx.data_root, split, str(ctx.cache.root))
    net, note = get_classifier(base, images, labels, ctx.cache, {"split": split})
    hist = mode_statistics(mode_features(net, gen))
    covered, kl = mode_distance(hist)
    label = n_label(len(gen))
    values: dict[str, float | int | None] = {
        f"modes_covered_{label}": covered,
        f"kl_modes_{label}": kl,
    }
    protocol = {
        "n": len(gen),
        "n_requested": ctx.options.modes_n,
        "num_modes": NUM_MODES,
        "kl": "KL(generated || uniform), nats",
        **note,
        "top_modes": [[int(m), int(hist[m])] for m in np.argsort(-hist)[:10]],
        "seconds_compute": time.perf_counter() - t0,
    }
    return MetricResult(values, protocol)
