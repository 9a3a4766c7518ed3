"""ProGAN generator and discriminator, built for ``max_res`` up front from the channel schedule.

Structure, names and layouts follow ``PROGAN_SPEC.md`` (shared with ``progan_tf``) and the
official ``G_paper`` / ``D_paper`` (tkarras/progressive_growing_of_gans, ``networks.py``).
Level ``k`` works at ``4 * 2**k``; ``blocks[k]`` / ``torgb[k]`` / ``fromrgb[k]`` belong to it.
Every block exists from the start, so parameters and optimiser state never depend on the
stage; the stage is the ``level`` / ``alpha`` buffers (saved in the state_dict).

``cfg.fused_scale`` (official default, every block from 8x8 up) fuses G's "upsample +
conv3x3" into one transposed conv and D's "conv3x3 + avgpool" into one strided conv
(``progan_torch.layers.UpConv2d`` / ``ConvDown2d``): same parameters, 2.25x fewer
multiply-adds. In G the fused block is the same function as the unfused one. In D it is
not quite: the official fused block applies the LReLU *after* the pooling
(``act(conv2d_downscale2d(x))``), the unfused one before it (``downscale2d(act(conv2d(x)))``,
also the paper's Table 2 and the original Theano code), and we follow each form.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from progan_common.config import ProGANConfig
from progan_torch.layers import (
    SQRT2,
    ConvDown2d,
    EqualizedConv2d,
    EqualizedLinear,
    UpConv2d,
    apply_spectral_norm,
    downsample2x,
    lerp,
    lrelu,
    minibatch_stddev,
    pixel_norm,
    upsample2x,
)

Alpha = float | torch.Tensor


def num_levels(max_res: int) -> int:
    """Blocks per network: 4x4 is level 0, ``max_res`` is level ``log2(max_res) - 2``."""
    return int(math.log2(max_res)) - 1


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class _StageState(nn.Module):
    """``level`` and ``alpha`` as buffers: part of the state_dict, moved with ``.to()``."""

    def _init_state(self, levels: int) -> None:
        self.levels = levels
        self.register_buffer("level", torch.tensor(levels - 1, dtype=torch.long))
        self.register_buffer("alpha", torch.tensor(1.0))

    def set_stage(self, level: int, alpha: float) -> None:
        if not 0 <= level < self.levels:
            raise ValueError(f"level {level} outside 0..{self.levels - 1}")
        self.level.fill_(int(level))
        self.alpha.fill_(float(alpha))

    def _resolve(
        self, level: int | None, fading: bool | None, alpha: Alpha | None
    ) -> tuple[int, bool, Alpha]:
        """The call's stage; ``None`` takes the stored one. ``fading`` None: fading when
        alpha < 1 (one host read). The trainers pass an explicit flag and, during a fade, alpha
        as a tensor (one compiled graph for every alpha); when not fading the old path is
        skipped and alpha is ignored."""
        if level is None:
            level = int(self.level)
        if alpha is None:
            alpha = float(self.alpha)
        if fading is None:
            fading = float(alpha) < 1.0
        elif not isinstance(fading, bool):
            raise TypeError(
                f"fading must be a bool (or None: from alpha), got {type(fading).__name__}; "
                "the call order is (x, [labels,] level, fading, alpha)"
            )
        return level, fading and level > 0, alpha


# --------------------------------------------------------------------------- generator
class LatentToMap(EqualizedLinear):
    """The latent -> 4x4 dense layer: output reshaped CHANNEL-FIRST to (nf, 4, 4), bias per
    channel added after the reshape (official ``tf.reshape(x, [-1, nf, 4, 4])`` + apply_bias)."""

    def __init__(self, in_features: int, channels: int, equalized: bool = True) -> None:
        # gain sqrt(2)/4: the official override "to match the original Theano implementation"
        super().__init__(
            in_features, channels * 16, gain=SQRT2 / 4, equalized=equalized, bias=False
        )
        self.channels = channels
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.scaled_weight()).reshape(-1, self.channels, 4, 4)
        return x + self.bias.view(1, -1, 1, 1)


class GFirstBlock(nn.Module):
    """4x4: dense -> LReLU -> PN -> conv3x3 -> LReLU -> PN."""

    def __init__(self, in_features: int, nf: int, equalized: bool, pn) -> None:
        super().__init__()
        self.dense = LatentToMap(in_features, nf, equalized)
        self.conv = EqualizedConv2d(nf, nf, 3, equalized=equalized)
        self.pn = pn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pn(lrelu(self.dense(x)))
        return self.pn(lrelu(self.conv(x)))


class GBlock(nn.Module):
    """Upsample 2x (nearest) -> conv3x3 -> LReLU -> PN -> conv3x3 -> LReLU -> PN.

    ``fused``: the upsample and conv0 run as one transposed conv (same weights, same result).
    """

    def __init__(self, nf_in: int, nf_out: int, equalized: bool, pn, fused: bool = False) -> None:
        super().__init__()
        self.fused = fused
        conv0 = UpConv2d if fused else EqualizedConv2d
        self.conv0 = conv0(nf_in, nf_out, 3, equalized=equalized)
        self.conv1 = EqualizedConv2d(nf_out, nf_out, 3, equalized=equalized)
        self.pn = pn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv0(x) if self.fused else self.conv0(upsample2x(x))
        x = self.pn(lrelu(x))
        return self.pn(lrelu(self.conv1(x)))


class Generator(_StageState):
    """``G(z, labels)`` at the current ``level`` / ``alpha``; linear output (no tanh)."""

    def __init__(self, cfg: ProGANConfig, img_channels: int = 3, num_classes: int = 0) -> None:
        super().__init__()
        self.latent_dim, self.num_classes, self.img_channels = (
            cfg.latent_dim,
            num_classes,
            img_channels,
        )
        self.normalize_latents = cfg.normalize_latents
        eq = cfg.equalized_lr
        pn = pixel_norm if cfg.pixelnorm else _identity
        levels = num_levels(cfg.max_res)
        nf = [cfg.channels_at(4 * 2**k) for k in range(levels)]
        blocks: list[nn.Module] = [GFirstBlock(cfg.latent_dim + num_classes, nf[0], eq, pn)]
        blocks += [GBlock(nf[k - 1], nf[k], eq, pn, cfg.fused_scale) for k in range(1, levels)]
        self.blocks = nn.ModuleList(blocks)
        # toRGB: 1x1, gain 1, linear (official torgb: conv2d(x, num_channels, 1, gain=1)).
        self.torgb = nn.ModuleList(
            EqualizedConv2d(nf[k], img_channels, 1, gain=1.0, equalized=eq) for k in range(levels)
        )
        self._init_state(levels)
        if cfg.spectral_norm_g:
            apply_spectral_norm(self)

    def embed(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenate one-hot labels to the latent and pixel-normalise the result (official
        G_paper normalises ``concat([latents, labels])``)."""
        if self.num_classes:
            if labels is None:
                raise ValueError("this generator is conditional: pass labels")
            z = torch.cat([z, F.one_hot(labels.long(), self.num_classes).to(z.dtype)], dim=1)
        return pixel_norm(z) if self.normalize_latents else z

    def forward(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        level: int | None = None,
        fading: bool | None = None,
        alpha: Alpha | None = None,
    ) -> torch.Tensor:
        """Images at ``level`` (default: the stored stage); ``fading`` evaluates the previous
        level's path and blends it by ``alpha`` (official lerp by ``lod_in - lod``)."""
        level, fading, alpha = self._resolve(level, fading, alpha)
        h = self.blocks[0](self.embed(z, labels))
        for k in range(1, level):
            h = self.blocks[k](h)
        if level == 0:
            return self.torgb[0](h)
        new = self.torgb[level](self.blocks[level](h))
        if not fading:
            return new
        return lerp(upsample2x(self.torgb[level - 1](h)), new, alpha)


