"""SWD: against a loop-based re-implementation of the official procedure, and its invariants."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

from benchmarks.metrics import swd

KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256.0


def _pyr_down(img):  # official: scipy convolve, mode="mirror", then every other pixel
    return scipy.ndimage.convolve(img, KERNEL, mode="mirror")[::2, ::2]


def _pyr_up(img):
    up = np.zeros((img.shape[0] * 2, img.shape[1] * 2), np.float32)
    up[::2, ::2] = img
    return scipy.ndimage.convolve(up, KERNEL * 4.0, mode="mirror")


def reference_swd(a_u8: np.ndarray, b_u8: np.ndarray, seed: int) -> list[float]:
    """Straightforward per-image, per-channel, per-patch loops; same random draws as swd.py."""
    res = a_u8.shape[1]
    levels = swd.pyramid_resolutions(res)

    def descriptors(images):
        out = [[] for _ in levels]
        pyramids = []
        for img in images:
            chans = []
            for c in range(3):
                pyr = [img[:, :, c].astype(np.float32)]
                for _ in range(1, len(levels)):
                    down = _pyr_down(pyr[-1])
                    pyr[-1] = pyr[-1] - _pyr_up(down)
                    pyr.append(down)
                chans.append(pyr)
            pyramids.append(chans)
        for lv, r in enumerate(levels):
            rng = np.random.default_rng([seed, lv])
            ys = rng.integers(3, r - 3, size=len(images) * 128)
            xs = rng.integers(3, r - 3, size=len(images) * 128)
            for k in range(len(images) * 128):
                i, y, x = k // 128, ys[k], xs[k]
                patch = np.stack(
                    [pyramids[i][c][lv][y - 3 : y + 4, x - 3 : x + 4] for c in range(3)]
                )
                out[lv].append(patch)
        result = []
        for d in out:
            d = np.stack(d).astype(np.float64)  # (M, 3, 7, 7)
            d = (d - d.mean(axis=(0, 2, 3), keepdims=True)) / d.std(axis=(0, 2, 3), keepdims=True)
            result.append(d.reshape(len(d), -1))
        return result

    da, db = descriptors(a_u8), descriptors(b_u8)
    dists = []
    for lv in range(len(levels)):
        rng = np.random.default_rng([seed, 1000 + lv])
        reps = []
        for _ in range(4):
            dirs = rng.standard_normal((da[lv].shape[1], 128))
            dirs /= np.sqrt((dirs**2).sum(axis=0, keepdims=True))
            per_dir = []
            for j in range(128):
                pa = np.sort(da[lv] @ dirs[:, j])
                pb = np.sort(db[lv] @ dirs[:, j])
                per_dir.append(np.mean(np.abs(pa - pb)))
            reps.append(np.mean(per_dir))
        dists.append(np.mean(reps) * 1e3)
    return dists


def _smooth_images(n: int, seed: int, res: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, size=(n, res // 4, res // 4, 3))
    return np.clip(
        base.repeat(4, 1).repeat(4, 2) + rng.normal(0, 12, (n, res, res, 3)), 0, 255
    ).astype(np.uint8)


def test_matches_loop_reference():
    a, b = _smooth_images(6, 0), _smooth_images(6, 1)
    ours = swd.swd_distance(swd.swd_features(a, seed=3), swd.swd_features(b, seed=3), seed=3)
    ref = reference_swd(a, b, seed=3)
    assert len(ours) == 2  # 32x32 -> levels 32 and 16
    np.testing.assert_allclose(ours, ref, rtol=2e-4)


def test_pyramid_reconstructs_image():
    """Laplacian pyramid invariant: upsample-and-add from the coarsest level gives the image."""
    img = _smooth_images(2, 5)
    pyr = swd.laplacian_pyramid(img, 2)
    up = np.stack([[_pyr_up(pyr[1][n, c]) for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(pyr[0] + up, img.transpose(0, 3, 1, 2).astype(np.float32), atol=1e-3)


def test_identical_sets_give_zero_and_noise_grows():
    a = _smooth_images(64, 2)
    fa = swd.swd_features(a, seed=0)
    assert swd.swd_distance(fa, swd.swd_features(a.copy(), seed=0), seed=0) == [0.0, 0.0]
    rng = np.random.default_rng(9)
    avgs = []
    for sigma in (4, 16, 48):
        noisy = np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)
        avgs.append(np.mean(swd.swd_distance(fa, swd.swd_features(noisy, seed=0), seed=0)))
    assert 0 < avgs[0] < avgs[1] < avgs[2]


def test_too_small_images_are_refused():
    from gancore.errors import UserError

    with pytest.raises(UserError, match="at least 16x16"):
        swd.swd_features(np.zeros((4, 8, 8, 3), np.uint8), seed=0)
