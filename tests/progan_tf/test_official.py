"""progan_tf's G and D against the NumPy transcription of the official networks.

The same checks as ``tests/progan_torch/test_official.py`` (see there), for the Keras
models: every level, alpha 0 / 0.5 / 1, fused resampling on and off, our native-resolution
D on faded reals == the official full-resolution D on ``process_reals``. The Keras weights
reach the transcription through ``progan_tf.convert.keras_state_dict`` (torch layouts), so
the converter is exercised too. No torch import.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.progan_common import official_numpy as off
from tests.progan_tf.pgtf_helpers import tiny_cfg

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from progan_tf.convert import keras_state_dict  # noqa: E402
from progan_tf.loss import fade_reals  # noqa: E402
from progan_tf.networks import Discriminator, Generator, named_layers  # noqa: E402

MAX_RES, CLASSES, N = 16, 2, 8
# The Keras models run in float64 here (global dtype policy) so the comparison is sharp;
# see tests/progan_torch/test_official.py. Two float32 pieces remain: the minibatch-stddev
# statistic (by design, as official) and tf.nn.leaky_relu's slope, a float32 op attribute
# (0.2000000030 in float64 mode; exact in float32 mode): up to 2e-6 seen at 16x16.
ATOL = 1e-5
CASES = [(lv, a) for lv in range(3) for a in (0.0, 0.5, 1.0) if lv > 0 or a == 1.0]


def lod_of(level: int, alpha: float) -> float:
    return math.log2(MAX_RES) - 2 - level + (1.0 - alpha)


def nchw(x: np.ndarray) -> np.ndarray:
    assert x.dtype == np.float64
    return np.transpose(x, (0, 3, 1, 2))


@pytest.fixture(scope="module", params=[True, False], ids=["fused", "unfused"])
def nets(request):
    cfg = tiny_cfg(
        max_res=MAX_RES, fmap_base=24, fmap_max=24, latent_dim=8, fused_scale=request.param
    )
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        keras.utils.set_random_seed(0)
        G, D = Generator(cfg, 3, CLASSES), Discriminator(cfg, 3, CLASSES)
        rng = np.random.default_rng(0)
        for m in (G, D):  # non-zero biases, so their placement is checked too
            for v in m.trainable_variables:
                if "bias" in v.path:
                    v.assign(rng.normal(0.0, 0.2, v.shape))
        # Float64 weights straight from the variables (the converter rounds to float32).
        states = [
            {f"{n}.{p}": getattr(layer, p).numpy() for n, layer in named_layers(m).items()
             for p in ("weight", "bias")}
            for m in (G, D)
        ]  # fmt: skip
        for m, st in zip((G, D), states):
            conv = keras_state_dict(m)  # torch layouts; compare against the converter's
            for k, v in st.items():
                np.testing.assert_allclose(conv[k], _torch_layout(v), rtol=1e-6, atol=1e-7)
                st[k] = _torch_layout(v)
        yield cfg, G, D, states[0], states[1]
    finally:
        keras.config.set_dtype_policy(old)


def _torch_layout(v: np.ndarray) -> np.ndarray:
    """Keras (k, k, in, out) / (in, out) -> torch (out, in, k, k) / (out, in)."""
    if v.ndim == 4:
        return np.transpose(v, (3, 2, 0, 1))
    return v.T if v.ndim == 2 else v


def test_biases_were_randomised(nets):
    _, _, _, g_state, d_state = nets
    assert np.abs(g_state["blocks.1.conv0.bias"]).max() > 0
    assert np.abs(d_state["blocks.0.dense0.bias"]).max() > 0
    assert d_state["blocks.0.dense0.weight"].shape == (off.nf(0, 24, 24), 16 * off.nf(1, 24, 24))


@pytest.mark.parametrize("level,alpha", CASES)
def test_generator_matches_official(nets, level, alpha):
    cfg, G, _, g_state, _ = nets
    rng = np.random.default_rng(level)
    z = rng.standard_normal((N, cfg.latent_dim))
    onehot = np.eye(CLASSES)[np.arange(N) % CLASSES]
    G.alpha.assign(alpha)
    ours = nchw(G(z, onehot, level=level, fading=alpha < 1).numpy())
    assert G.blocks[0].dense.weight.dtype == "float64"
    params = off.official_params(g_state, "G", MAX_RES, cfg.fused_scale)
    ref = off.G_paper(
        params, z, onehot, lod_of(level, alpha), MAX_RES, 24, 24, fused_scale=cfg.fused_scale
    )
    full = off.upscale2d(ours, MAX_RES // ours.shape[-1])
    np.testing.assert_allclose(full, ref, atol=ATOL, err_msg=f"level {level} alpha {alpha}")


@pytest.mark.parametrize("level,alpha", CASES)
def test_discriminator_matches_official(nets, level, alpha):
    cfg, _, D, _, d_state = nets
    res = 4 * 2**level
    x = np.random.default_rng(10 + level).uniform(-1, 1, (N, res, res, 3))
    D.alpha.assign(alpha)
    faded = fade_reals(tf.constant(x), alpha) if level > 0 else x
    ours = D(faded, level=level, fading=alpha < 1).numpy()
    lod = lod_of(level, alpha)
    reals = off.process_reals(off.dataset_pyramid(nchw(x)), lod, MAX_RES)
    params = off.official_params(d_state, "D", MAX_RES, cfg.fused_scale)
    scores, labels = off.D_paper(
        params, reals, lod, MAX_RES, 24, 24, fused_scale=cfg.fused_scale, mbstd_group_size=4
    )
    np.testing.assert_allclose(
        ours, np.concatenate([scores, labels], 1), atol=ATOL, err_msg=f"level {level} a {alpha}"
    )
