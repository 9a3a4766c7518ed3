"""Training throughput (images/s) of progan_tf per resolution and phase: see
:mod:`progan_common.bench` (the same table as ``python -m progan_torch.bench``).

::

    python -m progan_tf.bench --preset quick --max-res 32 --steps 10
    python -m progan_tf.bench --preset cifar10 --res 32 --device cuda --compile --json bench.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gancore.errors import run_cli
from progan_common import bench


def make_trainer(cfg):
    """The trainer the bench times (3 channels, unconditional) on ``cfg.device``."""
    from gancore import tf_utils
    from progan_tf.training import ProGANTrainer

    tf_utils.select_device(cfg.device)
    return ProGANTrainer(cfg, 3)


def main(argv: list[str] | None = None) -> int:
    return bench.main(argv, "python -m progan_tf.bench", "tf", make_trainer)


if __name__ == "__main__":
    sys.exit(run_cli(main))
