"""progan_torch's G and D against the NumPy transcription of the official networks.

For the same weights, at every level and alpha 0 / 0.5 / 1, fused resampling on and off:
- ours G(z) nearest-upscaled to full resolution == official G_paper(z, lod);
- ours D(fade_reals(x)) at the level's native resolution == official
  D_paper(process_reals(x, lod)) on full-resolution images, the reals read from a
  dataset_tool-style box pyramid. That is the equivalence of our native-resolution D with
  the official full-resolution D (which box-downscales inside).
The config has fmap_base = fmap_max = 24 so the official nf(0) (D's dense width, 24)
differs from nf(1) (the 4x4 width, 12), and odd widths (3 channels at 16x16).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from progan_torch.networks import Discriminator, Generator
from progan_torch.training import fade_reals
from tests.progan_common import official_numpy as off
from tests.progan_torch.conftest import make_tiny

MAX_RES, CLASSES, N = 16, 2, 8
# Our networks run in float64 here, so the comparison is sharp: in float32 even one
# implementation differs from itself in float64 by up to ~1e-4 at these widths (pixel norm
# over the 3 channels of the 16x16 block is ill-conditioned where all three are small).
# What is left is the minibatch-stddev statistic, computed in float32 by design (as the
# official layer casts to float32).
ATOL = 1e-6
CASES = [(lv, a) for lv in range(3) for a in (0.0, 0.5, 1.0) if lv > 0 or a == 1.0]


def lod_of(level: int, alpha: float) -> float:
    """The official lod for our (level, alpha): integer when stable, lod of level-1 at alpha 0."""
    return math.log2(MAX_RES) - 2 - level + (1.0 - alpha)


def _alpha(alpha: float):
    return (
        1.0 if alpha == 1.0 else torch.tensor(alpha, dtype=torch.float64)
    )  # the trainer passes tensors mid-fade


@pytest.fixture(scope="module", params=[True, False], ids=["fused", "unfused"])
def nets(request):
    cfg = make_tiny(
        max_res=MAX_RES,
        fmap_base=24,
        fmap_max=24,
        latent_dim=8,
        mbstd_group=4,
        fused_scale=request.param,
    )
    torch.manual_seed(0)
    G, D = Generator(cfg, 3, CLASSES).double(), Discriminator(cfg, 3, CLASSES).double()
    with torch.no_grad():  # non-zero biases, so their placement is checked too
        for m in (G, D):
            for name, p in m.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0.0, 0.2)
    state = lambda m: {k: v.numpy() for k, v in m.state_dict().items()}  # noqa: E731
    return cfg, G, D, state(G), state(D)


def test_dense_width_is_official_nf0(nets):
    cfg, _, D, _, _ = nets
    assert D.blocks[0].conv.out_channels == off.nf(1, 24, 24) == 12
    assert D.blocks[0].dense0.out_features == off.nf(0, 24, 24) == 24
    assert D.blocks[0].dense1.in_features == 24


@torch.no_grad()
@pytest.mark.parametrize("level,alpha", CASES)
def test_generator_matches_official(nets, level, alpha):
    cfg, G, _, g_state, _ = nets
    rng = np.random.default_rng(level)
    z = rng.standard_normal((N, cfg.latent_dim))
    y = np.arange(N) % CLASSES
    ours = G(torch.from_numpy(z), torch.from_numpy(y), level, alpha < 1, _alpha(alpha)).numpy()
    params = off.official_params(g_state, "G", MAX_RES, cfg.fused_scale)
    ref = off.G_paper(
        params, z, np.eye(CLASSES)[y], lod_of(level, alpha), MAX_RES, 24, 24,
        fused_scale=cfg.fused_scale,
    )  # fmt: skip
    assert ours.dtype == np.float64
    full = off.upscale2d(ours, MAX_RES // ours.shape[-1])
    assert full.shape == ref.shape == (N, 3, MAX_RES, MAX_RES)
    np.testing.assert_allclose(full, ref, atol=ATOL, err_msg=f"level {level} alpha {alpha}")


@torch.no_grad()
@pytest.mark.parametrize("group", [4, 16])
@pytest.mark.parametrize("level,alpha", CASES)
def test_discriminator_matches_official(nets, level, alpha, group):
    cfg, _, D, _, d_state = nets
    D.blocks[0].mbstd_group = group  # 16 > N: the official min(group, N) = whole minibatch
    res = 4 * 2**level
    x = np.random.default_rng(10 + level).uniform(-1, 1, (N, 3, res, res))
    xt = torch.from_numpy(x)
    ours = D(fade_reals(xt, level, _alpha(alpha)), level, alpha < 1, _alpha(alpha)).numpy()
    lod = lod_of(level, alpha)
    reals = off.process_reals(off.dataset_pyramid(x), lod, MAX_RES)
    params = off.official_params(d_state, "D", MAX_RES, cfg.fused_scale)
    scores, labels = off.D_paper(
        params, reals, lod, MAX_RES, 24, 24, fused_scale=cfg.fused_scale, mbstd_group_size=group
    )
    ref = np.concatenate([scores, labels], axis=1)
    assert ours.shape == ref.shape == (N, 1 + CLASSES)
    np.testing.assert_allclose(ours, ref, atol=ATOL, err_msg=f"level {level} alpha {alpha}")
