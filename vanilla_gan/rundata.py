"""Reading what a finished or running DCGAN run needs: its config and checkpoint. No framework."""

from __future__ import annotations

from pathlib import Path

from gancore.config import config_from_dict
from gancore.errors import UserError
from gancore.rundir import RunDir
from gancore.train.session import read_run as read_run_info
from vanilla_gan.config import TrainConfig


def read_run(run_dir: str | Path, framework: str | None = None) -> tuple[TrainConfig, RunDir, int]:
    """(config, RunDir, image channels) of a vanilla_gan run; checks the framework when given."""
    info, config = read_run_info(str(run_dir), ("vanilla_gan.train",))
    cfg = config_from_dict(TrainConfig, config)
    if framework is not None and info.framework != framework:
        raise UserError(
            f"{run_dir} was trained with framework {info.framework!r}, not {framework!r}."
        )
    return cfg, RunDir(run_dir), info.img_channels
