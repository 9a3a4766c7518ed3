"""Fused resampling convs in Keras: same weights -> same function as upsample+conv /
conv+pool (odd channels and kernels, equalised or not); the Keras G is the same function
fused or not; torch <-> Keras parity with fused resampling on and off at every level and
alpha (weights through ``progan_tf.convert``)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.progan_tf.pgtf_helpers import tiny_cfg

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from progan_tf import convert  # noqa: E402
from progan_tf.layers import (  # noqa: E402
    ConvDown2d,
    EqualizedConv2d,
    UpConv2d,
    downsample2x,
    upsample2x,
)
from progan_tf.networks import Discriminator, Generator, copy_weights, named_layers  # noqa: E402

SHAPES = [(3, 5, 3), (7, 1, 3), (4, 6, 1), (5, 3, 5)]  # (C_in, C_out, k)


def _pair(cls, c_in: int, c_out: int, k: int, equalized: bool, seed: int):
    rng = np.random.default_rng(seed)
    plain = EqualizedConv2d(c_in, c_out, k, equalized=equalized)
    fused = cls(c_in, c_out, k, equalized=equalized)
    plain.bias.assign(rng.standard_normal(c_out).astype(np.float32))
    fused.weight.assign(plain.weight)
    fused.bias.assign(plain.bias)
    assert fused.scale == plain.scale
    return plain, fused


# Non-square, so rows and columns differ; the 8x8 level and a larger one.
UP_SIZES = [(5, 6), (9, 8)]
DOWN_SIZES = [(8, 6), (18, 16)]


@pytest.mark.parametrize("size", UP_SIZES, ids=["small", "large"])
@pytest.mark.parametrize("equalized", [True, False])
@pytest.mark.parametrize("c_in,c_out,k", SHAPES)
def test_upconv_equals_upsample_then_conv(c_in, c_out, k, equalized, size):
    plain, fused = _pair(UpConv2d, c_in, c_out, k, equalized, c_in * 10 + k)
    x = tf.constant(np.random.default_rng(k).standard_normal((2, *size, c_in)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out, ref = fused(x), plain(upsample2x(x))
        g = tf.constant(np.random.default_rng(1).standard_normal(ref.shape), tf.float32)
        lf, lp = tf.reduce_sum(out * g), tf.reduce_sum(ref * g)
    assert out.shape == (2, 2 * size[0], 2 * size[1], c_out)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-5, rtol=0)
    for a, b in zip(
        tape.gradient(lf, [x, fused.weight, fused.bias]),
        tape.gradient(lp, [x, plain.weight, plain.bias]),
    ):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("equalized", [True, False])
@pytest.mark.parametrize("size", DOWN_SIZES, ids=["small", "large"])
@pytest.mark.parametrize("c_in,c_out,k", SHAPES)
def test_convdown_equals_conv_then_pool(c_in, c_out, k, equalized, size):
    plain, fused = _pair(ConvDown2d, c_in, c_out, k, equalized, c_in * 10 + k)
    x = tf.constant(np.random.default_rng(k).standard_normal((2, *size, c_in)), tf.float32)
    out, ref = fused(x), downsample2x(plain(x))
    assert out.shape == (2, size[0] // 2, size[1] // 2, c_out)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-5, rtol=0)


def test_fused_layers_inside_tf_function():
    """Symbolic batch size (the bench / training graphs trace with tf.function), at a level
    where the stride-2 kernel runs."""
    plain, fused = _pair(UpConv2d, 4, 3, 3, True, 0)
    x = tf.constant(np.random.default_rng(0).standard_normal((3, 8, 8, 4)), tf.float32)
    spec = tf.TensorSpec([None, 8, 8, 4], tf.float32)
    out = tf.function(fused, input_signature=[spec])(x)
    np.testing.assert_allclose(out.numpy(), plain(upsample2x(x)).numpy(), atol=1e-5)


def test_generator_same_function_fused_or_not():
    """Float64 (the global dtype policy), so the check is sharp (float32 pixel norm over 2 channels is
    ill-conditioned at the tiny widths); one weight set, both forms."""
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        fused = Generator(tiny_cfg(fused_scale=True, fmap_base=32, fmap_max=8), 3)
        plain = Generator(tiny_cfg(fused_scale=False, fmap_base=32, fmap_max=8), 3)
        assert isinstance(fused.blocks[1].conv0, UpConv2d)
        assert type(plain.blocks[1].conv0) is EqualizedConv2d
        assert named_layers(fused).keys() == named_layers(plain).keys()
        copy_weights(fused, plain)  # variable to variable (the converter stores float32)
        z = np.random.default_rng(0).standard_normal((4, 8))
        for level in range(fused.num_levels):
            for alpha in (0.0, 0.5, 1.0):
                fused.alpha.assign(alpha)
                plain.alpha.assign(alpha)
                a = fused(z, level=level, fading=alpha < 1).numpy()
                b = plain(z, level=level, fading=alpha < 1).numpy()
                assert a.dtype == np.float64
                np.testing.assert_allclose(a, b, atol=1e-10, rtol=0)
    finally:
        keras.config.set_dtype_policy(old)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
def test_torch_keras_parity(fused):
    torch = pytest.importorskip("torch")
    from progan_torch import networks as tn

    cfg = tiny_cfg(fused_scale=fused)
    torch.manual_seed(0)
    tg, td = tn.Generator(cfg, 3, 2), tn.Discriminator(cfg, 3, 2)
    with torch.no_grad():
        for m in (tg, td):
            for name, p in m.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0.0, 0.2)
    kg, kd = Generator(cfg, 3, 2), Discriminator(cfg, 3, 2)
    convert.load_state_dict(kg, tg.state_dict())
    convert.load_state_dict(kd, td.state_dict())
    rng = np.random.default_rng(1)
    z = rng.standard_normal((8, cfg.latent_dim)).astype(np.float32)
    y = np.arange(8) % 2
    for level in range(kg.num_levels):
        res = 4 * 2**level
        x = rng.uniform(-1, 1, (8, res, res, 3)).astype(np.float32)
        for alpha in (0.0, 0.5, 1.0):
            kg.alpha.assign(alpha)
            kd.alpha.assign(alpha)
            ta = torch.tensor(alpha) if alpha < 1 else 1.0
            with torch.no_grad():
                g_ref = tg(torch.from_numpy(z), torch.from_numpy(y), level, alpha < 1, ta).numpy()
                xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
                d_ref = td(xt, level, alpha < 1, ta).numpy()
            g_out = kg(z, np.eye(2, dtype=np.float32)[y], level=level, fading=alpha < 1)
            d_out = kd(x, level=level, fading=alpha < 1)
            msg = f"level {level} alpha {alpha}"
            np.testing.assert_allclose(
                g_out.numpy().transpose(0, 3, 1, 2), g_ref, atol=1e-4, err_msg=msg
            )
            np.testing.assert_allclose(d_out.numpy(), d_ref, atol=1e-4, err_msg=msg)


@pytest.mark.parametrize("n,group", [(16, 16), (14, 16), (6, 16), (3, 16), (16, 4), (3, 4)])
def test_mbstd_group_is_official_min(n, group):
    """Official ``tf.minimum(group_size, N)``: the paper preset's group 16 at its batches
    16, 14, 6, 3 is the whole minibatch (same rule as progan_torch)."""
    from progan_tf.layers import mbstd_groups

    assert mbstd_groups(n, group) == min(group, n)
