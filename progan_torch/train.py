"""Train ProGAN (PyTorch): ``python -m progan_torch.train --preset quick --out RUN_DIR``.

Every :class:`progan_common.config.ProGANConfig` field is a flag (``--help``); a preset
supplies defaults and flags override it. ``--dry-run`` prints the resolved config and the
phase table and exits. ``--resume RUN_DIR`` continues the run exactly (networks, EMA, Adam,
schedule position and data order all follow from the saved image count). Multi-GPU:
``torchrun --nproc_per_node N -m progan_torch.train ...`` (the schedule's batch sizes are
global). Exit status: 0 finished, 2 bad input, 3 diverged, 130 interrupted (resumable).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python train.py` from inside progan_torch/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gancore.errors import run_cli
from gancore.train.session import execute
from progan_common.cli import build_train_parser, dry_run_estimate, plan_training

ENTRY_POINT = "progan_torch.train"


def build_parser():
    return build_train_parser("python -m progan_torch.train", __doc__)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = plan_training(args, "torch", ENTRY_POINT)
    if plan.dry_run:
        from progan_torch.training import ProGANTrainer

        print(dry_run_estimate(plan.cfg, lambda: ProGANTrainer(plan.cfg, 3, 0)))
        return 0
    from progan_torch.distributed import barrier, init_from_env, shutdown
    from progan_torch.training import ProGANTrainer

    dist = init_from_env(plan.cfg.device)
    info = plan.job.info
    try:
        return execute(
            plan.run,
            plan.job,
            lambda: ProGANTrainer(plan.cfg, info.img_channels, info.num_classes, dist),
            config=plan.config,
            resume=plan.resume,
            overwrite=plan.overwrite,
            is_main=dist.is_main,
            barrier=lambda: barrier(dist),
        )
    finally:
        shutdown(dist)


if __name__ == "__main__":
    sys.exit(run_cli(main))
