"""Train ProGAN with TensorFlow 2 / Keras 3: ``python -m progan_tf.train --help``.

::

    python -m progan_tf.train --preset quick --dataset stacked-digits --kimg 40 --out runs/pg-tf
    python -m progan_tf.train --resume runs/pg-tf --kimg 80        # continue (mid-fade exact)
    python -m progan_tf.train --preset cifar10 --dry-run           # print the resolved config

Same flags, run directory and log keys as ``progan_torch.train``. The loop: the shared
schedule (``progan_common.schedule``) is evaluated before *every* minibatch (official code:
every 4th; ours is finer, so alpha rises smoothly and phases start on the exact image),
reals come from the position-indexed stream at image ``nimg``, latents from the key
``(seed, nimg)``. A tick logs one ``log.jsonl`` line and writes a grid; every
``--snapshot-kimg`` a checkpoint; the end of every phase writes
``samples/phase-<i>-<phase>-<res>.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python train.py` from inside progan_tf/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from gancore.config import (  # noqa: E402
    add_dataclass_arguments,
    config_to_dict,
    format_config,
)
from gancore.errors import UserError, run_cli  # noqa: E402
from gancore.grid import save_grid  # noqa: E402
from gancore.hardware import describe, peak_rss_mb  # noqa: E402
from gancore.rundir import RunDir  # noqa: E402
from progan_common.cli import (  # noqa: E402, F401 (RESUME_OVERRIDABLE re-exported)
    RESUME_OVERRIDABLE,
    phase_table,
    progress_text,
    resolve_train_config,
)
from progan_common.cli import progress_bar as make_progress_bar  # noqa: E402
from progan_common.config import PRESETS, ProGANConfig  # noqa: E402


def select_device(device: str) -> None:
    """Make only the requested device visible; must run before TF touches a device."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu":
        tf.config.set_visible_devices([], "GPU")
    elif device.startswith("cuda"):
        if not gpus:
            raise UserError(
                f"--device {device} asked for a GPU but TensorFlow sees none; use --device cpu."
            )
        idx = int(device.split(":")[1]) if ":" in device else 0
        if idx >= len(gpus):
            raise UserError(f"--device {device}: only {len(gpus)} GPU(s) visible.")
        tf.config.set_visible_devices([gpus[idx]], "GPU")
    elif device != "auto":
        raise UserError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")


def make_strategy(name: str):
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return None


def grid_images(trainer, cfg: ProGANConfig) -> np.ndarray:
    """The fixed grid: latent i = rng([seed, i]) (as every sample export), EMA generator."""
    from gancore.latents import latents_for
    from progan_tf.sample import generate

    G = trainer.G_ema if trainer.G_ema is not None else trainer.G
    ids = np.arange(cfg.grid_size)
    labels = (ids % trainer.num_classes).astype(np.int64) if trainer.num_classes else None
    return generate(G, latents_for(cfg.seed, ids, cfg.latent_dim), labels)


def peak_mem_mb() -> float:
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return peak_rss_mb()


