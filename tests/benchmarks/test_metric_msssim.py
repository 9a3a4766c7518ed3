"""MS-SSIM: against tf.image.ssim_multiscale where it applies, and a scipy version of the
official ProGAN procedure (window clipped for small images) where it does not."""

from __future__ import annotations

import os

import numpy as np
from scipy import signal

from benchmarks.metrics import msssim

WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def _images(n: int, res: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, size=(n, res // 8, res // 8, 3)).repeat(8, 1).repeat(8, 2)
    return np.clip(base + rng.normal(0, 20, (n, res, res, 3)), 0, 255).astype(np.uint8)


def scipy_msssim(a: np.ndarray, b: np.ndarray) -> float:
    """The official algorithm (channels averaged per scale), with fftconvolve 'valid'."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    mcs, mssim = [], []
    for _ in range(5):
        size = min(11, x.shape[1], x.shape[2])
        sigma = size * 1.5 / 11
        c = np.arange(size) - (size - 1) / 2
        g = np.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / (2 * sigma**2))
        win = (g / g.sum())[None, :, :, None]
        mu1, mu2 = (signal.fftconvolve(t, win, mode="valid") for t in (x, y))
        s11 = signal.fftconvolve(x * x, win, mode="valid") - mu1**2
        s22 = signal.fftconvolve(y * y, win, mode="valid") - mu2**2
        s12 = signal.fftconvolve(x * y, win, mode="valid") - mu1 * mu2
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        v1, v2 = 2 * s12 + c2, s11 + s22 + c2
        mssim.append(
            np.mean((2 * mu1 * mu2 + c1) * v1 / ((mu1**2 + mu2**2 + c1) * v2), axis=(1, 2, 3))
        )
        mcs.append(np.mean(v1 / v2, axis=(1, 2, 3)))
        x, y = (
            0.25 * (t[:, 0::2, 0::2] + t[:, 1::2, 0::2] + t[:, 0::2, 1::2] + t[:, 1::2, 1::2])
            for t in (x, y)
        )
    mcs, mssim = np.clip(np.array(mcs), 0, None), np.clip(np.array(mssim), 0, None)
    return float(
        np.mean(np.prod(mcs[:-1] ** WEIGHTS[:-1, None], axis=0) * mssim[-1] ** WEIGHTS[-1])
    )


def test_matches_tensorflow_at_176():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    a, b = _images(4, 176, 0), _images(4, 176, 1)
    b[0] = a[0]  # one identical pair: MS-SSIM exactly 1
    tf_rgb = tf.image.ssim_multiscale(
        tf.constant(a, tf.float32), tf.constant(b, tf.float32), 255.0, power_factors=tuple(WEIGHTS)
    ).numpy()
    ours = msssim.msssim_pairs(a, b, channel_mode="per_channel")
    np.testing.assert_allclose(ours, tf_rgb, rtol=1e-4, atol=1e-5)
    assert abs(ours[0] - 1.0) < 1e-6
    # Grey images: the official per-scale channel average equals TF's per-channel result.
    ga, gb = np.repeat(a[..., :1], 3, -1), np.repeat(b[..., :1], 3, -1)
    tf_grey = tf.image.ssim_multiscale(
        tf.constant(ga, tf.float32),
        tf.constant(gb, tf.float32),
        255.0,
        power_factors=tuple(WEIGHTS),
    ).numpy()
    np.testing.assert_allclose(
        msssim.msssim_pairs(ga, gb, channel_mode="progan"), tf_grey, rtol=1e-4, atol=1e-5
    )


def test_matches_official_procedure_on_small_images():
    a, b = _images(6, 32, 2), _images(6, 32, 3)
    ours = msssim.msssim_pairs(a, b).mean()
    np.testing.assert_allclose(ours, scipy_msssim(a, b), rtol=1e-4)
    big_a, big_b = _images(2, 64, 4), _images(2, 64, 5)
    np.testing.assert_allclose(
        msssim.msssim_pairs(big_a, big_b).mean(), scipy_msssim(big_a, big_b), rtol=1e-4
    )


def test_pairs_are_consecutive_and_diversity_ordering():
    a = _images(8, 32, 6)
    same = np.repeat(a[:4], 2, axis=0)  # pairs (0,1), (2,3), ... identical: a collapsed generator
    assert abs(msssim.msssim_statistics(msssim.msssim_features(same, 4)) - 1.0) < 1e-6
    diverse = msssim.msssim_statistics(msssim.msssim_features(a, 4))
    assert diverse < 0.5
