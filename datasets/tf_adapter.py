"""TensorFlow side of the data layer: a ``tf.data`` pipeline of float NHWC in [-1, 1].

The batches come from :class:`datasets.stream.ImageStream`, so for the same
seed, start and batch size they hold exactly the images the PyTorch adapter
yields, in the same order (tested). Sets without labels yield labels of -1
(tf.data has no "None" element).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from datasets.cache import PreparedDataset
from datasets.stream import ImageStream


def to_tf(u8_nhwc) -> tf.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, H, W, C) in [-1, 1] (x / 127.5 - 1)."""
    return tf.cast(u8_nhwc, tf.float32) * (1.0 / 127.5) - 1.0


def tf_dataset(
    ds: PreparedDataset,
    res: int,
    batch_size: int,
    seed: int = 0,
    mirror: bool = False,
    start: int = 0,
    prefetch: int = 2,
) -> tf.data.Dataset:
    """Infinite ``tf.data.Dataset`` of (float32 NHWC images, int64 labels) batches.

    ``start`` is the stream position in images; batch ``k`` holds stream images
    ``start + k*batch_size ... start + (k+1)*batch_size - 1``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    arr = ds.array(res)
    stream = ImageStream(ds, seed=seed, mirror=mirror)
    shape = (batch_size, *arr.shape[1:])

    def gen() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        pos = int(start)
        while True:
            images, labels = stream.batch(res, pos, batch_size)
            if labels is None:
                labels = np.full(batch_size, -1, dtype=np.int64)
            yield images, labels
            pos += batch_size

    out = tf.data.Dataset.from_generator(
        gen,
        output_signature=(tf.TensorSpec(shape, tf.uint8), tf.TensorSpec((batch_size,), tf.int64)),
    )
    # parallel conversion; deterministic=True keeps the batches in stream order
    out = out.map(
        lambda x, y: (to_tf(x), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return out.prefetch(prefetch)
