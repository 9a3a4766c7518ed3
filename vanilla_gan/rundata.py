"""Reading and opening what a run needs: its config, its data stream. No framework imports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gancore.config import config_from_dict, config_to_dict
from gancore.errors import UserError
from gancore.hardware import describe
from gancore.rundir import RunDir
from vanilla_gan.config import TrainConfig


def run_config_dict(cfg: TrainConfig, channels: int) -> dict[str, Any]:
    """What ``config.json`` holds: every TrainConfig field, plus channels and the machine."""
    return {
        **config_to_dict(cfg),
        "channels": channels,
        "entry_point": "vanilla_gan.train",
        "hardware": describe(),
    }


def read_run(run_dir: str | Path, framework: str | None = None) -> tuple[TrainConfig, RunDir, int]:
    """(config, RunDir, channels) of an existing run; checks the framework when given."""
    run = RunDir(run_dir)
    data = run.read_config()
    if data.get("entry_point") != "vanilla_gan.train":
        raise UserError(
            f"{run_dir} is not a vanilla_gan run (config.json entry_point "
            f"{data.get('entry_point')!r})."
        )
    cfg = config_from_dict(TrainConfig, data)
    if framework is not None and cfg.framework != framework:
        raise UserError(
            f"{run_dir} was trained with framework {cfg.framework!r}, not {framework!r}."
        )
    return cfg, run, int(data["channels"])


def open_stream(cfg: TrainConfig):
    """(ImageStream, channels) for the configured data set, prepared on first use."""
    try:
        from datasets import prepare
        from datasets.stream import ImageStream
    except ImportError as exc:  # the dataset layer is a sibling package of this repository
        raise UserError(
            f"the datasets package is not importable ({exc}); run from the "
            "repository root or install it with `pip install -e .`"
        ) from exc
    ds = prepare(cfg.dataset, data_root=cfg.data_root, cache_dir=cfg.cache_dir, max_res=cfg.res)
    if cfg.res not in ds.resolutions:
        raise UserError(
            f"data set {cfg.dataset!r} has resolutions {ds.resolutions}, "
            f"not {cfg.res}; pick --res from those."
        )
    return ImageStream(ds, seed=cfg.seed, mirror=cfg.mirror), ds.channels
