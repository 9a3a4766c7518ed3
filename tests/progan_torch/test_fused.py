"""Fused resampling convs (official ``fused_scale``): same weights -> same linear function.

``UpConv2d(w)(x) == EqualizedConv2d(w)(upsample2x(x))`` and
``ConvDown2d(w)(x) == downsample2x(EqualizedConv2d(w)(x))`` in value and in gradient, for
odd channel counts and kernel sizes, equalised and not; whole generators agree fused and
unfused; checkpoints load across the switch.
"""

from __future__ import annotations

import pytest
import torch

from progan_torch.layers import (
    ConvDown2d,
    EqualizedConv2d,
    UpConv2d,
    downsample2x,
    mbstd_group_size,
    upsample2x,
)
from progan_torch.networks import Discriminator, Generator

SHAPES = [(3, 5, 3), (7, 1, 3), (4, 6, 1), (5, 3, 5)]  # (C_in, C_out, k)


def _pair(cls, c_in: int, c_out: int, k: int, equalized: bool):
    plain = EqualizedConv2d(c_in, c_out, k, equalized=equalized)
    with torch.no_grad():
        plain.bias.normal_()
    fused = cls(c_in, c_out, k, equalized=equalized)
    fused.load_state_dict(plain.state_dict())  # the same stored weight and bias
    assert fused.scale == plain.scale
    return plain, fused


# Non-square, so rows and columns differ; the 8x8 level and a larger one.
UP_SIZES = [(5, 6), (9, 8)]
DOWN_SIZES = [(8, 6), (18, 16)]


@pytest.mark.parametrize("size", UP_SIZES, ids=["small", "large"])
@pytest.mark.parametrize("equalized", [True, False])
@pytest.mark.parametrize("c_in,c_out,k", SHAPES)
def test_upconv_equals_upsample_then_conv(c_in, c_out, k, equalized, size):
    torch.manual_seed(c_in * 10 + k)
    plain, fused = _pair(UpConv2d, c_in, c_out, k, equalized)
    x = torch.randn(2, c_in, *size, requires_grad=True)
    out, ref = fused(x), plain(upsample2x(x))
    assert out.shape == (2, c_out, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    g = torch.randn_like(ref)
    gf = torch.autograd.grad(out, [x, fused.weight, fused.bias], g)
    gp = torch.autograd.grad(ref, [x, plain.weight, plain.bias], g)
    for a, b in zip(gf, gp):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("size", DOWN_SIZES, ids=["small", "large"])
@pytest.mark.parametrize("equalized", [True, False])
@pytest.mark.parametrize("c_in,c_out,k", SHAPES)
def test_convdown_equals_conv_then_pool(c_in, c_out, k, equalized, size):
    torch.manual_seed(c_in * 10 + k)
    plain, fused = _pair(ConvDown2d, c_in, c_out, k, equalized)
    x = torch.randn(2, c_in, *size, requires_grad=True)
    out, ref = fused(x), downsample2x(plain(x))
    assert out.shape == (2, c_out, size[0] // 2, size[1] // 2)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    g = torch.randn_like(ref)
    gf = torch.autograd.grad(out, [x, fused.weight, fused.bias], g)
    gp = torch.autograd.grad(ref, [x, plain.weight, plain.bias], g)
    for a, b in zip(gf, gp):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)


def test_fused_layers_run_channels_last():
    torch.manual_seed(0)
    plain, fused = _pair(UpConv2d, 6, 4, 3, True)
    x = torch.randn(2, 6, 4, 4).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fused(x), plain(upsample2x(x)), atol=1e-5, rtol=0)


def _pair_nets(tiny_cfg, cls):
    torch.manual_seed(0)
    fused = cls(tiny_cfg(fused_scale=True), 3)
    plain = cls(tiny_cfg(fused_scale=False), 3)
    plain.load_state_dict(fused.state_dict())  # strict: same keys and shapes
    fused.load_state_dict(plain.state_dict())
    return fused, plain