def train(
    cfg: ProGANConfig,
    run: RunDir,
    source,
    resume: bool = False,
    strategy=None,
    max_steps: int | None = None,
    progress_bar: bool = False,
) -> dict:
    """The training loop; ``source.batch(res, start, count)`` gives uint8 NHWC reals.

    ``max_steps`` stops early (bench/tests) without writing the final checkpoint.
    """
    from progan_tf.checkpoint import load_checkpoint, save_checkpoint
    from progan_tf.training import Trainer, one_hot, step_randoms, to_float_images

    sched = cfg.schedule()
    total = int(round(cfg.kimg * 1000))
    trainer = Trainer(cfg, source.channels, source.num_classes, strategy)
    meta_base = {"img_channels": source.channels, "num_classes": source.num_classes}
    time_s, skipped, bad_run = 0.0, 0, 0
    if resume:
        ckpt = run.latest_checkpoint()
        if ckpt is None:
            raise UserError(f"{run.path} has no committed checkpoint to resume from.")
        meta = load_checkpoint(ckpt, trainer)
        time_s, skipped = float(meta.get("time_s", 0.0)), int(meta.get("skipped_steps", 0))
        run.truncate_log(meta["kimg"])
    nimg = int(trainer.nimg.numpy())
    run.set_status("running")
    tick_n, snap_n = int(cfg.tick_kimg * 1000), int(cfg.snapshot_kimg * 1000)
    tick_step_s, tick_img, losses, steps = 0.0, 0, [], 0
    session_start, time_base = time.perf_counter(), time_s
    last_save = nimg if resume else -1

    def checkpoint() -> None:
        nonlocal last_save
        save_checkpoint(
            run,
            trainer,
            nimg / 1000.0,
            {**meta_base, "time_s": time_s, "skipped_steps": skipped, "nimg": nimg},
            keep=cfg.keep_checkpoints,
        )
        last_save = nimg

    bar = make_progress_bar(total, nimg, progress_bar)
    try:
        while nimg < total and (max_steps is None or steps < max_steps):
            state = sched.state(nimg)
            trainer.set_schedule_state(state)
            images, labels = source.batch(state.res, nimg, state.batch)
            z_d, z_g, u = step_randoms(cfg, nimg, state.batch)
            t0 = time.time()
            out = trainer.train_step(
                to_float_images(images),
                one_hot(labels, source.num_classes),
                z_d,
                z_g,
                u,
                state.level,
                ema_beta=cfg.ema_beta_at(nimg, state.batch),
            )
            tick_step_s += time.time() - t0  # the step only (train_step syncs: it returns floats)
            # time_s: wall-clock seconds of training (grids, data, checkpoints included), summed
            # over resumed sessions -- the same definition as progan_torch.
            time_s = time_base + time.perf_counter() - session_start
            steps += 1
            prev, nimg = nimg, nimg + state.batch
            trainer.nimg.assign(nimg)
            tick_img += state.batch
            losses.append((out["loss_d"], out["loss_g"]))
            bar.update(min(nimg, total) - min(prev, total))
            rate = tick_img / max(tick_step_s, 1e-9)
            bar.set_postfix_str(
                progress_text(state, nimg, out["loss_d"], out["loss_g"], rate), refresh=False
            )
            bad = out["bad_d"] > 0 or out["bad_g"] > 0
            skipped += int(bad)
            bad_run = bad_run + 1 if bad else 0
            if bad_run >= cfg.max_bad_steps:
                raise UserError(
                    f"{bad_run} consecutive minibatches had non-finite losses or gradients at "
                    f"kimg {nimg / 1000:.1f}; stopping (the last good checkpoint is kept). Lower the "
                    "learning rate (--lr), check the data, or try --amp off."
                )
            nxt = sched.state(nimg)
            if nxt.phase_index != state.phase_index or nimg >= total:
                save_grid(
                    run.samples / f"phase-{state.phase_index:02d}-{state.phase}-{state.res}.png",
                    grid_images(trainer, cfg),
                )
            if nimg // tick_n > prev // tick_n or nimg >= total:
                ld, lg = np.mean(losses, axis=0)
                run.log(
                    {
                        "kimg": nimg / 1000.0,
                        "nimg": nimg,
                        "res": state.res,
                        "phase": state.phase,
                        "alpha": state.alpha,
                        "level": state.level,
                        "batch": state.batch,
                        "lr": state.lr,
                        "loss_d": float(ld),
                        "loss_g": float(lg),
                        "img_per_s": tick_img / max(tick_step_s, 1e-9),  # as progan_torch
                        "time_s": time_s,
                        "peak_mem_mb": peak_mem_mb(),
                        "skipped_steps": skipped,
                        **{k: out[k] for k in ("d_real", "d_fake", "gp", "grad_norm")},
                    }
                )
                save_grid(run.samples / f"tick-{nimg / 1000:08.1f}.png", grid_images(trainer, cfg))
                tick_step_s, tick_img, losses = 0.0, 0, []
            if nimg // snap_n > prev // snap_n:
                checkpoint()
    finally:
        bar.close()
    if nimg >= total:
        if last_save != nimg:
            checkpoint()
        save_grid(run.samples / "final.png", grid_images(trainer, cfg))
    return {"nimg": nimg, "time_s": time_s, "skipped_steps": skipped, "trainer": trainer}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m progan_tf.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="named setting (values the flags below override)",
    )
    p.add_argument("--out", default=None, help="run directory to create")
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its latest checkpoint (flags override, e.g. --kimg)",
    )
    p.add_argument("--overwrite", action="store_true", help="reuse --out even if it holds a run")
    p.add_argument(
        "--strategy",
        default="auto",
        choices=["auto", "one", "mirrored"],
        help="tf.distribute: auto = MirroredStrategy when >1 GPU is visible",
    )
    p.add_argument(
        "--random-data",
        action="store_true",
        help="train on deterministic random images (smoke tests, no data set needed)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (logs still written)"
    )
    add_dataclass_arguments(p, ProGANConfig, group_title="ProGAN config")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = resolve_train_config(args)
    if args.resume:
        run = RunDir(args.resume)
        args.random_data = args.random_data or bool(run.read_config().get("random_data"))
    else:
        if not args.out and not args.dry_run:
            raise UserError("--out RUN_DIR is required (or --resume RUN_DIR)")
        run = RunDir(args.out) if args.out else None
    if args.dry_run:
        print(format_config(cfg))
        print(phase_table(cfg))
        return 0
    select_device(cfg.device)
    strategy = make_strategy(args.strategy)
    if args.random_data:
        from progan_tf.training import RandomSource

        source = RandomSource(channels=3, seed=cfg.seed)
    else:
        from datasets import prepare
        from progan_tf.training import DatasetSource

        ds = prepare(
            cfg.dataset,
            data_root=cfg.data_root,
            cache_dir=cfg.cache_dir,
            max_res=cfg.max_res,
            split=cfg.split,
        )
        source = DatasetSource(ds, cfg.seed, cfg.mirror)
        if not cfg.conditional:
            source.num_classes = 0
        elif source.num_classes == 0:
            raise UserError(f"--conditional needs labels, but data set {cfg.dataset!r} has none.")
    if not args.resume:
        run.create(
            {
                **config_to_dict(cfg),
                "model": "progan",
                "framework": "tf",
                "strategy": args.strategy,
                "random_data": args.random_data,
                "hardware": describe(),
            },
            overwrite=args.overwrite,
        )
    try:
        result = train(
            cfg,
            run,
            source,
            resume=bool(args.resume),
            strategy=strategy,
            progress_bar=not args.no_progress,
        )
    except BaseException as exc:
        run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    run.set_status(
        "finished",
        kimg=result["nimg"] / 1000.0,
        time_s=result["time_s"],
        skipped_steps=result["skipped_steps"],
    )
    print(
        f"finished {result['nimg'] / 1000:.3f} kimg in {result['time_s']:.1f} s of training; "
        f"run directory {run.path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
