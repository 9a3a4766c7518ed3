"""Training throughput (images/s) of progan_torch per resolution and phase: see
:mod:`progan_common.bench` (the same table as ``python -m progan_tf.bench``).

::

    python -m progan_torch.bench --preset cifar10 --steps 8
    python -m progan_torch.bench --preset quick --res 4,8 --batch 32 --device cuda --amp bf16
    python -m progan_torch.bench --preset cifar10 --res 8 --phases stabilize --profile 5
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gancore.errors import run_cli
from progan_common import bench

TOP_OPS = 12  # operators --profile lists per row


def profile_ops(run_step, n: int) -> dict:
    """``n`` steps under ``torch.profiler``: the operators by self CPU time per step (the
    profiler's own overhead included, so the figures are for comparing operators, not for
    speed), and the convolutions' (forward and backward) share of all operator time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_initialized():  # the trainer runs on a GPU
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for j in range(n):
            run_step(j)
    events = list(prof.key_averages())
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    conv = sum(e.self_cpu_time_total for e in events if "convolution" in e.key)
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:TOP_OPS]
    return {
        "steps": n,
        "self_cpu_ms_per_step": total / 1e3 / n,
        "convolution_share": conv / total,
        "top": [
            {
                "op": e.key,
                "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / n,
                "calls_per_step": e.count / n,
            }
            for e in top
        ],
    }


def make_trainer(cfg, variant: str | None = None):
    """The trainer the bench times (3 channels, unconditional); ``variant``: one of
    :data:`progan_torch.variants.VARIANTS` (for this process), None for the product."""
    from progan_torch import variants
    from progan_torch.training import ProGANTrainer

    return ProGANTrainer(cfg, 3, **variants.trainer_kwargs(variant, cfg.amp))


def main(argv: list[str] | None = None) -> int:
    import torch

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    return bench.main(
        argv, "python -m progan_torch.bench", "torch", make_trainer, sync, profile_ops
    )


if __name__ == "__main__":
    sys.exit(run_cli(main))
