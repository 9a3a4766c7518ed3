"""Tiny ProGAN configurations for fast CPU tests."""

from __future__ import annotations

import pytest

from progan_common.config import ProGANConfig


def make_tiny(**overrides) -> ProGANConfig:
    """max_res 32, channels 8/8/4/2, latent 8: every code path, milliseconds per step."""
    values = dict(
        dataset="random",
        max_res=32,
        latent_dim=8,
        fmap_base=32,
        fmap_max=8,
        stabilize_kimg=0.012,
        fade_kimg=0.016,
        default_batch=4,
        kimg=0.2,
        tick_kimg=0.02,
        snapshot_kimg=0.04,
        grid_size=4,
        seed=3,
        device="cpu",
    )
    values.update(overrides)
    cfg = ProGANConfig(**values)
    cfg.validate()
    return cfg


@pytest.fixture(scope="session")
def tiny_cfg():
    return make_tiny


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a shared 2-core machine the
    OpenMP workers spin against other processes (10x slower steps); restored afterwards."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
