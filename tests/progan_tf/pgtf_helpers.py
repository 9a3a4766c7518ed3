"""Tiny ProGAN configs shared by the progan_tf tests (one TF import per test process)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from progan_common.config import PRESETS, ProGANConfig  # noqa: E402


def tiny_cfg(**over) -> ProGANConfig:
    """16x16 max, 16/8 channels, latent 8: every code path, milliseconds per step."""
    base = {
        **PRESETS["quick"],
        "max_res": 16,
        "fmap_base": 64,
        "fmap_max": 16,
        "latent_dim": 8,
        "default_batch": 8,
        "mbstd_group": 4,
        "seed": 3,
    }
    base.update(over)
    cfg = ProGANConfig(**base)
    cfg.validate()
    return cfg
