"""Fixtures for vanilla_gan tests: tiny configs and an in-memory image source."""

from __future__ import annotations

import numpy as np
import pytest

from vanilla_gan.config import TrainConfig, preset_for


class ArraySource:
    """A deterministic stand-in for ``datasets.stream.ImageStream`` (image i = pool[i % N])."""

    def __init__(self, res: int, channels: int = 3, n: int = 40, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.pool = rng.integers(0, 256, size=(n, res, res, channels), dtype=np.uint8)
        self.channels = channels

    def batch(self, res: int, start: int, count: int):
        idx = (np.arange(start, start + count) * 7) % len(self.pool)
        return self.pool[idx].copy(), None


def tiny_config(model: str = "dcgan", framework: str = "torch", **kw) -> TrainConfig:
    values = preset_for(model, quick=True)
    values.update(
        framework=framework,
        width=8,
        batch=8,
        kimg=0.032,
        tick_kimg=0.016,
        snapshot_kimg=0.016,
        grid_size=4,
        res=32,
        keep_checkpoints=0,
        threads=1,
    )
    values.update(kw)
    cfg = TrainConfig(**values)
    cfg.validate()
    return cfg


@pytest.fixture
def array_source():
    return ArraySource


@pytest.fixture
def make_config():
    return tiny_config


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """tiny_config sets threads=1 (fast on a loaded CPU); give other packages' tests theirs back."""
    import sys

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)
