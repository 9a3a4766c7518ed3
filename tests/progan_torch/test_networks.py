"""Fade-in invariants, stage state, names and the ablation switches."""

from __future__ import annotations

import pytest
import torch

from progan_torch.layers import downsample2x, upsample2x
from progan_torch.networks import Discriminator, Generator
from progan_torch.training import fade_reals


@pytest.fixture
def nets(tiny_cfg):
    torch.manual_seed(0)
    cfg = tiny_cfg()
    return Generator(cfg, 3), Discriminator(cfg, 3), cfg


@torch.no_grad()
@pytest.mark.parametrize("level", [1, 2, 3])
def test_alpha0_equals_previous_level(nets, level):
    G, D, cfg = nets
    z = torch.randn(4, cfg.latent_dim)
    grown = G(z, level=level, fading=True, alpha=torch.tensor(0.0))
    assert grown.shape[-1] == 4 * 2**level
    torch.testing.assert_close(
        grown, upsample2x(G(z, level=level - 1, fading=False)), rtol=0, atol=0
    )
    img = torch.randn(4, 3, 4 * 2**level, 4 * 2**level)
    torch.testing.assert_close(
        D(img, level=level, fading=True, alpha=torch.tensor(0.0)),
        D(downsample2x(img), level=level - 1, fading=False),
        rtol=0,
        atol=0,
    )
    # reals shown to D fade the same way
    torch.testing.assert_close(
        fade_reals(img, level, torch.tensor(0.0)), upsample2x(downsample2x(img))
    )
    torch.testing.assert_close(fade_reals(img, level, 1.0), img)  # lerp at alpha 1, up to rounding


@torch.no_grad()
def test_alpha1_old_path_has_no_influence(nets):
    G, D, cfg = nets
    z, img = torch.randn(4, cfg.latent_dim), torch.randn(4, 3, 16, 16)
    one = torch.tensor(1.0)
    before_g = G(z, level=2, fading=True, alpha=one)
    before_d = D(img, level=2, fading=True, alpha=one)
    G.torgb[1].weight.add_(5.0)
    D.fromrgb[1].weight.add_(5.0)
    torch.testing.assert_close(G(z, level=2, fading=True, alpha=one), before_g)
    torch.testing.assert_close(D(img, level=2, fading=True, alpha=one), before_d)
    torch.testing.assert_close(G(z, level=2, fading=False), before_g)
    torch.testing.assert_close(G(z, level=2, alpha=1.0), before_g)  # fading None: from alpha
    # ...while mid-fade it does matter (the test can fail)
    half = torch.tensor(0.5)
    assert not torch.allclose(G(z, level=2, fading=True, alpha=half), G(z, level=2, fading=False))
    with pytest.raises(TypeError, match="fading must be a bool"):
        G(z, None, 2, 0.5)  # the old (z, labels, level, alpha) order is refused


def test_stage_buffers_and_state_dict_names(nets):
    G, D, cfg = nets
    G.set_stage(2, 0.25)
    sd = G.state_dict()
    assert int(sd["level"]) == 2 and float(sd["alpha"]) == 0.25
    assert G(torch.randn(2, cfg.latent_dim)).shape == (2, 3, 16, 16)  # uses the buffers
    for key in [
        "blocks.0.dense.weight",
        "blocks.0.dense.bias",
        "blocks.0.conv.weight",
        "blocks.3.conv0.weight",
        "blocks.3.conv1.bias",
        "torgb.3.weight",
    ]:
        assert key in sd
    assert sd["blocks.0.dense.bias"].shape == (cfg.channels_at(4),)  # per channel, after reshape
    dsd = D.state_dict()
    for key in [
        "fromrgb.0.weight",
        "blocks.0.conv.weight",
        "blocks.0.dense0.weight",
        "blocks.0.dense1.bias",
        "blocks.2.conv1.weight",
    ]:
        assert key in dsd
    G2 = Generator(cfg, 3)
    G2.load_state_dict(sd)
    assert int(G2.level) == 2 and float(G2.alpha) == 0.25
    with pytest.raises(ValueError):
        G.set_stage(4, 1.0)


def test_dense_reshape_is_channel_first(nets):
    """Official NCHW reshape: output unit c*16 + y*4 + x feeds channel c at (y, x)."""
    G, _, cfg = nets
    dense = G.blocks[0].dense
    with torch.no_grad():
        dense.weight.zero_()
        dense.weight[1 * 16 + 2 * 4 + 3, 0] = 1.0
    out = dense(torch.eye(cfg.latent_dim)[:1])
    assert out[0, 1, 2, 3] != 0 and torch.count_nonzero(out) == 1


def test_ablation_switches(tiny_cfg):
    z = torch.randn(4, 8)
    cfg = tiny_cfg(mbstd_group=0, pixelnorm=False, equalized_lr=False, normalize_latents=False)
    G, D = Generator(cfg, 1), Discriminator(cfg, 1)
    assert D.blocks[0].conv.in_channels == cfg.channels_at(4)  # no stddev channel
    assert all(m.scale == 1.0 for m in G.modules() if hasattr(m, "scale"))
    assert G(z, level=1, alpha=1.0).shape == (4, 1, 8, 8)
    sn = Discriminator(tiny_cfg(spectral_norm_d=True), 3)
    out = sn(torch.randn(4, 3, 8, 8), level=1, alpha=1.0)
    assert out.shape == (4, 1) and torch.isfinite(out).all()


def test_conditional_generator_needs_labels(tiny_cfg):
    G = Generator(tiny_cfg(), 3, num_classes=3)
    z = torch.randn(2, 8)
    assert G(z, torch.tensor([0, 2]), level=0, alpha=1.0).shape == (2, 3, 4, 4)
    with pytest.raises(ValueError, match="labels"):
        G(z, level=0, alpha=1.0)
