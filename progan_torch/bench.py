"""Training throughput (images/s) per resolution, stabilised and fading, on random data.

::

    python -m progan_torch.bench --preset cifar10 --steps 20
    python -m progan_torch.bench --preset quick --res 4,8 --batch 32 --device cuda

Each row times ``--steps`` full training steps (D step with gradient penalty, EMA, G
step) after ``--warmup`` untimed ones, with the networks built for the preset's
``max_res``. Images/s counts reals shown per second (the batch size per step), the
quantity the official code reports.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from gancore.config import add_dataclass_arguments, build_config, overrides_from_namespace
from gancore.errors import run_cli
from gancore.hardware import describe
from progan_common.config import PRESETS, ProGANConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m progan_torch.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="cifar10")
    p.add_argument("--res", default=None, help="comma list of resolutions (default 4..max-res)")
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="minibatch for every resolution (default: the schedule's)",
    )
    p.add_argument("--steps", type=int, default=20, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per row")
    p.add_argument("--phases", default="stabilize,fade", help="which phases to time")
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels-last tensors (default on)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's; 1 is often faster on a busy machine)",
    )
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    add_dataclass_arguments(p, ProGANConfig, group_title="ProGAN configuration")
    return p


def bench_row(
    runner,
    source,
    cfg,
    res: int,
    phase: str,
    batch: int,
    steps: int,
    warmup: int,
    device,
    channels_last: bool,
) -> float:
    from progan_torch.training import step_randoms, to_device_reals

    level = res.bit_length() - 3
    alpha = 0.5 if phase == "fade" else 1.0
    runner.reset_optimizers(cfg.lr)
    elapsed = 0.0
    for i in range(warmup + steps):
        u8, _ = source.batch(res, i * batch, batch)
        reals = to_device_reals(u8, device, channels_last)
        z_d, z_g, u = step_randoms(cfg.seed, i * batch, batch, cfg.latent_dim)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        runner.train_step(reals, None, z_d, z_g, u, level, alpha)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            elapsed += time.perf_counter() - t0
    return steps * batch / elapsed


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = build_config(
        ProGANConfig, PRESETS, args.preset, overrides_from_namespace(args, ProGANConfig)
    )
    from progan_torch.training import RandomSource, StepRunner, build_models, resolve_device

    device = resolve_device(cfg.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    channels_last = True if args.channels_last is None else args.channels_last
    resolutions = (
        [int(r) for r in args.res.split(",")]
        if args.res
        else [4 * 2**k for k in range(cfg.max_res.bit_length() - 2)]
    )
    source = RandomSource(channels=3, seed=cfg.seed)
    models = build_models(cfg, 3, 0, device, channels_last)
    runner = StepRunner(models, cfg, device, channels_last=channels_last)
    rows = []
    print(
        f"preset {args.preset}: latent {cfg.latent_dim}, channels "
        f"{[cfg.channels_at(r) for r in resolutions]}, device {device}, amp {cfg.amp}, "
        f"compile {cfg.compile}, channels_last {channels_last}, threads {torch.get_num_threads()}"
    )
    print(f"{'res':>5} {'phase':<10} {'batch':>6} {'img/s':>9}")
    for res in resolutions:
        batch = args.batch or cfg.schedule().batch_for(res)
        for phase in args.phases.split(","):
            if phase == "fade" and res == 4:
                continue
            ips = bench_row(
                runner,
                source,
                cfg,
                res,
                phase,
                batch,
                args.steps,
                args.warmup,
                device,
                channels_last,
            )
            rows.append({"res": res, "phase": phase, "batch": batch, "img_per_s": ips})
            print(f"{res:>5} {phase:<10} {batch:>6} {ips:>9.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "preset": args.preset, "machine": describe()}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
