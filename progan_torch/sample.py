"""Export samples (``samples.npz``) or a latent-interpolation grid from a ProGAN checkpoint.

::

    python -m progan_torch.sample --run RUN_DIR --n 10000 --seed 0 --out RUN_DIR/samples.npz
    python -m progan_torch.sample --run RUN_DIR --interpolate 9 --n 6 --seed 1 --out RUN_DIR/interp.npz

Uses the EMA generator (G when the run had --no-ema) at the checkpoint's level and
alpha. Image ``i`` of ``--seed S`` uses the latent
``np.random.default_rng([S, i]).standard_normal(latent_dim)`` (cast to float32), the same
in ``progan_tf``, so any N and either framework reproduce it; ``seeds`` stores
``S * 10**6 + i``. Conditional models get label ``i % num_classes``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # `python sample.py` from inside progan_torch/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from gancore.errors import UserError, run_cli
from gancore.grid import save_grid
from gancore.io import output_file
from gancore.latents import (
    SEED_STRIDE,
    export_latents,
)
from gancore.samples import save_samples
from progan_common.cli import sample_parser

if TYPE_CHECKING:
    import torch

    from progan_torch.networks import Generator

# torch and the networks are imported where they are used, so that --help answers at once.


def load_sampler(run: str, checkpoint: str | None, device: torch.device) -> tuple[Generator, dict]:
    from gancore.train.session import checkpoint_for_sampling
    from progan_torch.checkpoint import config_of, load_checkpoint
    from progan_torch.networks import Generator

    ckpt = load_checkpoint(
        checkpoint_for_sampling(run, checkpoint, ("progan_torch.train",)), device
    )
    cfg = config_of(ckpt)
    G = Generator(cfg, ckpt["meta"]["img_channels"], ckpt["meta"]["num_classes"])
    G.load_state_dict(ckpt["G_ema"] if ckpt["G_ema"] is not None else ckpt["G"])
    return G.to(device).eval(), ckpt


def build_parser() -> argparse.ArgumentParser:
    return sample_parser(
        "python -m progan_torch.sample", __doc__, "a specific checkpoint file instead of the latest"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output_file(args.out)
    if args.n < 1 or args.batch < 1:
        raise UserError("--n and --batch must be positive")
    from gancore.torch_utils import resolve_device
    from progan_torch.training import generate

    device = resolve_device(args.device)
    G, ckpt = load_sampler(args.run, args.checkpoint, device)
    level, alpha = int(G.level), float(G.alpha)
    meta = {
        "model": "progan",
        "framework": "torch",
        "seed": args.seed,
        "level": level,
        "alpha": alpha,
        "res": 4 * 2**level,
        "kimg": ckpt["meta"]["nimg"] / 1000.0,
        "ema": ckpt["G_ema"] is not None,
        "seeds": "S*10**6+i, latent rng([S, i])",
    }
    z, ids, extra = export_latents(args.seed, args.n, args.interpolate, G.latent_dim)
    meta.update(extra)
    labels = (ids % G.num_classes).astype(np.int64) if G.num_classes else None
    images = generate(G, z, labels, level, alpha, args.batch, device)
    save_samples(args.out, images, args.seed * SEED_STRIDE + ids, meta)
    print(f"wrote {len(images)} images ({images.shape[1]}x{images.shape[2]}) to {args.out}")
    if args.interpolate:
        grid = Path(args.out).with_suffix(".png")
        save_grid(grid, images, ncol=args.interpolate)
        print(f"wrote the interpolation grid ({args.n} rows of {args.interpolate}) to {grid}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
