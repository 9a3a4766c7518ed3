"""Training jobs for tests that drive the one loop directly (no CLI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gancore.latents import RandomSource, step_randoms
from gancore.rundir import RunDir
from gancore.train.loop import TrainJob, settings_from
from gancore.train.schema import RunInfo


def progan_randoms(cfg, st) -> dict[str, np.ndarray]:
    return dict(zip(("z_d", "z_g", "u"), step_randoms(cfg.seed, st.nimg, st.batch, cfg.latent_dim)))


def progan_job(cfg, path: Path, framework: str = "torch", max_steps: int | None = None) -> TrainJob:
    """A ProGAN job on deterministic random reals, its run directory created on first use."""
    run = RunDir(path)
    if not run.config_path.exists():
        run.create({})
    return TrainJob(
        run=run,
        info=RunInfo("progan", framework, "test", 3),
        stages=cfg.schedule(),
        draw=lambda nimg, st: progan_randoms(cfg, st),
        source=RandomSource(3, seed=1),
        grid_latents=np.zeros((2, cfg.latent_dim), np.float32),
        grid_labels=None,
        settings=settings_from(cfg, progress=False, max_steps=max_steps),
    )
