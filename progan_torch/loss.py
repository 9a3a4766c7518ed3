"""ProGAN losses (official ``loss.py``: ``G_wgan_acgan`` / ``D_wgangp_acgan``; Gulrajani et al.
2017; Karras et al. 2018 A.1) and the SN-ProGAN options. Twin of :mod:`progan_tf.loss`: the same
functions, signatures and returned quantities.

Per sample, with scores ``r = D(real)``, ``f = D(fake)`` (column 0 of D's output), D minimises
the adversarial term of ``cfg.loss``::

    wgan-gp        f - r                                       (the paper)
    nonsaturating  softplus(-r) (1 - s) + softplus(r) s + softplus(f)
                   = BCE(sigmoid(r), 1 - s) + BCE(sigmoid(f), 0), one-sided smoothing s
    hinge          relu(1 - r) + relu(1 + f)

plus ``lambda / t**2 * (||grad_x D(mix)||_2 - t)**2`` (when ``gp_lambda`` > 0; ``mix = real +
(fake - real) * u``, ``u ~ U(0, 1)`` per sample, ``t = cfg.gp_target(res)``: the official
full-resolution target, see ``ProGANConfig.gp_resolution``), ``drift * r**2`` and the AC-GAN
cross-entropies. G minimises ``-f`` (wgan-gp, hinge) or ``softplus(-f)`` (nonsaturating).
Losses are means over the (local) batch; every reduction runs in float32, also under autocast.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from progan_common.config import ProGANConfig
from progan_torch import variants
from progan_torch.layers import explicit_input_gradients, lerp


def gradient_penalty(
    critic, mixed: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``lam / gamma**2 * (||dD/dx||_2 - gamma)**2`` at ``mixed``, and the norms.

    ``critic(x)`` returns D's (N, 1 + classes) output; only column 0 (the score) is
    differentiated, as official (``tf.gradients(reduce_sum(mixed_scores), mixed)``).
    ``create_graph=True`` keeps the graph for the one extra double-backward pass. D's
    convolutions record explicit input gradients here: a faster double backward, and under
    bf16 the only correct one on CPUs whose oneDNN uses AMX (``explicit_input_gradients``).
    """
    mixed = mixed.detach().requires_grad_(True)
    path = variants.ACTIVE.penalty  # "explicit" unless a variant of progan_torch.variants
    with contextlib.ExitStack() as stack:
        if path != "autograd":
            stack.enter_context(explicit_input_gradients())
        if path == "fp32":
            stack.enter_context(torch.autocast(mixed.device.type, enabled=False))
        scores = critic(mixed)[:, 0].float()
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.float().flatten(1).square().sum(dim=1).sqrt()
    return (norms - gamma).square() * (lam / gamma**2), norms


def _acgan(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    if labels is None or logits.shape[1] == 0:
        return logits.new_zeros(logits.shape[0])
    return F.cross_entropy(logits.float(), labels.long(), reduction="none")


def d_adversarial(real_s: torch.Tensor, fake_s: torch.Tensor, cfg: ProGANConfig) -> torch.Tensor:
    """D's per-sample adversarial term of ``cfg.loss`` (float32 scores in, see module doc)."""
    if cfg.loss == "nonsaturating":
        s = cfg.label_smoothing
        return F.softplus(-real_s) * (1.0 - s) + F.softplus(real_s) * s + F.softplus(fake_s)
    if cfg.loss == "hinge":
        return F.relu(1.0 - real_s) + F.relu(1.0 + fake_s)
    return fake_s - real_s


def g_adversarial(fake_s: torch.Tensor, cfg: ProGANConfig) -> torch.Tensor:
    """G's per-sample adversarial term of ``cfg.loss``."""
    if cfg.loss == "nonsaturating":
        return F.softplus(-fake_s)
    return -fake_s


def d_loss(
    D,
    reals: torch.Tensor,
    fakes: torch.Tensor,
    labels: torch.Tensor | None,
    u: torch.Tensor,
    cfg: ProGANConfig,
    level: int,
    fading: bool,
    alpha,
    D_penalty=None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    """Discriminator loss (scalar) and detached per-term means for the log.

    ``reals`` (already faded) and ``fakes`` are float32 NCHW at the level's resolution.
    They go through D in ONE forward on ``cat([reals, fakes])``; minibatch stddev then groups
    within each half (``chunks=2``), exactly as two separate calls would. The mixed batch has
    its own forward because its graph is differentiated twice. ``D_penalty``: the D for that
    forward (default ``D``; the eager module when ``D`` is a ``torch.compile`` wrapper, which
    has no double backward). Stats: ``d_real``, ``d_fake`` (mean scores), ``gp`` (mean
    penalty, lambda included), ``grad_norm`` (mean gradient norm in the penalty's units, i.e.
    w.r.t. the full-resolution image unless ``gp_resolution`` is native; ``gp`` and
    ``grad_norm`` are None without a penalty), ``d_label`` (AC-GAN term).
    """
    D_penalty = D if D_penalty is None else D_penalty
    n = reals.shape[0]
    fakes = fakes.detach()
    out = D(torch.cat([reals, fakes]), level, fading, alpha, chunks=2).float()
    real_out, fake_out = out[:n], out[n:]
    real_s, fake_s = real_out[:, 0], fake_out[:, 0]
    loss = d_adversarial(real_s, fake_s, cfg)
    stats: dict[str, torch.Tensor | None] = {"gp": None, "grad_norm": None}
    if cfg.gp_lambda > 0:
        target = cfg.gp_target(reals.shape[-1])
        mixed = lerp(reals, fakes, u.view(-1, 1, 1, 1).to(reals.dtype))
        gp, norms = gradient_penalty(
            lambda x: D_penalty(x, level, fading, alpha),
            mixed,
            target,
            cfg.gp_lambda,
        )
        loss = loss + gp
        stats["gp"], stats["grad_norm"] = gp.mean(), norms.mean() * (cfg.gp_gamma / target)
    if cfg.drift:
        loss = loss + real_s.square() * cfg.drift
    label = _acgan(real_out[:, 1:], labels) + _acgan(fake_out[:, 1:], labels)
    loss = loss + label * cfg.acgan_weight
    stats.update(d_real=real_s.mean(), d_fake=fake_s.mean(), d_label=label.mean())
    return loss.mean(), {k: None if v is None else v.detach() for k, v in stats.items()}


def g_loss(
    D,
    fakes: torch.Tensor,
    labels: torch.Tensor | None,
    cfg: ProGANConfig,
    level: int,
    fading: bool,
    alpha,
) -> torch.Tensor:
    """Generator loss: the adversarial term on ``D(fakes)`` (+ AC-GAN cross-entropy on the
    fakes' labels), mean over the batch. ``fakes`` carry G's graph; they are handed to D in
    float32 (the mixed-precision policy)."""
    out = D(fakes.float(), level, fading, alpha).float()
    loss = g_adversarial(out[:, 0], cfg) + _acgan(out[:, 1:], labels) * cfg.acgan_weight
    return loss.mean()
