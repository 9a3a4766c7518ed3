"""PyTorch DCGAN / SN-DCGAN, built by walking :mod:`vanilla_gan.arch` layer lists."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from vanilla_gan import torch_gemm
from vanilla_gan.arch import Layer, discriminator_layers, generator_layers, layer_paths
from vanilla_gan.config import TrainConfig

# Radford et al. 2016, section 4: "All weights were initialized from a zero-centered Normal
# distribution with standard deviation 0.02". BN scale ~ N(1, 0.02) as in pytorch/examples.
INIT_STD = 0.02
# torch defaults, mirrored explicitly on the Keras side (tf_nets.BN_EPS / BN_MOMENTUM).
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def _module(spec: Layer, path: str | None) -> nn.Module:
    k = spec.kind
    if k == "dense":
        m = nn.Linear(spec.in_ch, spec.out_ch, bias=spec.bias)
    elif k == "conv":
        args = (spec.in_ch, spec.out_ch, spec.k, spec.stride, spec.pad)
        m = torch_gemm.Conv2d(*args, bias=spec.bias, path=path)
    elif k == "convT":
        args = (spec.in_ch, spec.out_ch, spec.k, spec.stride, spec.pad)
        m = torch_gemm.ConvTranspose2d(*args, bias=spec.bias, path=path)
    elif k == "relu":
        # In place, as pytorch/examples' DCGAN: every activation here follows a convolution,
        # a dense layer or a BatchNorm, none of whose backward reads its own output, so
        # overwriting that output saves a tensor and a pass over memory (autograd's version
        # counters would refuse the step otherwise).
        return nn.ReLU(inplace=True)
    elif k == "lrelu":
        return nn.LeakyReLU(spec.slope, inplace=True)
    elif k == "tanh":
        return nn.Tanh()
    elif k == "unflatten":
        return nn.Unflatten(1, (spec.out_ch, spec.size, spec.size))
    elif k == "flatten":
        return nn.Flatten()
    else:
        raise ValueError(f"unknown layer kind {k!r}")
    nn.init.normal_(m.weight, 0.0, INIT_STD)
    if m.bias is not None:
        nn.init.zeros_(m.bias)
    if spec.sn:
        # Miyato et al. 2018, Algorithm 1: W / sigma(W), sigma from one power iteration per
        # training forward; u (and v) are buffers, gradients flow through sigma.
        m = spectral_norm(m)
    return m


def build(specs: list[Layer], in_size: int = 0, cpu_gemm: bool = False) -> nn.Sequential:
    """The layers of ``specs``; ``in_size`` is the input's spatial side (0 for a latent).
    ``cpu_gemm``: let conv layers take :mod:`vanilla_gan.torch_gemm`'s CPU paths."""
    mods: list[nn.Module] = []
    prev: Layer | None = None
    for spec, path in zip(specs, layer_paths(specs, in_size, enabled=cpu_gemm)):
        if spec.kind == "bn":
            # BatchNorm1d after a dense layer (SN-DCGAN G), BatchNorm2d after convs.
            cls = nn.BatchNorm1d if prev is not None and prev.kind == "dense" else nn.BatchNorm2d
            m = cls(spec.out_ch, eps=BN_EPS, momentum=BN_MOMENTUM)
            nn.init.normal_(m.weight, 1.0, INIT_STD)
            nn.init.zeros_(m.bias)
            mods.append(m)
        else:
            mods.append(_module(spec, path))
        prev = spec
    return nn.Sequential(*mods)


class Generator(nn.Module):
    """z (N, z_dim) -> images (N, C, res, res) in [-1, 1]."""

    def __init__(self, cfg: TrainConfig, channels: int) -> None:
        super().__init__()
        self.z_dim, self.res, self.channels = cfg.z_dim, cfg.res, channels
        self.net = build(
            generator_layers(cfg.model, cfg.res, cfg.width, cfg.z_dim, channels, sn=cfg.sn_g),
            cpu_gemm=cfg.cpu_gemm_convs,
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """images (N, C, res, res) -> logits (N,)."""

    def __init__(self, cfg: TrainConfig, channels: int) -> None:
        super().__init__()
        self.net = build(
            discriminator_layers(
                cfg.model, cfg.res, cfg.width, channels, sn=cfg.sn_d, slope=cfg.lrelu_slope
            ),
            in_size=cfg.res,
            cpu_gemm=cfg.cpu_gemm_convs,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).reshape(-1)


def build_models(cfg: TrainConfig, channels: int) -> tuple[Generator, Discriminator]:
    """G then D, initialised from the current torch RNG (seed it first)."""
    return Generator(cfg, channels), Discriminator(cfg, channels)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (SN's ``original`` weights count once; buffers not counted)."""
    return sum(p.numel() for p in model.parameters())
