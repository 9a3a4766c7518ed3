"""Train DCGAN or SN-DCGAN in PyTorch or TensorFlow/Keras.

    python -m vanilla_gan.train --model dcgan --framework torch --dataset stacked-digits \\
        --res 32 --kimg 100 --batch 64 --seed 0 --out runs/dcgan-torch
    python -m vanilla_gan.train --resume runs/dcgan-torch --kimg 200    # continue exactly
    python -m vanilla_gan.train --model sndcgan --framework tf --dry-run

Settings resolve as: the model's own settings (--model dcgan or sndcgan) <- --preset
(--quick: a seconds-long smoke run) <- flags given on the command line. Only the
chosen framework is imported (torch and tensorflow never share this process). The run
directory, log, grids, checkpoints and exit statuses are those of every trainer
(``gancore.train``): 0 finished, 2 bad input, 3 diverged, 130 interrupted (resumable).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python train.py` from inside vanilla_gan/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gancore.config import add_dataclass_arguments, config_to_dict, format_config, preset_flags
from gancore.errors import UserError, run_cli
from gancore.hardware import describe
from gancore.helptext import HelpFormatter
from gancore.latents import latents_for, step_latents
from gancore.rundir import RunDir
from gancore.train.cli import add_run_arguments, check_run_arguments, resolve_config
from gancore.train.loop import TrainJob, settings_from
from gancore.train.schema import RunInfo
from gancore.train.session import execute, open_source, read_run
from gancore.train.stages import ConstantStages
from vanilla_gan.config import PRESETS, TrainConfig, preset_for

ENTRY_POINT = "vanilla_gan.train"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m vanilla_gan.train", description=__doc__, formatter_class=HelpFormatter
    )
    add_run_arguments(
        ap,
        PRESETS,
        "named settings applied on top of the model's own: dcgan and sndcgan are the two "
        "models' settings (as --model), dcgan-paper Radford et al.'s widths, batch 128 and "
        f"U(-1, 1) latents ({preset_flags(PRESETS['dcgan-paper'])}), quick a seconds-long "
        f"smoke run ({quick_summary()})",
        TrainConfig,
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"the same as --preset quick: a seconds-long smoke run ({quick_summary()})",
    )
    add_dataclass_arguments(
        ap,
        TrainConfig,
        group_title="training configuration",
        alternatives={
            "--model sndcgan": {k: v for k, v in PRESETS["sndcgan"].items() if k != "model"},
            "--quick": PRESETS["quick"],
        },
    )
    return ap


def quick_summary() -> str:
    return preset_flags(PRESETS["quick"])


def resolve(ns: argparse.Namespace) -> TrainConfig:
    if ns.quick and not ns.resume:
        ns.preset = ns.preset or "quick"
    model = getattr(ns, "model", TrainConfig.model)
    if model not in ("dcgan", "sndcgan"):
        raise UserError(f"unknown --model {model!r}; choose dcgan or sndcgan")
    cfg = resolve_config(TrainConfig, PRESETS, ns, base_preset=preset_for(model))
    if cfg.tflop is not None:  # the run length follows from the compute budget
        from vanilla_gan.flops import step_flops_per_image

        per_step = step_flops_per_image(cfg) * cfg.batch * cfg.n_dis
        steps = max(1, math.ceil(cfg.tflop * 1e12 / per_step))
        cfg = dataclasses.replace(cfg, kimg=steps * cfg.batch * cfg.n_dis / 1000.0)
    return cfg


def make_trainer(cfg: TrainConfig, channels: int):
    if cfg.framework == "torch":
        from vanilla_gan.torch_training import TorchTrainer

        return TorchTrainer(cfg, channels)
    from vanilla_gan.tf_training import TFTrainer

    return TFTrainer(cfg, channels)


def dry_run_estimate(cfg: TrainConfig) -> str:
    """Training FLOPs of the run and a wall-clock estimate from a few real steps here."""
    from gancore.latents import RandomSource
    from gancore.train.estimate import calibrate, describe, schedule_flops
    from vanilla_gan.flops import step_flops_per_image

    per = step_flops_per_image(cfg)
    stages = ConstantStages(cfg.res, cfg.batch * cfg.n_dis)
    total = int(round(cfg.kimg * 1000))
    shape = (cfg.n_dis, cfg.batch, cfg.z_dim)
    cal = calibrate(
        make_trainer(cfg, 3),
        stages.state(0),
        lambda nimg, _st: {"z": step_latents(cfg.seed, nimg, shape, cfg.latent_dist)},
        RandomSource(3, seed=cfg.seed),
        lambda res, fading: per,
    )
    return describe(schedule_flops(stages, total, lambda res, fading: per), total, cal)


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    check_run_arguments(ns)
    if ns.resume:
        read_run(ns.resume, (ENTRY_POINT,))
    cfg = resolve(ns)
    if ns.dry_run:
        print(format_config(cfg))
        # stdout stays one JSON document (scripts parse it); the estimate is for the reader
        print(dry_run_estimate(cfg), file=sys.stderr)
        return 0
    run = RunDir(ns.resume or ns.out)
    source = open_source(
        cfg.dataset,
        data_root=cfg.data_root,
        cache_dir=cfg.cache_dir,
        resolutions=[cfg.res],
        seed=cfg.seed,
        mirror=cfg.mirror,
    )
    info = RunInfo(
        model=cfg.model,
        framework=cfg.framework,
        entry_point=ENTRY_POINT,
        img_channels=source.channels,
        dataset=cfg.dataset,
        hardware=describe(),
    )
    shape = (cfg.n_dis, cfg.batch, cfg.z_dim)
    job = TrainJob(
        run=run,
        info=info,
        stages=ConstantStages(cfg.res, cfg.batch * cfg.n_dis),
        draw=lambda nimg, _stage: {"z": step_latents(cfg.seed, nimg, shape, cfg.latent_dist)},
        source=source,
        grid_latents=latents_for(cfg.seed, range(cfg.grid_size), cfg.z_dim, cfg.latent_dist),
        grid_labels=None,
        settings=settings_from(cfg, progress=not ns.no_progress),
    )

    return execute(
        run,
        job,
        lambda: make_trainer(cfg, source.channels),
        config=config_to_dict(cfg),
        resume=bool(ns.resume),
        overwrite=ns.overwrite,
    )


if __name__ == "__main__":
    sys.exit(run_cli(main))
