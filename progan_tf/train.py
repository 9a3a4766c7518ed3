"""Train ProGAN with TensorFlow 2 / Keras 3: ``python -m progan_tf.train --help``.

::

    python -m progan_tf.train --preset quick --dataset stacked-digits --kimg 40 --out runs/pg-tf
    python -m progan_tf.train --resume runs/pg-tf --kimg 80        # continue (mid-fade exact)
    python -m progan_tf.train --preset cifar10 --dry-run           # print the resolved config

The same flags, run directory, log keys and exit statuses as ``progan_torch.train`` (both
drive the one loop of ``gancore.train``). Several GPUs in one machine: ``--strategy mirrored``
(the default picks it when more than one GPU is visible).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python train.py` from inside progan_tf/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gancore.errors import run_cli
from gancore.train.session import execute
from progan_common.cli import build_train_parser, dry_run_estimate, plan_training

ENTRY_POINT = "progan_tf.train"


def make_strategy(name: str):
    from gancore.tf_utils import tf

    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return None


def build_parser():
    parser = build_train_parser("python -m progan_tf.train", __doc__)
    parser.add_argument(
        "--strategy",
        default="auto",
        choices=["auto", "one", "mirrored"],
        help="tf.distribute: auto = MirroredStrategy when more than one GPU is visible",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = plan_training(args, "tf", ENTRY_POINT)
    if plan.dry_run:
        from progan_tf.training import ProGANTrainer

        print(dry_run_estimate(plan.cfg, lambda: ProGANTrainer(plan.cfg, 3, 0)))
        return 0
    from gancore import tf_utils
    from progan_tf.training import ProGANTrainer

    tf_utils.select_device(plan.cfg.device)
    info = plan.job.info
    return execute(
        plan.run,
        plan.job,
        lambda: ProGANTrainer(
            plan.cfg, info.img_channels, info.num_classes, make_strategy(args.strategy)
        ),
        config=plan.config,
        resume=plan.resume,
        overwrite=plan.overwrite,
    )


if __name__ == "__main__":
    sys.exit(run_cli(main))
