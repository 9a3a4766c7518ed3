"""Training speed of progan_tf per resolution and phase, on random data.

::

    python -m progan_tf.bench --preset quick --max-res 32 --steps 10
    python -m progan_tf.bench --preset cifar10 --res 32 --device cuda --compile --json bench.json

For every level: a fresh schedule position in the stabilisation phase (alpha 1) and in
the fade (alpha 0.5), ``--warmup`` untimed steps (tracing / XLA compilation), then
``--steps`` timed full training steps (D step with gradient penalty, EMA, G step) at
the preset's batch size for that resolution. Images/s counts real images consumed.
The data are deterministic random uint8 images (no input pipeline cost), so the
figures measure the framework and the model only. Same table as ``progan_torch.bench``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from gancore.config import (  # noqa: E402
    add_dataclass_arguments,
    build_config,
    format_config,
    overrides_from_namespace,
)
from gancore.errors import UserError, run_cli  # noqa: E402
from gancore.hardware import describe  # noqa: E402
from gancore.io import atomic_write_json  # noqa: E402
from progan_common.config import PRESETS, ProGANConfig  # noqa: E402


def bench(
    cfg: ProGANConfig,
    steps: int,
    warmup: int,
    resolutions: list[int] | None = None,
    batch: int | None = None,
    phases: tuple[str, ...] = ("stabilize", "fade"),
) -> list[dict]:
    """Rows ``{res, phase, batch, img_per_s, step_ms}`` (default: every resolution)."""
    from progan_tf.train import peak_mem_mb
    from progan_tf.training import RandomSource, Trainer, step_randoms, to_float_images

    source = RandomSource(channels=3, seed=cfg.seed)
    trainer = Trainer(cfg, 3)
    sched = cfg.schedule()
    resolutions = resolutions or [4 * 2**k for k in range(trainer.G.num_levels)]
    rows = []
    fixed_batch = batch
    for res in resolutions:
        level = res.bit_length() - 3
        batch = fixed_batch or sched.batch_for(res)
        for phase, alpha in (("stabilize", 1.0), ("fade", 0.5)):
            if phase not in phases or (level == 0 and phase == "fade"):
                continue
            for m in trainer.nets():
                m.level.assign(level)
                m.alpha.assign(alpha)
            reals = to_float_images(source.batch(res, 0, batch)[0])
            z_d, z_g, u = step_randoms(cfg, 0, batch)
            for _ in range(warmup):
                trainer.train_step(reals, None, z_d, z_g, u, level)
            t0 = time.perf_counter()
            for i in range(steps):
                z_d, z_g, u = step_randoms(cfg, (i + 1) * batch, batch)
                out = trainer.train_step(reals, None, z_d, z_g, u, level)
            dt = time.perf_counter() - t0  # train_step returns floats: every step is synced
            rows.append(
                {
                    "res": res,
                    "phase": phase,
                    "batch": batch,
                    "img_per_s": steps * batch / dt,
                    "step_ms": 1000 * dt / steps,
                    "loss_d": out["loss_d"],
                    "peak_mem_mb": peak_mem_mb(),
                }
            )
            print(
                f"{res:5d} {phase:9s} batch {batch:4d} {rows[-1]['img_per_s']:10.1f} img/s "
                f"{rows[-1]['step_ms']:9.1f} ms/step",
                flush=True,
            )
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m progan_tf.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Same flags as progan_torch.bench (minus --channels-last), so the harness treats both alike.
    p.add_argument("--preset", default="cifar10", choices=sorted(PRESETS))
    p.add_argument("--res", default=None, help="comma list of resolutions (default 4..max-res)")
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="minibatch for every resolution (default: the schedule's)",
    )
    p.add_argument("--steps", type=int, default=20, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per row (tracing)")
    p.add_argument("--phases", default="stabilize,fade", help="which phases to time")
    p.add_argument("--json", default=None, help="also write the rows (and hardware) to this file")
    p.add_argument("--dry-run", action="store_true", help="print the config and exit")
    add_dataclass_arguments(p, ProGANConfig, group_title="ProGAN configuration")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        raise UserError("--steps must be >= 1 and --warmup >= 0")
    over = overrides_from_namespace(args, ProGANConfig)
    cfg = build_config(ProGANConfig, PRESETS, args.preset, over)
    res = [int(r) for r in args.res.split(",")] if args.res else None
    if res and any(r < 4 or r > cfg.max_res or r & (r - 1) for r in res):
        raise UserError(f"--res must be powers of two between 4 and max-res {cfg.max_res}")
    phases = tuple(p.strip() for p in args.phases.split(",") if p.strip())
    if args.dry_run:
        print(format_config(cfg))
        return 0
    from progan_tf.train import select_device

    select_device(cfg.device)
    print(
        f"progan_tf bench: preset {args.preset}, max_res {cfg.max_res}, amp {cfg.amp}, "
        f"compile {cfg.compile}, {args.steps} steps after {args.warmup} warm-up"
    )
    rows = bench(cfg, args.steps, args.warmup, res, args.batch, phases)
    if args.json:
        atomic_write_json(
            args.json,
            {
                "framework": "tf",
                "preset": args.preset,
                "config": over,
                "rows": rows,
                "hardware": describe(),
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
