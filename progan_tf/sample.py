"""Export samples (``samples.npz``) or a latent-interpolation grid from a progan_tf checkpoint.

::

    python -m progan_tf.sample --run RUN_DIR --n 10000 --seed 0 --out RUN_DIR/samples.npz
    python -m progan_tf.sample --run RUN_DIR --interpolate 9 --n 6 --seed 1 --out RUN_DIR/interp.npz

Same flags, latents and output as ``progan_torch.sample``: the EMA generator (G when
the run had --no-ema) at the checkpoint's level and alpha; image ``i`` of ``--seed S``
uses ``np.random.default_rng([S, i]).standard_normal(latent_dim)`` cast to float32, so
any N and either framework reproduce it; ``seeds`` stores ``S * 10**6 + i``.
Conditional models get label ``i % num_classes``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python sample.py` from inside progan_tf/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from gancore.config import config_from_dict
from gancore.errors import UserError, run_cli
from gancore.grid import save_grid
from gancore.io import output_file
from gancore.latents import SEED_STRIDE, export_latents
from gancore.samples import save_samples
from progan_common.cli import sample_parser
from progan_common.config import ProGANConfig


def load_sampler(run_dir: str, checkpoint: str | None):
    """(generator for sampling, config, checkpoint meta) from a run directory."""
    from gancore.train.session import checkpoint_for_sampling, read_run
    from progan_tf.training import ProGANTrainer, read_meta

    _, config = read_run(run_dir, ("progan_tf.train",))
    cfg = config_from_dict(ProGANConfig, config)
    path = checkpoint_for_sampling(run_dir, checkpoint, ("progan_tf.train",))
    meta = read_meta(path)
    holder = ProGANTrainer(cfg, meta["img_channels"], meta["num_classes"])
    holder.load(path, generator_only=True)
    return holder.G_ema if holder.G_ema is not None else holder.G, cfg, meta


def build_parser() -> argparse.ArgumentParser:
    return sample_parser(
        "python -m progan_tf.sample",
        __doc__,
        "a specific checkpoint directory instead of the latest",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output_file(args.out)
    if args.n < 1 or args.batch < 1:
        raise UserError("--n and --batch must be positive")
    from gancore.tf_utils import select_device

    select_device(args.device)
    G, cfg, ckpt_meta = load_sampler(args.run, args.checkpoint)
    level, alpha = int(G.level.numpy()), float(G.alpha.numpy())
    meta = {
        "model": "progan",
        "framework": "tf",
        "seed": args.seed,
        "level": level,
        "alpha": alpha,
        "res": 4 * 2**level,
        "kimg": ckpt_meta.get("kimg"),
        "ema": cfg.ema,
        "seeds": "S*10**6+i, latent rng([S, i])",
    }
    z, ids, extra = export_latents(args.seed, args.n, args.interpolate, cfg.latent_dim)
    meta.update(extra)
    labels = (ids % G.num_classes).astype(np.int64) if G.num_classes else None
    from progan_tf.training import generate

    images = generate(G, z, labels, level, alpha, args.batch)
    save_samples(args.out, images, args.seed * SEED_STRIDE + ids, meta)
    print(f"wrote {len(images)} images ({images.shape[1]}x{images.shape[2]}) to {args.out}")
    if args.interpolate:
        grid = Path(args.out).with_suffix(".png")
        save_grid(grid, images, ncol=args.interpolate)
        print(f"wrote the interpolation grid ({args.n} rows of {args.interpolate}) to {grid}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
