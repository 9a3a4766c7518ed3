"""Unit tests of progan_tf's layers, networks and loss against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.progan_tf.pgtf_helpers import tiny_cfg

tf = pytest.importorskip("tensorflow")

from progan_tf import layers, loss  # noqa: E402
from progan_tf.networks import build_networks, named_layers, param_counts  # noqa: E402


def test_equalized_scale_per_layer_type():
    """gain/sqrt(fan_in) with the official gains; raw weights N(0,1); bias added unscaled."""
    cfg = tiny_cfg()
    g, d, _ = build_networks(cfg, 3)
    gl, dl = named_layers(g), named_layers(d)
    nf4 = cfg.channels_at(4)
    expect = [
        (gl, "blocks.0.dense", math.sqrt(2) / 4 / math.sqrt(cfg.latent_dim)),
        (gl, "blocks.0.conv", math.sqrt(2) / math.sqrt(9 * nf4)),
        (gl, "torgb.1", 1.0 / math.sqrt(cfg.channels_at(8))),
        (dl, "fromrgb.2", math.sqrt(2) / math.sqrt(3)),
        (dl, "blocks.0.conv", math.sqrt(2) / math.sqrt(9 * (nf4 + 1))),  # + mbstd channel
        (dl, "blocks.0.dense0", math.sqrt(2) / math.sqrt(16 * nf4)),
        (dl, "blocks.0.dense1", 1.0 / math.sqrt(nf4)),
    ]
    for table, name, scale in expect:
        assert table[name].scale == pytest.approx(scale), name
    w = gl["blocks.1.conv0"].weight.numpy()
    assert abs(w.std() - 1.0) < 0.1 and abs(w.mean()) < 0.1  # raw N(0, 1)
    conv = layers.EqualizedConv2d(2, 3, 3)
    conv.bias.assign([1.0, 2.0, 3.0])
    x = np.random.default_rng(0).standard_normal((1, 5, 5, 2)).astype(np.float32)
    ref = tf.nn.conv2d(x, conv.weight * conv.scale, 1, "SAME") + [1.0, 2.0, 3.0]
    np.testing.assert_allclose(conv(x).numpy(), ref.numpy(), atol=1e-6)
    ablation = layers.EqualizedConv2d(64, 64, 3, equalized=False)  # N(0, scale^2), unscaled
    assert abs(ablation.weight.numpy().std() / ablation.scale - 1.0) < 0.05
    np.testing.assert_array_equal(ablation.effective_weight().numpy(), ablation.weight.numpy())


def test_pixel_norm_unit_rms():
    x = np.random.default_rng(1).standard_normal((4, 3, 3, 16)).astype(np.float32) * 7
    y = layers.pixel_norm(x).numpy()
    np.testing.assert_allclose(np.sqrt(np.mean(y**2, axis=-1)), 1.0, atol=1e-5)


@pytest.mark.parametrize("shape", [(4, 3, 3, 16), (5, 10)])
def test_pixel_norm_hand_written_gradient(shape):
    """The custom gradient against autodiff of the formula (float64 and float32), inside a
    tf.function too, and in bf16 against float32."""

    def formula(x):
        return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + 1e-8)

    def grads(fn, x, g):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return y, tape.gradient(y, x, output_gradients=g)

    rng = np.random.default_rng(2)
    for dtype, tol in ((tf.float64, 1e-12), (tf.float32, 1e-5)):
        x = tf.constant(rng.standard_normal(shape) * 3, dtype)
        g = tf.constant(rng.standard_normal(shape), dtype)
        y, got = grads(layers.pixel_norm, x, g)
        want_y, want = grads(formula, x, g)
        np.testing.assert_allclose(y.numpy(), want_y.numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=tol, atol=tol)
        _, traced = tf.function(lambda a, b: grads(layers.pixel_norm, a, b))(x, g)
        np.testing.assert_allclose(traced.numpy(), got.numpy(), rtol=tol, atol=tol)
    xb, gb = tf.cast(x, tf.bfloat16), tf.cast(g, tf.bfloat16)
    yb, got_b = grads(layers.pixel_norm, xb, gb)
    assert yb.dtype == got_b.dtype == tf.bfloat16
    _, ref = grads(layers.pixel_norm, tf.cast(xb, tf.float32), tf.cast(gb, tf.float32))
    np.testing.assert_allclose(
        tf.cast(got_b, tf.float32).numpy(), ref.numpy(), atol=0.05, rtol=0.02
    )


@pytest.mark.parametrize("n,group", [(8, 4), (6, 4), (4, 8), (5, 4)])
def test_minibatch_stddev_matches_numpy(n, group):
    x = np.random.default_rng(n).standard_normal((n, 4, 4, 3)).astype(np.float32)
    out = layers.minibatch_stddev(x, group).numpy()
    g = layers.mbstd_groups(n, group)
    assert n % g == 0 and g <= group
    m = n // g
    np.testing.assert_array_equal(out[..., :3], x)
    for i in range(n):
        members = x[np.arange(n) % m == i % m]  # strided groups: official reshape(G, M, ...)
        assert len(members) == g
        expect = np.sqrt(members.var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(out[i, :, :, 3], expect, rtol=1e-5)


def test_fade_properties_generator_and_discriminator():
    """alpha 0 = previous level's output (upsampled / on downsampled input); alpha 1 = new path."""
    cfg = tiny_cfg()
    g, d, _ = build_networks(cfg, 3)
    z = np.random.default_rng(2).standard_normal((8, cfg.latent_dim)).astype(np.float32)
    img = np.random.default_rng(3).uniform(-1, 1, (8, 16, 16, 3)).astype(np.float32)
    for level in (1, 2):
        g.alpha.assign(0.0)
        d.alpha.assign(0.0)
        low = g(z, level=level - 1, fading=False).numpy()
        np.testing.assert_allclose(
            g(z, level=level, fading=True).numpy(), layers.upsample2x(low).numpy(), atol=1e-6
        )
        res = 4 * 2**level
        x = tf.image.resize(img, (res, res), "area")
        np.testing.assert_allclose(
            d(x, level=level, fading=True).numpy(),
            d(layers.downsample2x(x), level=level - 1, fading=False).numpy(),
            atol=1e-5,
        )
        # fading=None takes the flag from the alpha variable (< 1: fading)
        np.testing.assert_array_equal(
            d(x, level=level).numpy(), d(x, level=level, fading=True).numpy()
        )
        g.alpha.assign(1.0)
        d.alpha.assign(1.0)
        np.testing.assert_allclose(
            g(z, level=level, fading=True).numpy(),
            g(z, level=level, fading=False).numpy(),
            atol=1e-6,
        )
        np.testing.assert_allclose(
            d(x, level=level, fading=True).numpy(),
            d(x, level=level, fading=False).numpy(),
            atol=1e-6,
        )
        # an explicit alpha overrides the variable
        np.testing.assert_allclose(
            g(z, level=level, fading=True, alpha=0.0).numpy(),
            layers.upsample2x(low).numpy(),
            atol=1e-6,
        )
        g.alpha.assign(0.5)  # and in between the two differ (the fade does something)
        assert not np.allclose(
            g(z, level=level, fading=True).numpy(), g(z, level=level, fading=False).numpy()
        )


