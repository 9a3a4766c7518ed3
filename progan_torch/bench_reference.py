"""Same-session speed ratio against public PyTorch ProGANs: ``pro-gan-pth`` (akanimax) and
facebookresearch/pytorch_GAN_zoo's ``PGAN``.

::

    pip install --no-deps --target /tmp/refpkg/site pro-gan-pth==3.4
    PYTHONPATH=/tmp/refpkg/site python -m progan_torch.bench_reference --res 4,8,16,32 --steps 8

    git clone https://github.com/facebookresearch/pytorch_GAN_zoo /tmp/pytorch_GAN_zoo
    python -m progan_torch.bench_reference --peer gan-zoo --peer-dir /tmp/pytorch_GAN_zoo \
        --res 4,8,16,32 --steps 8 --rounds 2 --threads 1 --json progan_vs_gan_zoo.json

The speed comparison is with public PyTorch ProGANs at 128 channels
everywhere, latent 128, batch 16, WGAN-GP. Absolute figures depend on the machine and on what
else runs on it, so this script times the peer's own training step (see
:mod:`progan_torch.reference_peers`: which function, which torch 2.x shims) and ours
(``ProGANTrainer.step`` through the ``Trainer`` interface, as ``progan_common.bench``) on the
same random data, alternating ours / peer ``--rounds`` times per row in one process, and
prints both with their ratio (pooled over the rounds, and the median of the rounds' ratios, which
a burst of load from elsewhere moves less). GAN zoo rows are the stabilising phase only.

Neither peer is a dependency of this project or installed by the Makefile: pro-gan-pth pins
torch 1.10 (install it without dependencies into a separate folder, as above); the GAN zoo is
used from a clone outside the repository. Nothing from them is imported unless this runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from gancore.errors import UserError, run_cli
from gancore.hardware import MALLOC_MODES, code_version, describe, malloc_state
from gancore.helptext import HelpFormatter
from gancore.io import atomic_write_json, output_file


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m progan_torch.bench_reference",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--res", default="4,8,16,32", help="comma list of resolutions to time")
    p.add_argument("--max-res", type=int, default=32, help="resolution both networks are built for")
    p.add_argument("--channels", type=int, default=128, help="feature maps at every resolution")
    p.add_argument("--latent", type=int, default=128, help="latent size")
    p.add_argument("--batch", type=int, default=16, help="minibatch size")
    p.add_argument("--steps", type=int, default=8, help="timed steps per row and implementation")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per row")
    p.add_argument(
        "--rounds", type=int, default=2, help="alternate ours/reference this many times per row"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for weights and random data")
    p.add_argument(
        "--peer", default="pro-gan-pth", choices=("pro-gan-pth", "gan-zoo"), help="which ProGAN"
    )
    p.add_argument("--peer-dir", type=Path, default=None, help="gan-zoo: its clone's folder")
    p.add_argument("--phases", default=None, help="comma list (default: what the peer supports)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    p.add_argument(
        "--malloc",
        default="tuned",
        choices=MALLOC_MODES,
        help="the CPU allocator setting (our trainers' --malloc); process-wide, so the peer, "
        "running in the same process, gets the same",
    )
    p.add_argument(
        "--amp",
        default="off",
        choices=("off", "bf16"),
        help="our trainer's --amp (the peers have no mixed precision and stay fp32: a bf16 row "
        "compares ours in bf16 with the peer in fp32; the headline comparison is fp32)",
    )
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    return p


class Ours:
    def __init__(
        self,
        max_res: int,
        channels: int,
        latent: int,
        seed: int,
        threads: int = 0,
        malloc: str = "tuned",
        amp: str = "off",
    ):
        from gancore.config import build_config
        from progan_common.config import PRESETS, ProGANConfig
        from progan_torch.training import ProGANTrainer

        overrides = {
            "threads": threads,
            "malloc": malloc,
            "amp": amp,
            "max_res": max_res,
            "latent_dim": latent,
            "fmap_base": channels * max_res * 4,
            "fmap_max": channels,
            "seed": seed,
            "device": "cpu",
        }
        self.cfg = build_config(ProGANConfig, PRESETS, "cifar10", overrides)
        self.trainer = ProGANTrainer(self.cfg, 3, 0)
        self.reset()

    def reset(self):
        self.trainer.reset_optimizers()

    def step(self, u8, nimg: int, res: int, alpha: float):
        from gancore.latents import step_randoms
        from progan_common.bench import stage_for

        n = u8.shape[0]
        self.trainer.set_stage(stage_for(res, "fade" if alpha < 1 else "stabilize", n, self.cfg.lr))
        z_d, z_g, u = step_randoms(self.cfg.seed, nimg, n, self.cfg.latent_dim)
        self.trainer.step(u8, None, {"z_d": z_d, "z_g": z_g, "u": u})


def time_steps(fn, steps: int, warmup: int) -> float:
    for i in range(warmup):
        fn(i)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        fn(i)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.json:
        output_file(args.json, "--json", "rows.json")  # before the timing, not after it
    from gancore.latents import RandomSource
    from progan_torch.reference_peers import PEERS

    peer_cls = PEERS[args.peer]
    phases = args.phases.split(",") if args.phases else list(peer_cls.phases)
    if set(phases) - set(peer_cls.phases):
        raise UserError(f"--peer {args.peer} is timed in the phases {peer_cls.phases} only")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ref = peer_cls(args.max_res, args.channels, args.latent, args.peer_dir)
    ours = Ours(
        args.max_res, args.channels, args.latent, args.seed, args.threads, args.malloc, args.amp
    )
    source = RandomSource(channels=3, seed=args.seed)
    b = args.batch
    print(
        f"peer {ref.name}" + (f" @ {ref.commit}" if ref.commit else "") + f"; channels "
        f"{args.channels}, latent {args.latent}, batch {b}, built for {args.max_res}, threads "
        f"{torch.get_num_threads()}, torch {torch.__version__}, malloc {malloc_state()}, "
        f"amp: ours {args.amp}, peer off"
    )
    for shim in ref.SHIMS:
        print(f"  peer shim: {shim}")
    print(
        f"{'res':>5} {'phase':<10} {'ours img/s':>11} {'peer img/s':>11} {'ratio':>7} "
        f"{'median':>7}  load"
    )
    rows = []
    for res in [int(r) for r in args.res.split(",")]:
        ref.prepare(res)
        for phase in phases:
            if phase == "fade" and res == 4:
                continue
            alpha = 0.5 if phase == "fade" else 1.0
            t_ours = t_ref = 0.0
            load0 = os.getloadavg()

            def run_ours(i, res=res, alpha=alpha):
                u8, _ = source.batch(res, i * b, b)
                ours.step(u8, i * b, res, alpha)

            def run_ref(i, res=res, alpha=alpha):
                u8, _ = source.batch(args.max_res if ref.full_res_reals else res, i * b, b)
                ref.step(u8, res, alpha)

            round_ratios = []
            for _ in range(args.rounds):
                ours.reset()
                ref.reset()
                dt_ours = time_steps(run_ours, args.steps, args.warmup)
                dt_ref = time_steps(run_ref, args.steps, args.warmup)
                t_ours, t_ref = t_ours + dt_ours, t_ref + dt_ref
                round_ratios.append(dt_ref / dt_ours)
            n = args.rounds * args.steps * b
            row = {
                "res": res,
                "phase": phase,
                "batch": b,
                "ours_img_per_s": n / t_ours,
                "reference_img_per_s": n / t_ref,
                "ratio": t_ref / t_ours,
                # each round's ratio and their median: a burst of load from elsewhere hits one
                # side of one round, which moves the pooled ratio but hardly the median
                "round_ratios": round_ratios,
                "ratio_median": statistics.median(round_ratios),
                "load_before": load0,
                "load_after": os.getloadavg(),
            }
            rows.append(row)
            print(
                f"{res:>5} {phase:<10} {row['ours_img_per_s']:>11.1f} "
                f"{row['reference_img_per_s']:>11.1f} {row['ratio']:>6.2f}x "
                f"{row['ratio_median']:>6.2f}x  "
                f"{load0[0]:.1f} -> {row['load_after'][0]:.1f}",
                flush=True,
            )
    if args.json:
        machine = describe()
        for row in rows:
            row.update(
                amp=args.amp, peer_amp="off", cpu_bf16=machine["cpu_bf16"], malloc=malloc_state()
            )
        atomic_write_json(
            args.json,
            {
                "rows": rows,
                "reference": ref.name,
                "peer": {"name": args.peer, "commit": ref.commit, "shims": list(ref.SHIMS)},
                "method": "ours and the peer's own step alternate --rounds times per row in one "
                "process; --steps timed steps after --warmup untimed ones each time; ratio: "
                "pooled over the rounds, ratio_median: the median of the rounds' ratios",
                "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "machine": machine,
                "code": code_version(),
            },
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
