"""Export samples (``samples.npz``) or a latent-interpolation grid from a progan_tf checkpoint.

::

    python -m progan_tf.sample --run RUN_DIR --n 10000 --seed 0 --out samples.npz
    python -m progan_tf.sample --run RUN_DIR --interpolate 9 --n 6 --seed 1 --out interp.npz

Same flags, latents and output as ``progan_torch.sample``: the EMA generator (G when
the run had --no-ema) at the checkpoint's level and alpha; image ``i`` of ``--seed S``
uses ``np.random.default_rng([S, i]).standard_normal(latent_dim)`` cast to float32, so
any N and either framework reproduce it; ``seeds`` stores ``S * 10**6 + i``.
Conditional models get label ``i % num_classes``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python sample.py` from inside progan_tf/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from gancore.config import config_from_dict  # noqa: E402
from gancore.errors import UserError, run_cli  # noqa: E402
from gancore.grid import save_grid, to_uint8  # noqa: E402
from gancore.latents import (  # noqa: E402, F401 (latents_for re-exported)
    SEED_STRIDE,
    export_latents,
    interpolation_latents,
    latents_for,
)
from gancore.rundir import RunDir  # noqa: E402
from gancore.samples import save_samples  # noqa: E402
from progan_common.cli import sample_parser  # noqa: E402
from progan_common.config import ProGANConfig  # noqa: E402


def generate(
    G,
    latents: np.ndarray,
    labels: np.ndarray | None = None,
    level: int | None = None,
    alpha: float | None = None,
    batch: int = 64,
) -> np.ndarray:
    """uint8 NHWC images from ``G`` at ``level``/``alpha`` (default: G's own variables).

    ``labels`` are integer class ids (one-hot encoded here, as G expects).
    """
    import tensorflow as tf

    level = int(G.level.numpy()) if level is None else int(level)
    if alpha is not None:
        G.alpha.assign(float(alpha))
    fading = level > 0 and float(G.alpha.numpy()) < 1.0

    def run(z, y):
        return tf.cast(G(z, y, level=level, fading=fading), tf.float32)

    if len(latents) > batch:  # many batches (exports): trace once; a grid runs eagerly
        run = tf.function(run)

    out = []
    for s in range(0, len(latents), batch):
        z = tf.convert_to_tensor(latents[s : s + batch])
        y = None
        if labels is not None:
            y = tf.one_hot(labels[s : s + batch], G.num_classes, dtype=tf.float32)
        out.append(to_uint8(run(z, y).numpy()))
    return np.concatenate(out)


def load_sampler(run_dir: str, checkpoint: str | None):
    """(generator for sampling, config, checkpoint meta) from a run directory."""
    from progan_tf.checkpoint import load_checkpoint, resolve_checkpoint
    from progan_tf.networks import Generator

    run = RunDir(run_dir)
    data = run.read_config()
    cfg = config_from_dict(ProGANConfig, data.get("progan", data))
    path = resolve_checkpoint(run, checkpoint)
    meta = _read_meta(path)
    holder = _GeneratorHolder(cfg, meta["img_channels"], meta["num_classes"], Generator)
    load_checkpoint(path, holder, generator_only=True)
    return holder.G_ema if holder.G_ema is not None else holder.G, cfg, meta


class _GeneratorHolder:
    """Just the G and G_ema a checkpoint restore needs (no D, no optimisers)."""

    def __init__(self, cfg: ProGANConfig, channels: int, classes: int, gen_cls) -> None:
        self.G = gen_cls(cfg, channels, classes, name="G")
        self.G_ema = gen_cls(cfg, channels, classes, name="G_ema") if cfg.ema else None


def _read_meta(path: Path) -> dict:
    from gancore.io import read_json

    p = Path(path) / "meta.json"
    if not p.exists():
        raise UserError(f"{path} has no meta.json; it is not a complete progan_tf checkpoint.")
    return read_json(p)


def build_parser() -> argparse.ArgumentParser:
    return sample_parser(
        "python -m progan_tf.sample",
        __doc__,
        "a specific checkpoint directory instead of the latest",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.n < 1 or args.batch < 1:
        raise UserError("--n and --batch must be positive")
    from progan_tf.train import select_device

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
    images = generate(G, z, labels, level, alpha, args.batch)
    save_samples(args.out, images, args.seed * SEED_STRIDE + ids, meta)
    if args.interpolate:
        save_grid(Path(args.out).with_suffix(".png"), images, ncol=args.interpolate)
    print(f"wrote {len(images)} images ({images.shape[1]}x{images.shape[2]}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
