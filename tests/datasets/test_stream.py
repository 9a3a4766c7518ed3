"""The stream order: deterministic, epoch-wise permutations, resumable at any image."""

from __future__ import annotations

import numpy as np
import pytest

from datasets import prepare
from datasets.stream import ImageStream


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return prepare("stacked-digits", cache_dir=tmp_path_factory.mktemp("c"), count=100)


def test_each_epoch_is_a_permutation(ds) -> None:
    s = ImageStream(ds, seed=5)
    idx, flip = s.indices(0, 300)
    for e in range(3):
        assert sorted(idx[e * 100 : (e + 1) * 100]) == list(range(100))
    assert not np.array_equal(idx[:100], idx[100:200])
    assert not flip.any()  # mirror off


def test_same_seed_same_order_other_seed_other(ds) -> None:
    a = ImageStream(ds, seed=1).indices(0, 250)[0]
    b = ImageStream(ds, seed=1).indices(0, 250)[0]
    c = ImageStream(ds, seed=2).indices(0, 250)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_resume_and_batch_size_change_keep_order(ds) -> None:
    s = ImageStream(ds, seed=7, mirror=True)
    whole, lab = s.batch(16, 0, 230)
    parts = [s.batch(16, 0, 64), s.batch(16, 64, 32), s.batch(16, 96, 134)]
    fresh = ImageStream(ds, seed=7, mirror=True).batch(16, 96, 134)  # a resumed process
    assert np.array_equal(whole, np.concatenate([p[0] for p in parts]))
    assert np.array_equal(lab, np.concatenate([p[1] for p in parts]))
    assert np.array_equal(whole[96:], fresh[0])


def test_mirror_flips_deterministically(ds) -> None:
    s = ImageStream(ds, seed=3, mirror=True)
    idx, flip = s.indices(0, 100)
    assert 20 < flip.sum() < 80
    images, labels = s.batch(8, 0, 100)
    src = np.asarray(ds.array(8))
    for k in range(100):
        expect = src[idx[k], :, ::-1] if flip[k] else src[idx[k]]
        assert np.array_equal(images[k], expect)
    assert np.array_equal(labels, ds.labels[idx])
    assert np.array_equal(flip, ImageStream(ds, seed=3, mirror=True).indices(0, 100)[1])


def test_batch_is_a_writable_copy(ds) -> None:
    images, _ = ImageStream(ds).batch(4, 0, 10)
    images[:] = 0  # must not touch the read-only memmap
    assert np.asarray(ds.array(4)).any()


def test_channels_first_is_the_transpose(ds) -> None:
    s = ImageStream(ds, seed=2, mirror=True)
    nhwc, lab = s.batch(16, 40, 90)
    nchw, lab2 = s.batch(16, 40, 90, channels_first=True)
    assert np.array_equal(nchw, nhwc.transpose(0, 3, 1, 2)) and np.array_equal(lab, lab2)


@pytest.mark.parametrize("res", [32, 64])  # 32x32x3: vectorised gather; 64x64x3: per image
def test_mirror_on_both_gather_paths(tmp_path, res) -> None:
    from tests.conftest import write_image_folder

    folder = write_image_folder(tmp_path / "imgs", 30, size=res, seed=4)
    big = prepare(f"folder:{folder}", cache_dir=tmp_path / "c", max_res=res)
    s = ImageStream(big, seed=11, mirror=True)
    idx, flip = s.indices(5, 70)  # crosses two epoch boundaries
    assert 0 < flip.sum() < 70
    images, _ = s.batch(res, 5, 70)
    src = np.asarray(big.array(res))
    expect = np.stack([src[i, :, ::-1] if f else src[i] for i, f in zip(idx, flip)])
    assert np.array_equal(images, expect)
    assert np.array_equal(s.batch(res, 5, 70, channels_first=True)[0], expect.transpose(0, 3, 1, 2))


def test_parallel_batches_match_sequential(ds) -> None:
    """The tf.data adapter gathers chunks in parallel threads from one stream."""
    from concurrent.futures import ThreadPoolExecutor

    s = ImageStream(ds, seed=4, mirror=True)
    starts = [k * 37 for k in range(40)]  # 15 epochs of 100: the epoch cache keeps only 4
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda st: s.batch(8, st, 37)[0], starts))
    fresh = ImageStream(ds, seed=4, mirror=True)
    for st, g in zip(starts, got):
        assert np.array_equal(g, fresh.batch(8, st, 37)[0])
