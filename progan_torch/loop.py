"""The ProGAN training loop: schedule -> data -> step -> ticks, grids, checkpoints, resume.

Everything that defines *where* training is lives in :class:`Progress` (images shown,
the Adam-reset key, time, skipped steps), which goes into every checkpoint; the schedule
state (resolution, phase, alpha, batch, lr) is recomputed from ``nimg`` before every
minibatch. The official code recomputes it every 4 minibatches (``minibatch_repeats``);
ours is finer, which also makes a resume at any image position exact.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import torch

from gancore.errors import UserError
from gancore.grid import save_grid
from gancore.hardware import peak_rss_mb
from gancore.latents import latents_for
from gancore.rundir import RunDir
from progan_common.cli import progress_bar as make_progress_bar
from progan_common.cli import progress_text
from progan_common.config import ProGANConfig
from progan_torch.checkpoint import save_checkpoint, set_rng_state
from progan_torch.distributed import DistInfo, barrier
from progan_torch.sample import generate
from progan_torch.training import (
    Models,
    StepRunner,
    build_models,
    step_randoms,
    to_device_reals,
)


class TrainingDiverged(UserError):
    """Too many consecutive non-finite steps; the last good checkpoint is kept."""


@dataclass
class Progress:
    nimg: int = 0
    opt_key: tuple[int, int] | None = None  # schedule key of the current Adam state
    time_s: float = 0.0  # training seconds so far, summed over resumed sessions
    skipped_steps: int = 0  # non-finite steps skipped (official optimiser behaviour)
    last_phase: int | None = None  # phase index / level / alpha / start image of the last step
    last_level: int = 0
    last_alpha: float = 1.0
    last_step_nimg: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> Progress:
        p = cls(**d)
        p.opt_key = tuple(p.opt_key) if p.opt_key is not None else None
        return p


def restore(models: Models, runner: StepRunner, ckpt: dict) -> Progress:
    """Load networks, EMA, optimisers and RNG states from a checkpoint dict."""
    models.G.load_state_dict(ckpt["G"])
    models.D.load_state_dict(ckpt["D"])
    if models.G_ema is not None:
        if ckpt["G_ema"] is None:
            raise UserError(
                "the checkpoint has no EMA generator but the config asks for one (--ema)"
            )
        models.G_ema.load_state_dict(ckpt["G_ema"])
    runner.opt_g.load_state_dict(ckpt["opt_g"])
    runner.opt_d.load_state_dict(ckpt["opt_d"])
    set_rng_state(ckpt["rng"])
    return Progress.from_dict(ckpt["progress"])


def _crossed(before: int, after: int, every: int) -> bool:
    return after // every > before // every


class GridWriter:
    """Fixed-latent grids from the EMA generator (latent i = rng([seed, i]), as sample.py)."""

    def __init__(
        self, cfg: ProGANConfig, run: RunDir, models: Models, device: torch.device
    ) -> None:
        self.run, self.models, self.device = run, models, device
        self.z = latents_for(cfg.seed, range(cfg.grid_size), cfg.latent_dim)
        nc = models.G.num_classes
        self.labels = (np.arange(cfg.grid_size) % nc).astype(np.int64) if nc else None

    def write(self, name: str, level: int, alpha: float) -> None:
        images = generate(self.models.sampler, self.z, self.labels, level, alpha, 16, self.device)
        save_grid(self.run.samples / name, images)


class Prefetcher:
    """Reads the next minibatch's reals in a background thread while the current step runs.

    The next request is known exactly (the schedule is a function of ``nimg``), so the
    data order is unchanged; a mismatched guess is simply read again in the foreground.
    """

    def __init__(self, source) -> None:
        self.source = source
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="progan-prefetch")
        self.pending: tuple[tuple[int, int, int], Future] | None = None

    def get(self, res: int, start: int, count: int):
        key = (res, start, count)
        if self.pending is not None and self.pending[0] == key:
            out = self.pending[1].result()
        else:
            if self.pending is not None:  # never read the source from two threads at once
                self.pending[1].result()
            out = self.source.batch(res, start, count)
        self.pending = None
        return out

    def prefetch(self, res: int, start: int, count: int) -> None:
        self.pending = ((res, start, count), self.pool.submit(self.source.batch, res, start, count))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_rss_mb()


def train(
    cfg: ProGANConfig,
    run: RunDir,
    source,
    device: torch.device,
    *,
    dist: DistInfo | None = None,
    resume_ckpt: dict | None = None,
    progress_bar: bool = True,
    channels_last: bool | None = None,
    max_steps: int | None = None,
) -> Progress:
    """Train until ``cfg.kimg`` thousand images have been shown (or ``max_steps`` minibatches).

    ``source.batch(res, start, count)`` gives uint8 NHWC reals by stream position. Only
    rank 0 writes logs, grids and checkpoints.
    """
    dist = dist or DistInfo()
    if channels_last is None:
        # NHWC is what cuDNN's tensor cores prefer; on this CPU (oneDNN) it measured faster
        # at 4..16 and equal at 32.
        channels_last = True
    sched = cfg.schedule()
    total = int(round(cfg.kimg * 1000))
    meta = {"img_channels": source.channels, "num_classes": source.num_classes}
    models = build_models(cfg, source.channels, source.num_classes, device, channels_last)
    runner = StepRunner(models, cfg, device, dist, channels_last)
    prog = restore(models, runner, resume_ckpt) if resume_ckpt else Progress()
    grids = GridWriter(cfg, run, models, device) if dist.is_main else None
    tick_nimg = max(1, int(round(cfg.tick_kimg * 1000)))
    snap_nimg = max(1, int(round(cfg.snapshot_kimg * 1000)))

    acc: dict[str, float] = defaultdict(float)
    tick = {"steps": 0, "step_s": 0.0, "nimg": 0}
    bad_streak, steps, pending_snapshot = 0, 0, False
    session_start, time_base = time.perf_counter(), prog.time_s
    bar = make_progress_bar(total, prog.nimg, progress_bar and dist.is_main)

    def checkpoint() -> None:
        models.set_stage(prog.last_level, prog.last_alpha)
        if dist.is_main:
            save_checkpoint(run, cfg, models, runner, asdict(prog), meta)
        barrier(dist)

    def end_of_phase_grid() -> None:
        if grids is not None and prog.last_phase is not None:
            last = sched.state(prog.last_step_nimg)
            grids.write(
                f"phase-{prog.last_phase:02d}-{last.phase}-{last.res}.png",
                prog.last_level,
                prog.last_alpha,
            )

    reader = Prefetcher(source)
    try:
        while prog.nimg < total and (max_steps is None or steps < max_steps):
            st = sched.state(prog.nimg)
            if prog.last_phase is not None and st.phase_index != prog.last_phase:
                end_of_phase_grid()
            if prog.opt_key != st.optimizer_key:
                if prog.opt_key is not None and cfg.reset_optimizer:
                    runner.reset_optimizers(st.lr)
                prog.opt_key = st.optimizer_key
            runner.set_lr(st.lr)

            rows = dist.local_slice(st.batch)
            u8, labels = reader.get(st.res, prog.nimg + rows.start, rows.stop - rows.start)
            nxt = sched.state(prog.nimg + st.batch)
            nrows = dist.local_slice(nxt.batch)
            reader.prefetch(nxt.res, prog.nimg + st.batch + nrows.start, nrows.stop - nrows.start)
            reals = to_device_reals(u8, device, channels_last)
            y = None if labels is None else torch.from_numpy(np.asarray(labels)).to(device)
            z_d, z_g, u = step_randoms(cfg.seed, prog.nimg, st.batch, cfg.latent_dim)
            t0 = time.perf_counter()
            beta = cfg.ema_beta_at(prog.nimg, st.batch)
            stats = runner.train_step(reals, y, z_d, z_g, u, st.level, st.alpha, beta)
            tick["step_s"] += time.perf_counter() - t0

            before = prog.nimg
            prog.nimg += st.batch  # official: images count even when the update is skipped
            prog.last_phase, prog.last_level, prog.last_alpha = st.phase_index, st.level, st.alpha
            prog.last_step_nimg = before
            steps += 1
            if stats["d_skipped"] or stats["g_skipped"]:
                prog.skipped_steps += 1
                bad_streak += 1
                if bad_streak >= cfg.max_bad_steps:
                    raise TrainingDiverged(
                        f"training diverged: {bad_streak} consecutive non-finite steps at kimg "
                        f"{prog.nimg / 1000:.3f} ({st.phase_name}); the last good checkpoint is "
                        f"{run.latest_checkpoint() or 'none (no checkpoint was written yet)'}. "
                        "Resume from it with a lower --lr or a larger --gp-lambda."
                    )
            else:
                bad_streak = 0
                for k, v in stats.items():
                    acc[k] += v
                tick["steps"] += 1
            tick["nimg"] += st.batch
            bar.update(min(prog.nimg, total) - min(before, total))
            if tick["steps"]:
                rate = tick["nimg"] / max(tick["step_s"], 1e-9)
                text = progress_text(st, prog.nimg, stats["loss_d"], stats["loss_g"], rate)
                bar.set_postfix_str(text, refresh=False)

            done = prog.nimg >= total or (max_steps is not None and steps >= max_steps)
            if _crossed(before, prog.nimg, tick_nimg) or done:
                prog.time_s = time_base + time.perf_counter() - session_start
                n = max(tick["steps"], 1)
                rec = {
                    "kimg": prog.nimg / 1000.0,
                    "nimg": prog.nimg,
                    "res": st.res,
                    "phase": st.phase,
                    "alpha": st.alpha,
                    "lr": st.lr,
                    "batch": st.batch,
                    "img_per_s": tick["nimg"] / max(tick["step_s"], 1e-9),
                    "time_s": prog.time_s,
                    "peak_mem_mb": _peak_mem_mb(device),
                    "skipped_steps": prog.skipped_steps,
                    "world": dist.world,
                    **{
                        k: (acc[k] / n if tick["steps"] else math.nan)
                        for k in ("loss_d", "loss_g", "d_real", "d_fake", "gp", "grad_norm")
                    },
                }
                if dist.is_main:
                    run.log(rec)
                    grids.write(f"tick-{prog.nimg / 1000:08.1f}.png", st.level, st.alpha)
                acc.clear()
                tick.update(steps=0, step_s=0.0, nimg=0)
            pending_snapshot |= _crossed(before, prog.nimg, snap_nimg) or done
            # Never snapshot inside a run of skipped steps: the last good checkpoint must
            # survive pruning if the run goes on to diverge.
            if pending_snapshot and bad_streak == 0:
                prog.time_s = time_base + time.perf_counter() - session_start
                checkpoint()
                pending_snapshot = False
    finally:
        bar.close()
        reader.close()

    if prog.nimg >= total:
        end_of_phase_grid()
        if grids is not None:
            grids.write("final.png", prog.last_level, prog.last_alpha)
    return prog
