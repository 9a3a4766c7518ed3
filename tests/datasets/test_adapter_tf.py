"""tf.data adapter gives exactly the torch adapter's images, in the same order."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

from datasets import prepare  # noqa: E402
from datasets.tf_adapter import tf_dataset, to_tf  # noqa: E402
from datasets.torch_adapter import TorchBatches  # noqa: E402


def test_tf_and_torch_same_images_same_order(tmp_path) -> None:
    ds = prepare("stacked-digits", cache_dir=tmp_path, count=70)
    tfd = tf_dataset(ds, 8, batch_size=16, seed=9, mirror=True, start=30)
    tb = TorchBatches(ds, 8, batch_size=16, seed=9, mirror=True, start=30, prefetch=0)
    for (x_tf, y_tf), (x_t, y_t) in zip(tfd.take(6), (next(tb) for _ in range(6))):
        assert x_tf.shape == (16, 8, 8, 3) and x_tf.dtype == tf.float32
        np.testing.assert_array_equal(x_tf.numpy(), x_t.permute(0, 2, 3, 1).numpy())
        np.testing.assert_array_equal(y_tf.numpy(), y_t.numpy())


def test_to_tf_range_and_unlabelled(tmp_path) -> None:
    x = to_tf(np.array([[[[0, 255, 51]]]], dtype=np.uint8)).numpy()
    np.testing.assert_allclose(x.ravel(), [-1.0, 1.0, 51 / 127.5 - 1], atol=1e-6)
    from tests.conftest import write_image_folder

    ds = prepare(
        f"folder:{write_image_folder(tmp_path / 'i', 5, size=8)}", cache_dir=tmp_path, max_res=8
    )
    _, y = next(iter(tf_dataset(ds, 4, batch_size=3)))
    assert (y.numpy() == -1).all()


@pytest.mark.parametrize(
    "res, batch, start, n",
    [(32, 16, 7, 40), (32, 700, 3, 3), (4, 5, 0, 50)],
    ids=["32 batches per chunk", "one batch per chunk", "tiny, epochs of 70"],
)
def test_chunked_pipeline_matches_torch(tmp_path, res, batch, start, n) -> None:
    """The tf.data pipeline gathers several batches per call (chunks): same batches anyway."""
    from datasets.tf_adapter import chunk_batches

    ds = prepare("stacked-digits", cache_dir=tmp_path, count=70)
    k = chunk_batches(batch, res * res * 3)
    assert (k > 1) == (batch != 700)
    tfd = tf_dataset(ds, res, batch_size=batch, seed=3, mirror=True, start=start)
    tb = TorchBatches(ds, res, batch_size=batch, seed=3, mirror=True, start=start, prefetch=0)
    for (x_tf, y_tf), (x_t, y_t) in zip(tfd.take(n), (next(tb) for _ in range(n))):
        assert x_tf.shape == (batch, res, res, 3)
        np.testing.assert_array_equal(x_tf.numpy(), x_t.permute(0, 2, 3, 1).numpy())
        np.testing.assert_array_equal(y_tf.numpy(), y_t.numpy())