# ----------------------------------------------------------------------- discriminator
class FromRGB(EqualizedConv2d):
    """1x1 conv + LReLU (official ``fromrgb``)."""

    def __init__(self, img_channels: int, nf: int, equalized: bool) -> None:
        super().__init__(img_channels, nf, 1, equalized=equalized)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lrelu(super().forward(x))


class DBlock(nn.Module):
    """conv3x3 -> LReLU -> conv3x3 (to the lower level's width) -> LReLU -> avgpool 2x2.

    ``fused`` (official default): conv1 and the pool run as one strided conv and the LReLU
    comes after the pool, as in the official ``act(apply_bias(conv2d_downscale2d(x)))``.
    """

    def __init__(self, nf_in: int, nf_out: int, equalized: bool, fused: bool = False) -> None:
        super().__init__()
        self.fused = fused
        self.conv0 = EqualizedConv2d(nf_in, nf_in, 3, equalized=equalized)
        conv1 = ConvDown2d if fused else EqualizedConv2d
        self.conv1 = conv1(nf_in, nf_out, 3, equalized=equalized)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(lrelu(self.conv0(x)))
        return lrelu(x) if self.fused else downsample2x(lrelu(x))


class DHead(nn.Module):
    """4x4: minibatch stddev -> conv3x3 -> LReLU -> flatten (NCHW) -> dense -> LReLU -> dense.

    Output column 0 is the Wasserstein score, columns 1.. the AC-GAN label logits.
    ``nf`` is the 4x4 width (official ``nf(1)``), ``nf_dense`` dense0's width (official
    ``Dense0``: ``nf(res - 2)`` at res = 2, i.e. ``nf(0)``; equal to ``nf`` whenever
    ``fmap_base / 2 >= fmap_max``, as in every preset).
    """

    def __init__(
        self, nf: int, nf_dense: int, num_classes: int, mbstd_group: int, equalized: bool
    ) -> None:
        super().__init__()
        self.mbstd_group = mbstd_group if mbstd_group > 1 else 0
        self.conv = EqualizedConv2d(nf + (1 if self.mbstd_group else 0), nf, 3, equalized=equalized)
        self.dense0 = EqualizedLinear(nf * 16, nf_dense, equalized=equalized)
        self.dense1 = EqualizedLinear(nf_dense, 1 + num_classes, gain=1.0, equalized=equalized)

    def forward(self, x: torch.Tensor, chunks: int = 1) -> torch.Tensor:
        x = x.contiguous()  # NCHW order from here on (see progan_torch.training.build_models)
        if self.mbstd_group:
            x = minibatch_stddev(x, self.mbstd_group, chunks)
        x = lrelu(self.conv(x))
        x = lrelu(self.dense0(x.flatten(1)))  # flatten of the logical NCHW tensor: official order
        return self.dense1(x)


