"""TensorFlow side of the data layer: a ``tf.data`` pipeline of float NHWC in [-1, 1].

The batches come from :class:`datasets.stream.ImageStream`, so for the same
seed, start and batch size they hold exactly the images the PyTorch adapter
yields, in the same order (tested). Sets without labels yield labels of -1
(tf.data has no "None" element).

How it stays fast: the pipeline is indexed, not a Python generator. Element ``c``
of ``Dataset.range`` is a chunk of several consecutive batches, gathered from
the memmap by one ``numpy_function`` call (a vectorised gather for small images);
two chunks are gathered in parallel (the copies release the GIL), converted to
float by TF ops, split back into batches by ``unbatch`` and prefetched. A chunk
is about 2 MB, so at 32x32 one Python call serves ten batches; at 256x256 and
above a chunk is one batch and the split is skipped (it would copy the floats
once more). The previous ``from_generator`` pipeline ran one Python call per
batch in a single thread: 0.4x the PyTorch adapter at 32x32 and 0.6-0.9x at 256x256
in interleaved runs; see datasets/README.md for the figures now.
"""

from __future__ import annotations

import numpy as np

from gancore.tf_import import load_triton_first

load_triton_first()  # must precede TensorFlow when torch shares the process (see README)

import tensorflow as tf  # noqa: E402

from datasets.cache import PreparedDataset  # noqa: E402
from datasets.stream import ImageStream  # noqa: E402

_CHUNK_BYTES = 2 << 20  # uint8 bytes gathered per Python call
_MAX_CHUNK_BATCHES = 32
_GATHER_THREADS = 2  # parallel gathers; more only contend for the GIL on a small machine


def to_tf(u8_nhwc) -> tf.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, H, W, C) in [-1, 1] (x / 127.5 - 1)."""
    return tf.cast(u8_nhwc, tf.float32) * (1.0 / 127.5) - 1.0


def chunk_batches(batch_size: int, image_bytes: int) -> int:
    """How many batches one gather call makes: about ``_CHUNK_BYTES`` of uint8, at least 1."""
    return int(max(1, min(_MAX_CHUNK_BATCHES, _CHUNK_BYTES // max(1, batch_size * image_bytes))))


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
    if start < 0:
        raise ValueError(f"start must be non-negative, got {start}")
    arr = ds.array(res)
    stream = ImageStream(ds, seed=seed, mirror=mirror)
    item = tuple(arr.shape[1:])
    k = chunk_batches(batch_size, int(np.prod(item)))
    step = k * batch_size
    first = int(start)

    # one batch per call (large images): no chunk axis, so no unbatch copy of the floats
    lead = (k, batch_size) if k > 1 else (batch_size,)

    def gather(c: np.int64) -> tuple[np.ndarray, np.ndarray]:
        images, labels = stream.batch(res, first + int(c) * step, step)
        if labels is None:
            labels = np.full(step, -1, dtype=np.int64)
        return images.reshape(*lead, *item), labels.reshape(lead)

    def load(c: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = tf.numpy_function(gather, [c], (tf.uint8, tf.int64), stateful=False)
        return to_tf(tf.ensure_shape(x, (*lead, *item))), tf.ensure_shape(y, lead)

    # deterministic=True keeps the chunks in stream order whatever finishes first
    out = tf.data.Dataset.range(np.iinfo(np.int64).max // step).map(
        load, num_parallel_calls=_GATHER_THREADS, deterministic=True
    )
    return (out.unbatch() if k > 1 else out).prefetch(prefetch)
