"""Train ProGAN (PyTorch): ``python -m progan_torch.train --dataset NAME --preset P --out RUN_DIR``.

Every :class:`progan_common.config.ProGANConfig` field is a flag (``--help``); a preset
supplies defaults and flags override it. ``--dry-run`` prints the resolved config and the
phase table and exits. ``--resume RUN_DIR`` continues the run from its latest
checkpoint exactly (networks, EMA, Adam, RNG, schedule position and data order all
follow from the saved image count). Multi-GPU: ``torchrun --nproc_per_node N -m
progan_torch.train ...`` (the schedule's batch sizes are global).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python train.py` from inside progan_torch/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gancore.config import (
    add_dataclass_arguments,
    config_to_dict,
    format_config,
)
from gancore.errors import UserError, run_cli
from gancore.rundir import RunDir
from progan_common.cli import RESUME_OVERRIDABLE, phase_table  # noqa: F401 (re-exported)
from progan_common.cli import resolve_train_config as resolve_config
from progan_common.config import PRESETS, ProGANConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m progan_torch.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="named settings: " + ", ".join(sorted(PRESETS)),
    )
    p.add_argument("--out", default=None, help="run directory to create (required unless --resume)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue this run from its latest checkpoint",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved config and phase table, then exit",
    )
    p.add_argument("--overwrite", action="store_true", help="reuse --out even if it holds a run")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (logs still written)"
    )
    add_dataclass_arguments(p, ProGANConfig, group_title="ProGAN configuration")
    return p


def make_source(cfg: ProGANConfig):
    from datasets import prepare
    from progan_torch.training import DatasetSource

    ds = prepare(
        cfg.dataset,
        data_root=cfg.data_root,
        cache_dir=cfg.cache_dir,
        max_res=cfg.max_res,
        split=cfg.split,
    )
    needed = [st.res for st in cfg.schedule().phases()]
    missing = [r for r in needed if r not in ds.resolutions]
    if missing:
        raise UserError(
            f"data set {cfg.dataset!r} lacks resolutions {missing} (has {ds.resolutions})"
        )
    return DatasetSource(ds, cfg.seed, cfg.mirror, cfg.conditional)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = resolve_config(args)
    if args.dry_run:
        print(format_config(cfg))
        print(phase_table(cfg))
        return 0
    if not args.out and not args.resume:
        raise UserError("pass --out RUN_DIR for a new run (or --resume RUN_DIR)")

    from progan_torch.checkpoint import find_checkpoint, load_checkpoint
    from progan_torch.distributed import barrier, init_from_env, shutdown
    from progan_torch.loop import train
    from progan_torch.training import amp_dtype, resolve_device

    dist = init_from_env(cfg.device)
    device = resolve_device(cfg.device, dist)
    amp_dtype(cfg, device)  # refuse unsupported --amp before any file is written
    run = RunDir(args.resume or args.out)
    ckpt = None
    if args.resume:
        ckpt = load_checkpoint(find_checkpoint(args.resume), "cpu")
        if dist.is_main:
            run.truncate_log(ckpt["progress"]["nimg"] / 1000.0)
            from gancore.io import atomic_write_json

            atomic_write_json(
                run.config_path, {"model": "progan", "framework": "torch", **config_to_dict(cfg)}
            )
    elif dist.is_main:
        run.create(
            {"model": "progan", "framework": "torch", **config_to_dict(cfg)},
            overwrite=args.overwrite,
        )
    barrier(dist)
    source = make_source(cfg)
    if dist.is_main:
        run.set_status("running", world=dist.world)
    try:
        prog = train(
            cfg, run, source, device, dist=dist, resume_ckpt=ckpt, progress_bar=not args.no_progress
        )
    except BaseException as exc:
        if dist.is_main:
            run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        shutdown(dist)
    if dist.is_main:
        run.set_status("finished", kimg=prog.nimg / 1000.0, skipped_steps=prog.skipped_steps)
        print(
            f"finished at {prog.nimg / 1000:g} kimg ({prog.nimg} images); run directory {run.path}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