class Discriminator(_StageState):
    """``D(img)`` at the current ``level`` / ``alpha`` -> (N, 1 + num_classes)."""

    def __init__(self, cfg: ProGANConfig, img_channels: int = 3, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes, self.img_channels = num_classes, img_channels
        eq = cfg.equalized_lr
        levels = num_levels(cfg.max_res)
        nf = [cfg.channels_at(4 * 2**k) for k in range(levels)]
        self.fromrgb = nn.ModuleList(FromRGB(img_channels, nf[k], eq) for k in range(levels))
        # channels_at(2) is the official nf(0): the dense layer's width (see DHead).
        head = DHead(nf[0], cfg.channels_at(2), num_classes, cfg.mbstd_group, eq)
        blocks: list[nn.Module] = [head]
        blocks += [DBlock(nf[k], nf[k - 1], eq, cfg.fused_scale) for k in range(1, levels)]
        self.blocks = nn.ModuleList(blocks)
        self._init_state(levels)
        if cfg.spectral_norm_d:
            apply_spectral_norm(self)

    def forward(
        self,
        img: torch.Tensor,
        level: int | None = None,
        fading: bool | None = None,
        alpha: Alpha | None = None,
        chunks: int = 1,
    ) -> torch.Tensor:
        """Scores at ``level`` / ``fading`` / ``alpha`` as :meth:`Generator.forward`;
        ``chunks``: the batch is that many independent sub-batches (see minibatch_stddev)."""
        level, fading, alpha = self._resolve(level, fading, alpha)
        x = self.fromrgb[level](img)
        if level > 0:
            x = self.blocks[level](x)
            if fading:
                x = lerp(self.fromrgb[level - 1](downsample2x(img)), x, alpha)
        for k in range(level - 1, 0, -1):
            x = self.blocks[k](x)
        return self.blocks[0](x, chunks)
