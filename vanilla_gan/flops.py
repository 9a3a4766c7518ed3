"""Training FLOPs of DCGAN / SN-DCGAN per real image shown (n_dis D updates on real and fake
batches, one G update; spectral norm's power iterations included), counted on ``meta``
tensors. The Keras twin builds the same layer list, so its count is the same."""

from __future__ import annotations

import torch

from gancore.torch_utils import FlopCounter
from vanilla_gan import torch_nets
from vanilla_gan.config import TrainConfig

BATCH = 4


def step_flops_per_image(cfg: TrainConfig, channels: int = 3) -> float:
    with torch.device("meta"):
        G, D = torch_nets.build_models(cfg, channels)
        z = torch.randn(BATCH, cfg.z_dim)
        real = torch.randn(BATCH, channels, cfg.res, cfg.res)
    with FlopCounter() as count:
        for _ in range(cfg.n_dis):
            fake = G(z)
            loss = D(real).mean() + D(fake.detach()).mean()
            torch.autograd.grad(loss, list(D.parameters()))
        loss = D(fake).mean()
        torch.autograd.grad(loss, list(G.parameters()))
    return count.total / (BATCH * cfg.n_dis)
