"""Framework-neutral layer lists for DCGAN and SN-DCGAN.

Both ``torch_nets`` and ``tf_nets`` build their networks by walking the list
returned here, so "the same layers in both frameworks" holds by construction.
Shapes and weight layouts follow PyTorch conventions (NCHW, Conv (out, in, kh,
kw), ConvTranspose (in, out, kh, kw)); the Keras side transposes where needed.

DCGAN (Radford et al. 2016, Fig. 1; pytorch/examples ``dcgan``): G starts with a
4x4 transposed conv from the 1x1 latent, then one 4x4 stride-2 transposed conv
per doubling, channels halving from ``width * res / 8`` down to ``width``, BN +
ReLU after each, tanh on the RGB output. D mirrors it: 4x4 stride-2 convs
doubling channels from ``width``, BN on all but the input layer, LeakyReLU(0.2),
and a final 4x4 valid conv to one logit. The number of stages is
``log2(res) - 2``, so 32, 64 and 128 all come from the same loop.

SN-DCGAN (Miyato et al. 2018, Table 3, "standard CNN"): G = dense -> (M_g x M_g
x 8w) with BN + ReLU, three 4x4 stride-2 deconvs (4w, 2w, w) with BN + ReLU, a
3x3 stride-1 conv to RGB and tanh. D = [3x3 s1 conv, 4x4 s2 conv] x 3 with w, 2w,
4w channels, a 3x3 s1 conv with 8w, LeakyReLU(0.1) after every conv, dense -> 1;
no batch norm in D (spectral norm instead). The paper sets M_g = M / 8 (4 for
32x32 CIFAR-10, 6 for 48x48 STL-10), i.e. three up/down stages and a bottom
width that grows with the resolution; we generate 64 and 128 the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    """One layer. ``kind`` is one of:

    ``dense`` (in_ch -> out_ch), ``conv`` / ``convT`` (k, stride, pad as in torch),
    ``bn`` (BatchNorm over ``out_ch`` channels / features), ``relu``, ``lrelu``
    (``slope``), ``tanh``, ``unflatten`` (features in C,H,W order -> image with
    ``out_ch`` channels and ``size`` side), ``flatten`` (image -> features in C,H,W
    order, the torch order, so dense weights are layout-identical).
    """

    kind: str
    in_ch: int = 0
    out_ch: int = 0
    k: int = 0
    stride: int = 1
    pad: int = 0
    bias: bool = True
    sn: bool = False
    slope: float = 0.0
    size: int = 0  # spatial side of the output of this layer (for shape checks / unflatten)


def _stages(res: int) -> int:
    n = int(math.log2(res)) - 2
    if 2 ** (n + 2) != res or n < 1:
        raise ValueError(f"resolution must be a power of two >= 8, got {res}")
    return n


def generator_layers(
    model: str, res: int, width: int, z_dim: int, channels: int, sn: bool = False
) -> list[Layer]:
    """G's layer list; input is a (N, z_dim) latent, output (N, channels, res, res) in [-1, 1]."""
    L: list[Layer] = []
    if model == "dcgan":
        n = _stages(res)
        ch = width * 2 ** (n - 1)
        # Project the latent (as a 1x1 image) to 4x4 with a transposed conv (pytorch/examples).
        L += [
            Layer("unflatten", z_dim, z_dim, size=1),
            Layer("convT", z_dim, ch, k=4, stride=1, pad=0, bias=False, sn=sn, size=4),
            Layer("bn", ch, ch),
            Layer("relu"),
        ]
        size = 4
        for _ in range(n - 1):
            size *= 2
            L += [
                Layer("convT", ch, ch // 2, k=4, stride=2, pad=1, bias=False, sn=sn, size=size),
                Layer("bn", ch // 2, ch // 2),
                Layer("relu"),
            ]
            ch //= 2
        L += [
            Layer("convT", ch, channels, k=4, stride=2, pad=1, bias=True, sn=sn, size=res),
            Layer("tanh"),
        ]
        return L
    if model == "sndcgan":
        bottom, ch = res // 8, width * 8
        L += [
            Layer("dense", z_dim, bottom * bottom * ch, bias=False, sn=sn),
            Layer("bn", bottom * bottom * ch, bottom * bottom * ch),
            Layer("relu"),
            Layer("unflatten", bottom * bottom * ch, ch, size=bottom),
        ]
        size = bottom
        for _ in range(3):
            size *= 2
            L += [
                Layer("convT", ch, ch // 2, k=4, stride=2, pad=1, bias=False, sn=sn, size=size),
                Layer("bn", ch // 2, ch // 2),
                Layer("relu"),
            ]
            ch //= 2
        L += [
            Layer("conv", ch, channels, k=3, stride=1, pad=1, bias=True, sn=sn, size=res),
            Layer("tanh"),
        ]
        return L
    raise ValueError(f"unknown model {model!r}")


def discriminator_layers(
    model: str, res: int, width: int, channels: int, sn: bool, slope: float
) -> list[Layer]:
    """D's layer list; input (N, channels, res, res), output (N,) logits."""
    L: list[Layer] = []
    if model == "dcgan":
        n = _stages(res)
        ch_in, ch, size = channels, width, res
        for i in range(n):
            size //= 2
            # No BN on D's input layer (Radford et al. section 3). With --sn-d, spectral norm
            # replaces BN in D, as in Miyato et al.'s discriminators (which have no BN).
            use_bn = i > 0 and not sn
            L.append(
                Layer("conv", ch_in, ch, k=4, stride=2, pad=1, bias=not use_bn, sn=sn, size=size)
            )
            if use_bn:
                L.append(Layer("bn", ch, ch))
            L.append(Layer("lrelu", slope=slope))
            ch_in, ch = ch, ch * 2
        L += [
            Layer("conv", ch_in, 1, k=4, stride=1, pad=0, bias=True, sn=sn, size=1),
            Layer("flatten", 1, 1),
        ]
        return L
    if model == "sndcgan":
        # Paper Table 3 doubles the channels at the 3x3 stride-1 convs (64, 64, 128, 128, 256,
        # 256, 512); chainer-gan-lib's SNDCGANDiscriminator doubles at the strided ones
        # instead. We follow the paper's table.
        ch_in, ch, size = channels, width, res
        for _ in range(3):
            L += [
                Layer("conv", ch_in, ch, k=3, stride=1, pad=1, sn=sn, size=size),
                Layer("lrelu", slope=slope),
            ]
            size //= 2
            L += [
                Layer("conv", ch, ch, k=4, stride=2, pad=1, sn=sn, size=size),
                Layer("lrelu", slope=slope),
            ]
            ch_in, ch = ch, ch * 2
        L += [
            Layer("conv", ch_in, ch, k=3, stride=1, pad=1, sn=sn, size=size),
            Layer("lrelu", slope=slope),
            Layer("flatten", ch * size * size, ch * size * size),
            Layer("dense", ch * size * size, 1, sn=sn),
        ]
        return L
    raise ValueError(f"unknown model {model!r}")


# Channels at the 8x8 side from which the 4x4-end stride-2 layers take the GEMM path of
# vanilla_gan/torch_gemm.py and tf_gemm.py (measured there).
GEMM_MIN_CHANNELS = 256


def path_for(spec: Layer, in_size: int) -> str | None:
    """``"dense"``, ``"gemm"`` or None (the framework's own kernels) for a layer whose input
    has spatial side ``in_size`` (see vanilla_gan/torch_gemm.py)."""
    kind, k, stride, pad = spec.kind, spec.k, spec.stride, spec.pad
    if kind == "conv" and stride == 1 and pad == 0 and k == in_size:
        return "dense"
    if kind == "convT" and stride == 1 and pad == 0 and in_size == 1:
        return "dense"
    if kind not in ("conv", "convT") or (k, stride, pad) != (4, 2, 1):
        return None
    if kind == "conv" and in_size == 8 and spec.in_ch >= GEMM_MIN_CHANNELS:
        return "gemm"
    if kind == "convT" and in_size == 4 and spec.out_ch >= GEMM_MIN_CHANNELS:
        return "gemm"
    return None


def layer_paths(specs: list[Layer], in_size: int = 0, enabled: bool = True) -> list[str | None]:
    """:func:`path_for` of every layer of ``specs`` (None for all but conv / convT layers, and
    for every layer when not ``enabled``); ``in_size`` is the input's spatial side (0 for a
    latent)."""
    paths: list[str | None] = []
    size = in_size
    for spec in specs:
        conv = enabled and spec.kind in ("conv", "convT")
        paths.append(path_for(spec, size) if conv else None)
        if spec.kind in ("conv", "convT", "unflatten"):
            size = spec.size
    return paths
