"""progan_tf's gradient penalty is the official full-resolution one at every level (the twin
of ``tests/progan_torch/test_gp_target.py``, see there): the official ``D_paper`` path on
full-resolution inputs, rebuilt with ``tf.GradientTape`` on our Keras layers, against ours on
the native-resolution inputs. Keras runs in float64 here, so the comparison is sharp."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.progan_tf.pgtf_helpers import tiny_cfg

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from progan_tf.layers import lerp, lrelu, upsample2x  # noqa: E402
from progan_tf.loss import d_loss, gradient_penalty  # noqa: E402
from progan_tf.networks import Discriminator  # noqa: E402

MAX_RES, N, LAM = 16, 8, 10.0
R_LOG2 = int(math.log2(MAX_RES))
CASES = [(lv, a) for lv in range(3) for a in (0.0, 0.5, 1.0) if lv > 0 or a == 1.0]


def box(x, f: int):
    return x if f == 1 else tf.nn.avg_pool2d(x, f, f, "VALID")


def official_D(D, images, lod_in: float):
    """``D_paper``'s recursive structure on full-resolution NHWC ``images`` with our layers."""

    def fromrgb(x, res):
        return lrelu(D.fromrgb[res - 2](x))

    def grow(res: int, lod: int):
        if lod > 0 and lod_in < lod:
            x = grow(res + 1, lod - 1)
        else:
            x = fromrgb(box(images, 2**lod), res)
        x = D.blocks[res - 2](x)
        if res > 2 and lod_in > lod:
            x = lerp(x, fromrgb(box(images, 2 ** (lod + 1)), res - 1), lod_in - lod)
        return x

    return grow(2, R_LOG2 - 2)


@pytest.fixture(scope="module")
def D():
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        keras.utils.set_random_seed(0)
        cfg = tiny_cfg(max_res=MAX_RES, fmap_base=24, fmap_max=24, latent_dim=8)
        yield Discriminator(cfg, 3)
    finally:
        keras.config.set_dtype_policy(old)


@pytest.mark.parametrize("gamma", [1.0, 750.0])
@pytest.mark.parametrize("level,alpha", CASES)
def test_penalty_is_the_official_full_resolution_one(D, level, alpha, gamma):
    res, f = 4 * 2**level, MAX_RES // (4 * 2**level)
    fading = alpha < 1
    lod_in = R_LOG2 - 2 - level + (1.0 - alpha)
    rng = np.random.default_rng(level)
    reals, fakes = (rng.uniform(-1, 1, (N, res, res, 3)) for _ in range(2))
    u = rng.uniform(0, 1, N)
    up = lambda x: np.repeat(np.repeat(x, f, axis=1), f, axis=2)  # noqa: E731
    full = tf.constant(up(reals) + (up(fakes) - up(reals)) * u[:, None, None, None])
    with tf.GradientTape() as tape:
        tape.watch(full)
        total = tf.reduce_sum(official_D(D, full, lod_in)[:, 0])
    ref_norms = tf.norm(tf.reshape(tape.gradient(total, full), [N, -1]), axis=1).numpy()
    ref = LAM / gamma**2 * (ref_norms - gamma) ** 2

    cfg = tiny_cfg(max_res=MAX_RES, gp_gamma=gamma, gp_lambda=LAM)
    target = cfg.gp_target(res)
    assert target == gamma * f
    mixed = tf.constant(reals + (fakes - reals) * u[:, None, None, None])

    def critic(x):
        return D(x, level=level, fading=fading, alpha=alpha)

    ours, norms = gradient_penalty(critic, mixed, target, LAM)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(norms.numpy() / f, ref_norms, rtol=1e-5)

    # d_loss wires the same penalty in (its stats: the mean, and the norm in full-res units)
    _, stats = d_loss(
        D, tf.constant(reals), tf.constant(fakes), None, tf.constant(u), cfg, level, fading, alpha
    )
    np.testing.assert_allclose(stats["gp"].numpy(), ref.mean(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats["grad_norm"].numpy(), ref_norms.mean(), rtol=1e-5)
    if f > 1:  # the native target is another penalty (so this test can fail)
        nat, _ = gradient_penalty(critic, mixed, gamma, LAM)
        assert not np.allclose(nat.numpy(), ref, rtol=1e-4, atol=0)


def test_full_res_path_equals_native_d_on_upscaled_inputs(D):
    for level, alpha in CASES:
        res = 4 * 2**level
        x = tf.constant(np.random.default_rng(3).uniform(-1, 1, (N, res, res, 3)))
        full = x
        for _ in range(R_LOG2 - 2 - level):
            full = upsample2x(full)
        lod_in = R_LOG2 - 2 - level + (1.0 - alpha)
        np.testing.assert_allclose(
            official_D(D, full, lod_in).numpy(),
            D(x, level=level, fading=alpha < 1, alpha=alpha).numpy(),
            rtol=0,
            atol=1e-9,
        )
