"""The gradient penalty is the official full-resolution one at every level.

The official D always sees full-resolution images: reals and fakes are nearest-upscaled by
``f = 2**floor(lod)`` and D box-downscales them again inside (``D_paper``'s ``fromrgb(
downscale2d(images, 2**lod))``); the penalty is ``lambda / gamma**2 (||dD/dX|| - gamma)**2`` for
the gradient w.r.t. that full-resolution mix X. Here that path is rebuilt with autograd on our
torch layers (the official ``grow`` recursion, lod and all) and the official penalty on the
upscaled inputs is compared with ours on the native-resolution ones, which uses the target
``gamma * f``. float64 networks, so the comparison is sharp (1e-5 relative).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from progan_torch.layers import lerp, upsample2x
from progan_torch.loss import d_loss, gradient_penalty
from progan_torch.networks import Discriminator
from tests.progan_torch.conftest import make_tiny

MAX_RES, N, LAM = 16, 8, 10.0
R_LOG2 = int(math.log2(MAX_RES))
CASES = [(lv, a) for lv in range(3) for a in (0.0, 0.5, 1.0) if lv > 0 or a == 1.0]


def box(x: torch.Tensor, f: int) -> torch.Tensor:
    return x if f == 1 else F.avg_pool2d(x, f)


def official_D(D: Discriminator, images: torch.Tensor, lod_in: float) -> torch.Tensor:
    """``D_paper``'s recursive structure on full-resolution ``images`` with our layers."""

    def grow(res: int, lod: int) -> torch.Tensor:  # res: log2 of the block's resolution
        if lod > 0 and lod_in < lod:
            x = grow(res + 1, lod - 1)
        else:
            x = D.fromrgb[res - 2](box(images, 2**lod))
        x = D.blocks[res - 2](x)
        if res > 2 and lod_in > lod:
            x = lerp(x, D.fromrgb[res - 3](box(images, 2 ** (lod + 1))), lod_in - lod)
        return x

    return grow(2, R_LOG2 - 2)


def official_penalty(D, reals, fakes, u, lod_in, gamma):
    """Per-sample official penalty: inputs upscaled to full resolution, mixed there."""
    f = MAX_RES // reals.shape[-1]
    up = (lambda x: x) if f == 1 else (lambda x: F.interpolate(x, scale_factor=f, mode="nearest"))
    mixed = lerp(up(reals), up(fakes), u.view(-1, 1, 1, 1)).requires_grad_(True)
    (grad,) = torch.autograd.grad(official_D(D, mixed, lod_in)[:, 0].sum(), mixed)
    norms = grad.flatten(1).norm(dim=1)
    return LAM / gamma**2 * (norms - gamma) ** 2, norms


@pytest.fixture(scope="module")
def D():
    torch.manual_seed(0)
    cfg = make_tiny(max_res=MAX_RES, fmap_base=24, fmap_max=24, latent_dim=8, mbstd_group=4)
    return Discriminator(cfg, 3).double()


@pytest.mark.parametrize("gamma", [1.0, 750.0])
@pytest.mark.parametrize("level,alpha", CASES)
def test_penalty_is_the_official_full_resolution_one(D, level, alpha, gamma):
    res = 4 * 2**level
    fading = alpha < 1
    lod_in = R_LOG2 - 2 - level + (1.0 - alpha)
    g = torch.Generator().manual_seed(level)
    reals = torch.rand(N, 3, res, res, generator=g, dtype=torch.float64) * 2 - 1
    fakes = torch.rand(N, 3, res, res, generator=g, dtype=torch.float64) * 2 - 1
    u = torch.rand(N, generator=g, dtype=torch.float64)
    ref, ref_norms = official_penalty(D, reals, fakes, u, lod_in, gamma)

    cfg = make_tiny(max_res=MAX_RES, gp_gamma=gamma, gp_lambda=LAM)
    target = cfg.gp_target(res)
    assert target == gamma * MAX_RES / res
    a = torch.tensor(alpha, dtype=torch.float64)
    mixed = lerp(reals, fakes, u.view(-1, 1, 1, 1))
    ours, norms = gradient_penalty(lambda x: D(x, level, fading, a), mixed, target, LAM)
    torch.testing.assert_close(ours, ref.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(norms / (MAX_RES // res), ref_norms.float(), rtol=1e-5, atol=1e-7)

    # d_loss wires the same penalty in (its stats: the mean, and the norm in full-res units)
    _, stats = d_loss(D, reals, fakes, None, u, cfg, level, fading, a)
    torch.testing.assert_close(stats["gp"], ref.mean().float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stats["grad_norm"], ref_norms.mean().float(), rtol=1e-5, atol=0)

    # the "native" switch is another penalty below full resolution (so this test can fail)
    native = make_tiny(max_res=MAX_RES, gp_gamma=gamma, gp_resolution="native")
    assert native.gp_target(res) == gamma
    if res < MAX_RES:
        nat, _ = gradient_penalty(lambda x: D(x, level, fading, a), mixed, gamma, LAM)
        assert not torch.allclose(nat, ref.float(), rtol=1e-4, atol=0)


def test_full_res_path_equals_native_d_on_upscaled_inputs(D):
    """The premise, directly: D_full(up(x)) == D_native(x) at every level and alpha."""
    for level, alpha in CASES:
        res = 4 * 2**level
        x = torch.rand(
            N, 3, res, res, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
        )
        full = x
        for _ in range(R_LOG2 - 2 - level):
            full = upsample2x(full)
        lod_in = R_LOG2 - 2 - level + (1.0 - alpha)
        a = torch.tensor(alpha, dtype=torch.float64)
        torch.testing.assert_close(
            official_D(D, full, lod_in), D(x, level, alpha < 1, a), rtol=0, atol=1e-10
        )
