"""Training FLOPs of ProGAN per image shown, per stage: one D step (reals and fakes through D,
the gradient penalty's double backward) and one G step, counted on ``meta`` tensors.

The TensorFlow twin runs the same networks and losses, so its count is the same; the
benchmark's equal-compute budgets are therefore framework-independent.
"""

from __future__ import annotations

import functools

import torch

from gancore.config import config_to_dict
from gancore.torch_utils import FlopCounter
from progan_common.config import ProGANConfig
from progan_torch.loss import d_loss, g_loss
from progan_torch.networks import Discriminator, Generator

BATCH = 4  # FLOPs are linear in the batch: counted at 4, reported per image


@functools.lru_cache(maxsize=8)
def _nets(cfg_json: str, img_channels: int, num_classes: int):
    import json

    from gancore.config import config_from_dict

    cfg = config_from_dict(ProGANConfig, json.loads(cfg_json))
    with torch.device("meta"):
        return (
            cfg,
            Generator(cfg, img_channels, num_classes),
            Discriminator(cfg, img_channels, num_classes),
        )


def step_flops_per_image(
    cfg: ProGANConfig, res: int, fading: bool, img_channels: int = 3, num_classes: int = 0
) -> float:
    """FLOPs of one training step at ``res`` (fading or not), divided by the batch size."""
    import json

    key = json.dumps(config_to_dict(cfg), sort_keys=True)
    return _count(key, res, fading, img_channels, num_classes)


@functools.lru_cache(maxsize=256)
def _count(cfg_json: str, res: int, fading: bool, img_channels: int, num_classes: int) -> float:
    """The count, once per config and stage (a compute budget's search asks many times)."""
    cfg, G, D = _nets(cfg_json, img_channels, num_classes)
    level = res.bit_length() - 3
    fading = fading and level > 0
    with torch.device("meta"):
        z = torch.randn(BATCH, cfg.latent_dim)
        reals = torch.randn(BATCH, img_channels, res, res)
        u = torch.rand(BATCH)
        alpha = torch.tensor(0.5) if fading else 1.0
        labels = torch.zeros(BATCH, dtype=torch.long) if num_classes else None
    with FlopCounter() as count:
        with torch.no_grad():
            fakes = G(z, labels, level, fading, alpha)
        loss, _ = d_loss(D, reals, fakes, labels, u, cfg, level, fading, alpha)
        torch.autograd.grad(loss, [p for p in D.parameters() if p.requires_grad], allow_unused=True)
        loss = g_loss(D, G(z, labels, level, fading, alpha), labels, cfg, level, fading, alpha)
        torch.autograd.grad(loss, [p for p in G.parameters() if p.requires_grad], allow_unused=True)
    return count.total / BATCH
