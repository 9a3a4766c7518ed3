"""Helpers shared by the vanilla_gan tests."""

from __future__ import annotations

import numpy as np
import pytest


def step_both(on, off, steps: int = 2) -> None:
    """Train two trainers of one config on the same batches and latents; their losses must
    agree to float rounding (for same-function implementation switches)."""
    rng = np.random.default_rng(0)
    cfg = on.cfg
    for _ in range(steps):
        reals = rng.integers(0, 256, (cfg.batch, cfg.res, cfg.res, 3), dtype=np.uint8)
        z = {"z": rng.standard_normal((1, cfg.batch, cfg.z_dim), dtype=np.float32)}
        a, b = on.step(reals, None, z), off.step(reals, None, z)
        for key in ("loss_d", "loss_g"):
            assert a[key] == pytest.approx(b[key], rel=1e-4)
