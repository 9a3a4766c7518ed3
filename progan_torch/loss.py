"""WGAN-GP with drift and the optional AC-GAN term (official ``loss.py``:
``G_wgan_acgan`` and ``D_wgangp_acgan``; Gulrajani et al. 2017; Karras et al. 2018 A.1).

Per sample, D minimises::

    D(fake) - D(real) + lambda / gamma**2 * (||grad_x D(mix)||_2 - gamma)**2 + drift * D(real)**2

with ``mix = real + (fake - real) * u``, ``u ~ U(0, 1)`` per sample; G minimises
``-D(G(z))``. Losses are means over the (local) batch. All reductions run in float32
even under autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from progan_common.config import ProGANConfig
from progan_torch.layers import lerp


def gradient_penalty(
    critic, mixed: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``lam / gamma**2 * (||dD/dx||_2 - gamma)**2`` at ``mixed`` and the norms.

    ``critic(x)`` returns the (N, 1 + classes) output; only column 0 (the score) is
    differentiated, as official (``tf.gradients(reduce_sum(mixed_scores), mixed)``).
    ``create_graph=True`` keeps the graph for the one extra double-backward pass.
    """
    mixed = mixed.detach().requires_grad_(True)
    scores = critic(mixed)[:, 0].float()
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.float().flatten(1).square().sum(dim=1).sqrt()
    return (norms - gamma).square() * (lam / gamma**2), norms


def _acgan(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    if labels is None or logits.shape[1] == 0:
        return logits.new_zeros(logits.shape[0])
    return F.cross_entropy(logits.float(), labels.long(), reduction="none")


def d_loss(
    D,
    reals: torch.Tensor,
    fakes: torch.Tensor,
    labels: torch.Tensor | None,
    u: torch.Tensor,
    cfg: ProGANConfig,
    level: int,
    alpha,
    D_eager=None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Discriminator loss (scalar) and detached per-term means for the log.

    Reals and fakes go through D in ONE forward on ``cat([reals, fakes])``; minibatch
    stddev then groups within each half (``chunks=2``), exactly as two separate calls
    would. The mixed batch has its own forward because its graph is differentiated
    twice (the gradient penalty), which the other two do not need. ``D_eager``: the
    uncompiled D for that forward when ``D`` is a ``torch.compile`` wrapper (AOTAutograd has
    no double backward).
    """
    D_eager = D if D_eager is None else D_eager
    n = reals.shape[0]
    out = D(torch.cat([reals, fakes.detach()]), level, alpha, chunks=2).float()
    real_out, fake_out = out[:n], out[n:]
    mixed = lerp(reals, fakes.detach(), u.view(-1, 1, 1, 1).to(reals.dtype))
    gp, norms = gradient_penalty(
        lambda x: D_eager(x, level, alpha), mixed, cfg.gp_gamma, cfg.gp_lambda
    )
    real_s, fake_s = real_out[:, 0], fake_out[:, 0]
    drift = real_s.square() * cfg.drift
    loss = fake_s - real_s + gp + drift
    label = _acgan(real_out[:, 1:], labels) + _acgan(fake_out[:, 1:], labels)
    loss = loss + label * cfg.acgan_weight
    stats = {
        "d_real": real_s.mean(),
        "d_fake": fake_s.mean(),
        "gp": gp.mean(),
        "grad_norm": norms.mean(),
        "d_label": label.mean(),
    }
    return loss.mean(), {k: v.detach() for k, v in stats.items()}


def g_loss(
    D, fakes: torch.Tensor, labels: torch.Tensor | None, cfg: ProGANConfig, level: int, alpha
) -> torch.Tensor:
    """Generator loss ``-D(G(z))`` (+ AC-GAN cross-entropy on the fakes' labels)."""
    out = D(fakes, level, alpha).float()
    loss = -out[:, 0] + _acgan(out[:, 1:], labels) * cfg.acgan_weight
    return loss.mean()
