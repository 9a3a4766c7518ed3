"""Same-session speed ratio against a public PyTorch ProGAN (``pro-gan-pth``, akanimax).

::

    pip install --no-deps --target /tmp/refpkg/site pro-gan-pth==3.4
    PYTHONPATH=/tmp/refpkg/site python -m progan_torch.bench_reference --res 4,8,16,32 --steps 8

The comparison is with the best-known public PyTorch ProGAN at 128 channels everywhere,
latent 128, batch 16, WGAN-GP. Absolute figures depend on the machine and on what else runs
on it, so this script times that package's own training step
(``ProGAN.optimize_discriminator``, its EMA update, ``ProGAN.optimize_generator``, one D and
one G step per minibatch: ``batch_repeats=1``) and ours
(``progan_torch.training.ProGANTrainer.step``) on the same random data, interleaved row by
row in one process, and prints both with their ratio.

The package is not a dependency of this project and is never installed by the Makefile:
it pins torch 1.10 in its requirements, so install it without dependencies into a
separate folder as above. Nothing from it is imported unless this script runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from gancore.errors import UserError, run_cli
from gancore.hardware import describe
from gancore.helptext import HelpFormatter
from gancore.io import atomic_write_json


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
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    return p


def import_reference():
    # The package imports torch.utils.tensorboard, which loads TensorFlow when it is
    # installed; TF and torch in one process abort with an LLVM option clash here, and a
    # torch benchmark has no use for TF, so make ``import tensorflow`` fail (tensorboard
    # then uses its own stub).
    sys.modules.setdefault("tensorflow", None)
    try:
        from pro_gan_pytorch import gan, networks
    except ImportError as exc:  # pragma: no cover - depends on the user's environment
        raise UserError(
            f"the reference package pro-gan-pth is not importable ({exc}).\n"
            "Install it without its pinned dependencies into a separate folder and put that on "
            "PYTHONPATH:\n  pip install --no-deps --target /tmp/refpkg/site pro-gan-pth==3.4\n"
            "  PYTHONPATH=/tmp/refpkg/site python -m progan_torch.bench_reference"
        ) from exc
    return gan, networks


class Reference:
    """pro-gan-pth's networks and per-step functions at a fixed width."""

    def __init__(self, max_res: int, channels: int, latent: int):
        gan, networks = import_reference()
        from pro_gan_pytorch import custom_layers
        from pro_gan_pytorch.custom_layers import update_average

        # Compatibility shim, no change to the computation: the package calls
        # ConvTranspose2d._output_padding with torch 1.10's signature; torch 2.x added a
        # required num_spatial_dims argument.
        base = torch.nn.ConvTranspose2d._output_padding

        def output_padding(
            self, inp, size, stride, padding, kernel, num_spatial_dims=2, dilation=None
        ):
            return base(self, inp, size, stride, padding, kernel, num_spatial_dims, dilation)

        custom_layers.EqualizedConvTranspose2d._output_padding = output_padding
        from pro_gan_pytorch.losses import WganGP

        # The package sizes stages with a module-level nf(stage); the compared
        # configuration is the same width everywhere.
        networks.nf = lambda stage, **_: channels
        depth = max_res.bit_length() - 1
        g = networks.Generator(depth=depth, num_channels=3, latent_size=latent)
        d = networks.Discriminator(depth=depth, num_channels=3, latent_size=latent)
        self.model = gan.ProGAN(g, d, device=torch.device("cpu"), use_ema=True)
        self.update_average = update_average
        self.loss = WganGP()
        self.latent = latent
        self.reset()

    def reset(self):
        # The package passes betas=(0, 0.99), which torch >= 2.x rejects (mixed int/float).
        adam = dict(lr=0.001, betas=(0.0, 0.99), eps=1e-8)
        self.g_opt = torch.optim.Adam(self.model.gen.parameters(), **adam)
        self.d_opt = torch.optim.Adam(self.model.dis.parameters(), **adam)

    def step(self, reals_full: torch.Tensor, z: torch.Tensor, res: int, alpha: float):
        depth = res.bit_length() - 1
        m = self.model
        m.optimize_discriminator(self.loss, self.d_opt, z, reals_full, depth, alpha)
        self.update_average(m.gen_shadow, m.gen, beta=m.ema_beta)
        m.optimize_generator(self.loss, self.g_opt, z, reals_full, depth, alpha)


class Ours:
    def __init__(self, max_res: int, channels: int, latent: int, seed: int):
        from gancore.config import build_config
        from progan_common.config import PRESETS, ProGANConfig
        from progan_torch.training import ProGANTrainer

        overrides = {
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
    from gancore.latents import RandomSource

    torch.manual_seed(args.seed)
    ref = Reference(args.max_res, args.channels, args.latent)
    ours = Ours(args.max_res, args.channels, args.latent, args.seed)
    source = RandomSource(channels=3, seed=args.seed)
    b = args.batch
    print(
        f"channels {args.channels}, latent {args.latent}, batch {b}, built for {args.max_res}, "
        f"threads {torch.get_num_threads()}, torch {torch.__version__}"
    )
    print(f"{'res':>5} {'phase':<10} {'ours img/s':>11} {'pro-gan-pth':>12} {'ratio':>7}")
    rows = []
    for res in [int(r) for r in args.res.split(",")]:
        for phase in ("stabilize", "fade"):
            if phase == "fade" and res == 4:
                continue
            alpha = 0.5 if phase == "fade" else 1.0
            t_ours = t_ref = 0.0

            def run_ours(i, res=res, alpha=alpha):
                u8, _ = source.batch(res, i * b, b)
                ours.step(u8, i * b, res, alpha)

            def run_ref(i, res=res, alpha=alpha):
                # pro-gan-pth takes full-resolution reals in [-1, 1] and downsamples them itself.
                u8, _ = source.batch(args.max_res, i * b, b)
                # NCHW-contiguous, as its own data loader gives (its GP uses .view on the grads).
                x = torch.from_numpy(u8).permute(0, 3, 1, 2).contiguous().float() / 127.5 - 1.0
                ref.step(x, torch.randn(b, args.latent), res, alpha)

            for _ in range(args.rounds):
                ours.reset()
                ref.reset()
                t_ours += time_steps(run_ours, args.steps, args.warmup)
                t_ref += time_steps(run_ref, args.steps, args.warmup)
            n = args.rounds * args.steps * b
            row = {
                "res": res,
                "phase": phase,
                "batch": b,
                "ours_img_per_s": n / t_ours,
                "reference_img_per_s": n / t_ref,
                "ratio": t_ref / t_ours,
            }
            rows.append(row)
            print(
                f"{res:>5} {phase:<10} {row['ours_img_per_s']:>11.1f} "
                f"{row['reference_img_per_s']:>12.1f} {row['ratio']:>6.2f}x",
                flush=True,
            )
    if args.json:
        atomic_write_json(
            args.json,
            {
                "rows": rows,
                "reference": "pro-gan-pth 3.4 (batch_repeats=1)",
                "config": vars(args),
                "machine": describe(),
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
