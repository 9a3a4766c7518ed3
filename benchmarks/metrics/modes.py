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
from benchmarks.metrics.digit_classifier import BASE_DATASET
from gancore.errors import UserError

NUM_MODES = 1000


def modes_from_digits(digits: np.ndarray) -> np.ndarray:
    """(N, 3) digits (red, green, blue) -> mode index 100 * red + 10 * green + blue."""
    return 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]


def modes_from_logits(logits: np.ndarray) -> np.ndarray:
    """The digit extractor's logits (N, 3 x 10, channel order) -> mode index per image."""
    return modes_from_digits(logits.reshape(len(logits), 3, 10).argmax(axis=2))


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
    # The digit classifier's logits from the pass fd_digits / kid_digits also use (one forward
    # over the generated images per evaluation; the classifier is the same trained network).
    from benchmarks.metrics.domain import generated_outputs, get_extractor
    from benchmarks.metrics.domain_features import LOGITS

    ext = get_extractor(ctx)
    hist = mode_statistics(modes_from_logits(generated_outputs(ctx, ext, len(gen))[LOGITS]))
    note = {k: v for k, v in ext.note.items() if k.startswith("classifier")}
    note["digits_from"] = "argmax of the digit classifier's logits per colour channel"
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