def test_real_fade_is_blur_at_alpha_zero():
    x = np.random.default_rng(4).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    blur = layers.upsample2x(layers.downsample2x(x)).numpy()
    np.testing.assert_allclose(loss.fade_reals(x, 0.0).numpy(), blur, atol=1e-7)
    np.testing.assert_allclose(loss.fade_reals(x, 1.0).numpy(), x, atol=1e-7)


@pytest.mark.parametrize("gamma", [1.0, 750.0])
def test_gradient_penalty_on_linear_critic(gamma):
    """critic(x) = <w, x>: gradient w for every sample, so penalty lam ((|w| - gamma)/gamma)^2."""
    w = tf.constant(np.random.default_rng(5).standard_normal((1, 4, 4, 2)).astype(np.float32))
    x = tf.constant(np.random.default_rng(6).standard_normal((3, 4, 4, 2)).astype(np.float32))
    critic = lambda m: tf.reduce_sum(m * w, axis=[1, 2, 3])[:, None]  # noqa: E731  (N, 1)
    gp, norms = loss.gradient_penalty(critic, x, gamma, 3.0)
    wn = float(tf.norm(w))
    np.testing.assert_allclose(norms.numpy(), wn, rtol=1e-6)
    np.testing.assert_allclose(gp.numpy(), 3.0 * ((wn - gamma) / gamma) ** 2, rtol=1e-5)


def test_parameter_counts_at_1024():
    """Paper config at 1024: G 23,079,115 and D 23,087,249 (paper: "23.1M" each).

    Both include every level's toRGB / fromRGB (as the official networks do); D also
    has the minibatch-stddev input channel of its 4x4 conv. progan_torch asserts the
    same figures, and test_parity checks the two agree layer by layer.
    """
    from progan_common.config import ProGANConfig

    g, d, _ = build_networks(ProGANConfig(max_res=1024, ema=False), 3)
    assert sum(param_counts(g).values()) == 23_079_115
    assert sum(param_counts(d).values()) == 23_087_249
    assert sum(param_counts(g).values()) == sum(int(np.prod(v.shape)) for v in g.trainable_weights)
