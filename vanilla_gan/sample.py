"""Export generated images from a run: ``samples.npz`` with uint8 NHWC images and seeds.

    python -m vanilla_gan.sample --run RUN_DIR --n 10000 --seed 0 --out RUN_DIR/samples.npz

Image i uses the latent ``numpy.random.default_rng([S, i]).standard_normal(z_dim)``
(float32; ``.uniform(-1, 1, z_dim)`` for a run trained with ``--latent-dist uniform``) for
``--seed S``, so the same seed gives the same images at any N, and
a torch run and its converted Keras twin give the same images. ``seeds`` in the
file stores ``S * 10**6 + i`` (decode: ``divmod(seed_id, 10**6)``). The EMA
generator is used when the run has one; BatchNorm as the run's ``--sample-bn`` says (running
statistics by default, or each sampling batch's own with ``batch``).
Only the run's framework is imported.
"""

from __future__ import annotations

import argparse
import os
import sys

if __package__ in (None, ""):  # `python sample.py` from inside vanilla_gan/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from gancore.errors import UserError, run_cli
from gancore.helptext import HelpFormatter
from gancore.io import output_file
from gancore.samples import save_samples

SEED_BASE = 10**6


def seed_ids(seed: int, n: int) -> np.ndarray:
    if n >= SEED_BASE:
        raise UserError(f"--n must be below {SEED_BASE} (seed ids are seed*{SEED_BASE}+i)")
    return np.int64(seed) * SEED_BASE + np.arange(n, dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m vanilla_gan.sample", description=__doc__, formatter_class=HelpFormatter
    )
    ap.add_argument(
        "--run", required=True, metavar="RUN_DIR", help="run directory written by vanilla_gan.train"
    )
    ap.add_argument(
        "--checkpoint",
        default=None,
        help="a checkpoint file of that run (default: the newest, named by "
        "checkpoints/latest.json)",
    )
    ap.add_argument("--n", type=int, required=True, help="number of images")
    ap.add_argument(
        "--seed", type=int, default=0, help="latent seed S: image i uses rng([S, i]) (default: 0)"
    )
    ap.add_argument("--out", required=True, help="the .npz to write, e.g. RUN_DIR/samples.npz")
    ap.add_argument("--batch", type=int, default=256, help="generator batch size (default: 256)")
    ap.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="torch device; TensorFlow places ops itself (default: auto)",
    )
    ap.add_argument("--dry-run", action="store_true", help="print what would be done and exit")
    args = ap.parse_args(argv)
    output_file(args.out)
    if args.n < 1 or args.batch < 1 or args.seed < 0:
        raise UserError("--n and --batch must be positive and --seed non-negative")

    from gancore.latents import latents_for
    from vanilla_gan.rundata import read_run

    cfg, run, _ = read_run(args.run)
    if args.dry_run:
        print(
            f"would sample {args.n} images (seed {args.seed}) from {cfg.framework} "
            f"{cfg.model} run {run.path} -> {args.out}"
        )
        return 0
    z = latents_for(args.seed, range(args.n), cfg.z_dim, cfg.latent_dist)
    if cfg.framework == "torch":
        from vanilla_gan.torch_training import generate, load_for_inference

        cfg, G, _, _, ckpt = load_for_inference(args.run, args.checkpoint, args.device)
        images = generate(G, z, next(G.parameters()).device, args.batch, cfg.sample_bn)
    else:
        from vanilla_gan.tf_training import generate, load_for_inference

        cfg, G, _, ckpt = load_for_inference(args.run, args.checkpoint)
        images = generate(G, z, args.batch, cfg.sample_bn)
    meta = {
        "model": cfg.model,
        "framework": cfg.framework,
        "dataset": cfg.dataset,
        "res": cfg.res,
        "checkpoint": str(ckpt),
        "seed": args.seed,
        "ema": cfg.ema_beta > 0,
        "seed_ids": f"seed*{SEED_BASE}+i",
        "latent": "numpy default_rng([seed, i]).standard_normal(z_dim) float32"
        if cfg.latent_dist == "normal"
        else "numpy default_rng([seed, i]).uniform(-1, 1, z_dim) float32",
    }
    save_samples(args.out, images, seed_ids(args.seed, args.n), meta)
    print(f"wrote {args.n} images {images.shape[1:]} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
