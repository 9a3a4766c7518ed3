"""Command-line pieces shared by ``progan_torch`` and ``progan_tf`` (same flags, same rules).

Both frameworks' ``train`` CLIs resolve the config, print the dry run and assemble the
training job here, once; each framework adds only its trainer (and its way of spreading a
minibatch over devices). The ``sample`` CLIs share their arguments here too.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from dataclasses import dataclass

import numpy as np

from gancore.config import add_dataclass_arguments, config_to_dict, format_config, preset_flags
from gancore.hardware import describe
from gancore.helptext import HelpFormatter
from gancore.latents import latents_for, step_randoms
from gancore.rundir import RunDir
from gancore.train.cli import add_run_arguments, check_run_arguments, resolve_config
from gancore.train.loop import TrainJob, settings_from
from gancore.train.schema import RunInfo
from gancore.train.session import open_source, read_run
from progan_common.config import PRESETS, ProGANConfig

# A new run without --preset gets small networks a CPU trains in minutes, not the paper's
# 512-channel, 12,000-kimg model; the paper presets are always named explicitly.
DEFAULT_PRESET = "quick"


def build_train_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=HelpFormatter,
        epilog=presets_epilog(DEFAULT_PRESET),
    )
    add_run_arguments(
        p,
        PRESETS,
        f"named settings, listed at the end with everything each one sets; flags given "
        f"override them (default: {DEFAULT_PRESET}, small networks for a CPU; the paper's "
        "settings are celebahq, celebahq-1gpu and cifar10)",
        ProGANConfig,
    )
    p.add_argument(
        "--random-data",
        action="store_true",
        help="train on deterministic random images instead of --dataset (smoke tests)",
    )
    add_preset_config_arguments(p, DEFAULT_PRESET)
    return p


def add_preset_config_arguments(p: argparse.ArgumentParser, default_preset: str) -> None:
    """Every ProGANConfig field as a flag; its help gives the value ``default_preset`` leaves
    it at and what the other presets set."""
    add_dataclass_arguments(
        p,
        ProGANConfig,
        group_title="ProGAN configuration",
        defaults=(f"the {default_preset} preset", PRESETS[default_preset]),
        alternatives={f"--preset {n}": v for n, v in PRESETS.items() if n != default_preset},
    )


def presets_epilog(default_preset: str) -> str:
    lines = [f"presets (without --preset: {default_preset}):"]
    for name, values in PRESETS.items():
        lines.append(
            textwrap.fill(
                preset_flags(values),
                width=88,
                initial_indent=f"  {name:<14} ",
                subsequent_indent=" " * 17,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)


@dataclass
class Plan:
    cfg: ProGANConfig
    run: RunDir | None
    job: TrainJob | None
    resume: bool
    overwrite: bool
    dry_run: bool = False

    @property
    def config(self) -> dict:
        return config_to_dict(self.cfg)


def plan_training(args: argparse.Namespace, framework: str, entry_point: str) -> Plan:
    """The resolved config and the training job (a ``--dry-run`` plan has no job: the config
    and phase table are printed, nothing is read or written)."""
    check_run_arguments(args)
    if args.resume:
        info, _ = read_run(args.resume, (entry_point,))
        args.random_data = args.random_data or info.random_data
    elif args.preset is None:
        args.preset = DEFAULT_PRESET
        print(
            f"no --preset given: using {DEFAULT_PRESET!r} (small networks for a CPU); the "
            "paper's settings are --preset celebahq, celebahq-1gpu or cifar10",
            file=sys.stderr,
        )
    cfg = with_compute_budget(resolve_config(ProGANConfig, PRESETS, args))
    if args.dry_run:
        print(format_config(cfg))
        print(phase_table(cfg))
        return Plan(cfg, None, None, bool(args.resume), args.overwrite, dry_run=True)
    stages = cfg.schedule()
    total = int(round(cfg.kimg * 1000))
    source = open_source(
        cfg.dataset,
        data_root=cfg.data_root,
        cache_dir=cfg.cache_dir,
        resolutions=sorted({st.res for st in stages.phases(total)}),
        seed=cfg.seed,
        mirror=cfg.mirror,
        conditional=cfg.conditional,
        split=cfg.split,
        random_data=args.random_data,
    )
    info = RunInfo(
        model=cfg.model_name,
        framework=framework,
        entry_point=entry_point,
        img_channels=source.channels,
        num_classes=source.num_classes,
        dataset="random" if args.random_data else cfg.dataset,
        random_data=bool(args.random_data),
        hardware=describe(),
    )
    ids = np.arange(cfg.grid_size)
    job = TrainJob(
        run=RunDir(args.resume or args.out),
        info=info,
        stages=stages,
        draw=lambda nimg, st: dict(
            zip(("z_d", "z_g", "u"), step_randoms(cfg.seed, nimg, st.batch, cfg.latent_dim))
        ),
        source=source,
        grid_latents=latents_for(cfg.seed, ids, cfg.latent_dim),
        grid_labels=(ids % source.num_classes).astype(np.int64) if source.num_classes else None,
        settings=settings_from(cfg, progress=not args.no_progress),
        conditional=bool(source.num_classes),
    )
    return Plan(cfg, job.run, job, bool(args.resume), args.overwrite)


def with_compute_budget(cfg: ProGANConfig) -> ProGANConfig:
    """With ``--tflop``: the run length (``kimg``, in hundreds of images: within a step of the budget) whose training
    FLOPs over the progressive schedule reach the budget; the phases keep their lengths and
    the final stabilisation at ``max_res`` takes what is left."""
    if cfg.tflop is None:
        return cfg
    import dataclasses

    from gancore.train.estimate import nimg_for_flops
    from progan_torch.flops import step_flops_per_image

    nimg = nimg_for_flops(
        lambda n: dataclasses.replace(cfg, kimg=n / 1000.0).schedule(),
        lambda res, fading: step_flops_per_image(cfg, res, fading),
        cfg.tflop * 1e12,
        step=100,
    )
    return dataclasses.replace(cfg, kimg=nimg / 1000.0)


def dry_run_estimate(cfg: ProGANConfig, make_trainer) -> str:
    """Training FLOPs over the schedule and a wall-clock estimate from a few real steps of
    ``make_trainer()`` at min(max_res, 32) (kept small so a dry run takes seconds)."""
    from gancore.latents import RandomSource
    from gancore.train.estimate import calibrate, describe, schedule_flops
    from progan_torch.flops import step_flops_per_image

    total = int(round(cfg.kimg * 1000))
    sched = cfg.schedule()

    def per_image(res: int, fading: bool) -> float:
        return step_flops_per_image(cfg, res, fading)

    flops = schedule_flops(sched, total, per_image)
    res = min(cfg.max_res, 32)
    probe = next((st for st in sched.phases() if st.res == res), sched.state(0))
    draw = lambda nimg, st: dict(  # noqa: E731
        zip(("z_d", "z_g", "u"), step_randoms(cfg.seed, nimg, st.batch, cfg.latent_dim))
    )
    cal = calibrate(make_trainer(), probe, draw, RandomSource(3, seed=cfg.seed), per_image)
    return describe(flops, total, cal)


def phase_table(cfg: ProGANConfig) -> str:
    """The schedule's phases up to ``cfg.kimg`` as a table (``--dry-run``)."""
    total = int(round(cfg.kimg * 1000))
    lines = [
        f"{'#':>3} {'phase':<10} {'res':>5} {'batch':>6} {'lr':>8} {'start kimg':>11} {'end kimg':>9}"
    ]
    for st in cfg.schedule().phases(total):
        end = "end" if st.phase_end_nimg is None else f"{min(st.phase_end_nimg, total) / 1000:.1f}"
        lines.append(
            f"{st.phase_index:>3} {st.phase:<10} {st.res:>5} {st.batch:>6} {st.lr:>8.4g} "
            f"{st.phase_start_nimg / 1000:>11.1f} {end:>9}"
        )
    lines.append(f"total: {cfg.kimg:g} kimg")
    return "\n".join(lines)


def sample_parser(
    prog: str, description: str | None, checkpoint_help: str
) -> argparse.ArgumentParser:
    """The ``sample`` CLI's arguments (identical in both frameworks)."""
    p = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    p.add_argument(
        "--run", required=True, metavar="RUN_DIR", help="the run directory a train CLI wrote"
    )
    p.add_argument("--checkpoint", default=None, help=checkpoint_help)
    p.add_argument(
        "--n", type=int, required=True, help="images to export (rows with --interpolate)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="latent seed S: image i uses rng([S, i]), in any N and either framework (default: 0)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="the .npz to write, e.g. RUN_DIR/samples.npz; with --interpolate a .png grid of "
        "the same name is written beside it",
    )
    p.add_argument("--batch", type=int, default=64, help="generator minibatch (default: 64)")
    p.add_argument(
        "--device",
        default="auto",
        help="auto (a GPU when one is visible), cpu, cuda or cuda:N (default: auto)",
    )
    p.add_argument(
        "--interpolate",
        type=int,
        default=0,
        metavar="STEPS",
        help="instead of samples, a latent-interpolation grid: --n rows of STEPS images "
        "(spherical interpolation between two latents per row)",
    )
    return p
