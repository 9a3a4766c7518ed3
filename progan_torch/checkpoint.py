"""Checkpoints: one ``torch.save`` dict of tensors and plain Python values.

Kept to types ``torch.load(..., weights_only=True)`` accepts (DESIGN.md: never unpickle
arbitrary objects), so numpy's RNG state is stored as a tensor plus ints. Written into a
temporary path with :func:`gancore.io.atomic_path`, then committed with
:meth:`RunDir.commit_checkpoint` (``latest.json`` only ever points at complete files).

Contents: ``G``, ``D``, ``G_ema`` state_dicts (including the ``level``/``alpha``
buffers), ``opt_g``/``opt_d`` Adam states, ``progress`` (``nimg``, ``opt_key``,
``time_s``, ``skipped_steps``), ``rng`` (torch, numpy, python), ``config``
(:func:`gancore.config.config_to_dict`) and ``meta`` (image channels, classes).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancore.config import config_from_dict, config_to_dict
from gancore.errors import UserError
from gancore.io import atomic_path
from gancore.rundir import RunDir
from progan_common.config import ProGANConfig

FORMAT_VERSION = 1


def rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    py = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": [py[0], list(py[1]), py[2]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    v, inner, gauss = state["python"]
    random.setstate((v, tuple(inner), gauss))


def save_checkpoint(
    run: RunDir, cfg: ProGANConfig, models, runner, progress: dict[str, Any], meta: dict[str, Any]
) -> Path:
    """Write and commit a checkpoint at ``progress['nimg']``; returns its path."""
    kimg = progress["nimg"] / 1000.0
    state = {
        "format": FORMAT_VERSION,
        "G": models.G.state_dict(),
        "D": models.D.state_dict(),
        "G_ema": models.G_ema.state_dict() if models.G_ema is not None else None,
        "opt_g": runner.opt_g.state_dict(),
        "opt_d": runner.opt_d.state_dict(),
        "progress": dict(progress),
        "rng": rng_state(),
        "config": config_to_dict(cfg),
        "meta": dict(meta),
    }
    path = run.checkpoint_path(kimg, ".pt")
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    run.commit_checkpoint(path, kimg, keep=cfg.keep_checkpoints, nimg=int(progress["nimg"]))
    return path


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt / foreign file: say which one
        raise UserError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_VERSION:
        raise UserError(f"{path} is not a progan_torch checkpoint (format {FORMAT_VERSION})")
    return ckpt


def find_checkpoint(
    run_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None
) -> Path:
    """``checkpoint`` if given, else the run's ``latest.json`` pointer."""
    if checkpoint is not None:
        return Path(checkpoint)
    run = RunDir(run_dir)
    run.read_config()  # clear error when this is not a run directory
    latest = run.latest_checkpoint()
    if latest is None:
        raise UserError(f"{run_dir} has no committed checkpoint yet (checkpoints/latest.json)")
    return latest


def config_of(ckpt: dict[str, Any]) -> ProGANConfig:
    return config_from_dict(ProGANConfig, ckpt["config"])
