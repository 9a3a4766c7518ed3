"""Training throughput (images/s) of progan_torch per resolution and phase: see
:mod:`progan_common.bench` (the same table as ``python -m progan_tf.bench``).

::

    python -m progan_torch.bench --preset cifar10 --steps 8
    python -m progan_torch.bench --preset quick --res 4,8 --batch 32 --device cuda --amp bf16
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gancore.errors import run_cli
from progan_common import bench


def main(argv: list[str] | None = None) -> int:
    import torch

    from progan_torch.training import ProGANTrainer

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    return bench.main(
        argv, "python -m progan_torch.bench", "torch", lambda cfg: ProGANTrainer(cfg, 3), sync
    )


if __name__ == "__main__":
    sys.exit(run_cli(main))
