"""Equalised LR, pixel norm, minibatch stddev and the gradient penalty against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from progan_common.config import ProGANConfig
from progan_torch.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    mbstd_group_size,
    minibatch_stddev,
    pixel_norm,
)
from progan_torch.loss import gradient_penalty
from progan_torch.networks import Discriminator, Generator


def test_equalized_scale_per_layer_type(tiny_cfg):
    cfg = tiny_cfg(latent_dim=8)
    G, D = Generator(cfg, 3, num_classes=2), Discriminator(cfg, 3, num_classes=2)
    nf4 = cfg.channels_at(4)
    # latent (+ one-hot) -> 4x4 dense: gain sqrt(2)/4 (official Theano-matching override)
    assert G.blocks[0].dense.scale == pytest.approx(math.sqrt(2) / 4 / math.sqrt(8 + 2))
    # hidden 3x3 conv: gain sqrt(2), fan_in 9 * C_in
    c_in = G.blocks[2].conv0.in_channels
    assert G.blocks[2].conv0.scale == pytest.approx(math.sqrt(2) / math.sqrt(9 * c_in))
    # toRGB: 1x1, gain 1
    for k, t in enumerate(G.torgb):
        assert t.scale == pytest.approx(1.0 / math.sqrt(cfg.channels_at(4 * 2**k)))
    # fromRGB: 1x1, gain sqrt(2)
    assert D.fromrgb[1].scale == pytest.approx(math.sqrt(2) / math.sqrt(3))
    # D head: conv sees nf + 1 channels (mbstd), dense0 gain sqrt(2), last dense gain 1
    assert D.blocks[0].conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(9 * (nf4 + 1)))
    assert D.blocks[0].dense0.scale == pytest.approx(math.sqrt(2) / math.sqrt(16 * nf4))
    assert D.blocks[0].dense1.scale == pytest.approx(1.0 / math.sqrt(nf4))
    assert D.blocks[0].dense1.out_features == 1 + 2


def test_scale_applied_at_run_time_and_bias_unscaled():
    torch.manual_seed(0)
    conv = EqualizedConv2d(5, 7, 3)
    lin = EqualizedLinear(6, 4, gain=1.0)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.15)  # stored N(0, 1)
    with torch.no_grad():
        conv.bias.fill_(0.5)
        lin.bias.fill_(-2.0)
    x, v = torch.randn(2, 5, 6, 6), torch.randn(3, 6)
    ref = F.conv2d(x, conv.weight * (math.sqrt(2) / math.sqrt(45)), padding=1) + 0.5
    torch.testing.assert_close(conv(x), ref)
    torch.testing.assert_close(lin(v), v @ (lin.weight / math.sqrt(6)).T - 2.0)
    # ablation: weights carry the He std, no run-time scale
    plain = EqualizedConv2d(5, 7, 3, equalized=False)
    assert plain.scale == 1.0
    assert plain.weight.std().item() == pytest.approx(math.sqrt(2 / 45), rel=0.2)


def test_pixel_norm_unit_rms():
    x = torch.randn(4, 16, 5, 5) * 7 + 3
    rms = pixel_norm(x).square().mean(dim=1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-5, rtol=0)
    z = pixel_norm(torch.randn(3, 10) * 4)
    torch.testing.assert_close(z.square().mean(dim=1), torch.ones(3), atol=1e-5, rtol=0)


def _pixel_norm_by_autograd(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """The formula written out, differentiated by autograd (the reference for the backward)."""
    return x * torch.rsqrt(x.float().square().mean(dim=1, keepdim=True) + eps).to(x.dtype)


@pytest.mark.parametrize("shape", [(4, 16, 5, 5), (3, 10)])
def test_pixel_norm_hand_written_backward(shape):
    """The hand-written backward: gradcheck in float64, and the same values and gradients as
    autograd's backward of the formula in float32, channels-last included."""
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(pixel_norm, (x,))
    xs = [torch.randn(*shape) * 3]
    if len(shape) == 4:
        xs.append(xs[0].contiguous(memory_format=torch.channels_last))
    for x in xs:
        x.requires_grad_(True)
        g = torch.randn(*shape)
        y = pixel_norm(x)
        torch.testing.assert_close(y, _pixel_norm_by_autograd(x), atol=0, rtol=0)
        (got,) = torch.autograd.grad(y, x, g)
        (want,) = torch.autograd.grad(_pixel_norm_by_autograd(x), x, g)
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_pixel_norm_bfloat16_and_no_silent_double_backward():
    """bf16 input: bf16 output and gradient with float32 statistics, close to float32; a
    second differentiation raises instead of returning a wrong value."""
    x32 = torch.randn(2, 32, 3, 3) * 2
    g = torch.randn(2, 32, 3, 3)
    xb = x32.bfloat16().requires_grad_(True)
    yb = pixel_norm(xb)
    (gb,) = torch.autograd.grad(yb, xb, g.bfloat16())
    assert yb.dtype == gb.dtype == torch.bfloat16
    x = xb.detach().float().requires_grad_(True)
    (g32,) = torch.autograd.grad(pixel_norm(x), x, g)
    torch.testing.assert_close(gb.float(), g32, atol=0.05, rtol=0.02)
    x = torch.randn(2, 8, 3, 3, requires_grad=True)
    (gx,) = torch.autograd.grad(pixel_norm(x).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        gx.sum().backward()


def _mbstd_numpy(x: np.ndarray, group: int) -> np.ndarray:
    """Direct computation: official strided groups {m, m + M, m + 2M, ...}, M = N / G."""
    n = x.shape[0]
    g = mbstd_group_size(n, group)
    m_count = n // g
    out = np.zeros(n)
    for m in range(m_count):
        members = [m + j * m_count for j in range(g)]
        v = x[members].astype(np.float64)
        std = np.sqrt(((v - v.mean(axis=0)) ** 2).mean(axis=0) + 1e-8)
        out[members] = std.mean()
    return out


@pytest.mark.parametrize("n,group", [(8, 4), (12, 4), (4, 4), (2, 4), (6, 4), (5, 4)])
def test_minibatch_stddev_matches_numpy(n, group):
    x = torch.randn(n, 3, 4, 4)
    # make groups distinguishable: sample i scaled by (1 + i) so strided vs contiguous differ
    x = x * torch.arange(1, n + 1).view(-1, 1, 1, 1)
    y = minibatch_stddev(x, group)
    assert y.shape == (n, 4, 4, 4)
    torch.testing.assert_close(y[:, :3], x)
    ref = _mbstd_numpy(x.numpy(), group)
    got = y[:, 3].numpy()
    assert np.allclose(got, ref[:, None, None], rtol=1e-5)
    assert np.all(got == got[:, :1, :1])  # constant over H, W


def test_minibatch_stddev_group_rules():
    assert mbstd_group_size(8, 4) == 4
    assert mbstd_group_size(6, 4) == 3  # largest divisor <= 4: explicit, not an error
    assert mbstd_group_size(7, 4) == 1
    assert mbstd_group_size(2, 4) == 2
    # chunks: one call over cat([a, b]) equals two separate calls
    a, b = torch.randn(8, 2, 4, 4), torch.randn(8, 2, 4, 4)
    joint = minibatch_stddev(torch.cat([a, b]), 4, chunks=2)
    torch.testing.assert_close(joint, torch.cat([minibatch_stddev(a, 4), minibatch_stddev(b, 4)]))
    assert not torch.allclose(minibatch_stddev(torch.cat([a, b]), 4), joint)


def test_gradient_penalty_on_linear_critic():
    """For D(x) = w.x the input gradient is w, so the penalty is lambda/gamma^2 (||w|| - gamma)^2."""
    torch.manual_seed(1)
    w = torch.randn(3 * 4 * 4)
    critic = lambda x: (x.flatten(1) @ w).unsqueeze(1)  # noqa: E731
    mixed = torch.randn(5, 3, 4, 4)
    for gamma, lam in [(1.0, 10.0), (750.0, 10.0), (2.0, 3.0)]:
        gp, norms = gradient_penalty(critic, mixed, gamma, lam)
        expect = lam / gamma**2 * (w.norm() - gamma) ** 2
        torch.testing.assert_close(norms, w.norm().expand(5))
        torch.testing.assert_close(gp, expect.expand(5))
    # it is differentiable (double backward): d gp / d w = 2 lam/gamma^2 (|w| - gamma) w/|w|
    w.requires_grad_(True)
    gp, _ = gradient_penalty(lambda x: (x.flatten(1) @ w).unsqueeze(1), mixed, 1.0, 10.0)
    (g,) = torch.autograd.grad(gp.mean(), w)
    torch.testing.assert_close(g, 20.0 * (w.norm() - 1.0) * w / w.norm())


def test_param_counts_at_1024():
    """Paper config at 1024 (512 channels up to 32x32, halving to 16 at 1024; latent 512).

    G = latent dense 512*8192 + 512 (per-channel bias) + 4x4 conv, 8 blocks of two 3x3
    convs, 9 toRGB layers (every level's exists) = 23,079,115 ("23.1M", paper table 2;
    the same figure other public ports print). D = 9 fromRGB layers, 8 blocks, head
    conv on 513 channels (the minibatch-stddev channel), dense 8192->512, dense 512->1 =
    23,087,249 ("23.1M").
    """
    cfg = ProGANConfig(max_res=1024)
    G, D = Generator(cfg), Discriminator(cfg)
    assert sum(p.numel() for p in G.parameters()) == 23_079_115
    assert sum(p.numel() for p in D.parameters()) == 23_087_249
