"""PyTorch adapter: value range, layout, and the stream's order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datasets import prepare
from datasets.stream import ImageStream
from datasets.torch_adapter import TorchBatches, to_torch


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return prepare("stacked-digits", cache_dir=tmp_path_factory.mktemp("c"), count=100)


def test_to_torch_range_and_layout() -> None:
    u8 = np.array([0, 255, 128], dtype=np.uint8).reshape(1, 1, 3, 1).repeat(3, axis=3)
    x = to_torch(u8)
    assert x.shape == (1, 3, 1, 3) and x.dtype == torch.float32
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    assert abs(x[0, 0, 0, 2].item() - (128 / 127.5 - 1)) < 1e-6
    assert to_torch(u8, channels_last=True).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_batches_follow_the_stream(ds, prefetch: int) -> None:
    it = TorchBatches(ds, 16, batch_size=24, seed=4, mirror=True, start=50, prefetch=prefetch)
    got = [next(it) for _ in range(5)]
    it.close()
    assert it.position == 50 + 5 * 24
    ref, lab = ImageStream(ds, seed=4, mirror=True).batch(16, 50, 120)
    x = torch.cat([g[0] for g in got])
    assert x.shape == (120, 3, 16, 16)
    assert torch.equal(x, to_torch(ref))
    assert torch.equal(torch.cat([g[1] for g in got]), torch.from_numpy(lab))


def test_dropping_the_iterator_stops_its_thread(ds) -> None:
    import gc
    import threading
    import time

    it = TorchBatches(ds, 8, batch_size=4)
    next(it)
    thread = it._thread
    assert thread is not None and thread.is_alive()
    del it
    gc.collect()
    thread.join(timeout=3)
    assert not thread.is_alive()
    assert not [
        t for t in threading.enumerate() if t.name == "TorchBatches-prefetch" and t is thread
    ]
    time.sleep(0)


def test_errors_in_the_prefetch_thread_reach_the_caller(ds, monkeypatch) -> None:
    it = TorchBatches(ds, 8, batch_size=4)

    def boom(*_a, **_k):
        raise OSError("disk gone")

    monkeypatch.setattr(it.stream, "batch", boom)
    with pytest.raises(OSError, match="disk gone"):
        next(it)
    it.close()