@torch.no_grad()
def test_generator_same_function_fused_or_not(tiny_cfg):
    """In float64, so the check is sharp: in float32 even the unfused net alone differs from
    its float64 self by ~1e-4 at 32x32 here (pixel norm over 2 channels is ill-conditioned)."""
    fused, plain = _pair_nets(tiny_cfg, Generator)
    assert isinstance(fused.blocks[1].conv0, UpConv2d)
    assert type(plain.blocks[1].conv0) is EqualizedConv2d
    fused, plain = fused.double(), plain.double()
    z = torch.randn(4, 8, dtype=torch.float64)
    for level in range(fused.levels):
        for alpha in (0.0, 0.5, 1.0):
            a, fading = torch.tensor(alpha, dtype=torch.float64), alpha < 1
            torch.testing.assert_close(
                fused(z, None, level, fading, a),
                plain(z, None, level, fading, a),
                atol=1e-10,
                rtol=0,
            )


@torch.no_grad()
def test_discriminator_fused_moves_lrelu_after_pool(tiny_cfg):
    """Official fused D block: act(conv_down(x)); unfused: pool(act(conv(x))). Same weights,
    so the networks share one checkpoint, but the functions differ (documented)."""
    fused, plain = _pair_nets(tiny_cfg, Discriminator)
    assert isinstance(fused.blocks[2].conv1, ConvDown2d)
    block_f, block_p = fused.blocks[2], plain.blocks[2]
    x = torch.randn(4, block_f.conv0.in_channels, 16, 16)
    h = block_p.conv1(torch.nn.functional.leaky_relu(block_p.conv0(x), 0.2))
    torch.testing.assert_close(
        block_f(x), torch.nn.functional.leaky_relu(downsample2x(h), 0.2), atol=1e-5, rtol=0
    )
    img = torch.randn(4, 3, 16, 16)
    assert not torch.allclose(fused(img, level=2, alpha=1.0), plain(img, level=2, alpha=1.0))
    # at 4x4 nothing is resampled: identical
    img4 = torch.randn(4, 3, 4, 4)
    torch.testing.assert_close(fused(img4, level=0, alpha=1.0), plain(img4, level=0, alpha=1.0))


@pytest.mark.parametrize(
    "n,group,expected",
    [(16, 16, 16), (14, 16, 14), (6, 16, 6), (3, 16, 3), (16, 4, 4), (3, 4, 3), (8, 4, 4)],
)
def test_mbstd_group_is_official_min(n, group, expected):
    """Official ``tf.minimum(group_size, N)``, e.g. the paper preset's group 16 at batches
    16, 14, 6, 3 (the whole minibatch); only a ragged batch falls back to a divisor."""
    assert mbstd_group_size(n, group) == expected == min(group, n)
    assert mbstd_group_size(6, 4) == 3  # ragged: 4 does not divide 6 (official would fail)


def test_fused_taps_matches_the_padded_definition_and_its_gradients():
    """``fused_taps`` builds the kernel without padding and has a hand-written backward: check
    both against the definition (pad by one, sum the four shifted copies), and the second
    derivative (the gradient penalty differentiates through layers built on it)."""
    import torch.nn.functional as F

    from progan_torch.layers import fused_taps

    def padded(w):
        w = F.pad(w, (1, 1, 1, 1))
        return w[..., 1:, 1:] + w[..., :-1, 1:] + w[..., 1:, :-1] + w[..., :-1, :-1]

    torch.manual_seed(0)
    for k in (1, 3, 5):
        w = torch.randn(3, 2, k, k, dtype=torch.float64, requires_grad=True)
        out, ref = fused_taps(w), padded(w)
        assert out.shape == (3, 2, k + 1, k + 1)
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
        g = torch.randn_like(ref)
        torch.testing.assert_close(
            torch.autograd.grad(out, w, g)[0], torch.autograd.grad(ref, w, g)[0]
        )
        assert torch.autograd.gradcheck(fused_taps, (w,))
        assert torch.autograd.gradgradcheck(fused_taps, (w,))
    w = torch.randn(4, 3, 3, 3).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fused_taps(w), padded(w), rtol=0, atol=1e-6)
