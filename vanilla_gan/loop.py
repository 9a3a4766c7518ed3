"""The framework-neutral training loop: schedule, logging, snapshots, resume, guards.

A framework trainer (``torch_loop.TorchTrainer`` / ``tf_loop.TFTrainer``) supplies
only the numerics::

    trainer.step(reals_u8, z, poison)  # one G update after n_dis D updates
    trainer.pop_losses() -> (loss_d, loss_g)  # means since the last call (one sync)
    trainer.generate(z) -> uint8 NHWC    # EMA generator when enabled, eval mode
    trainer.save(path, meta) / trainer.load(path) -> meta
    trainer.ext, trainer.peak_mem_mb()

Everything that must be identical across frameworks lives here: which images
and latents each step sees, when ticks and snapshots happen, what is logged,
how a NaN or Ctrl-C is handled.

Determinism and resume: step ``t`` consumes real images ``t*n_dis*batch ..`` of
the data stream (``datasets.stream.ImageStream``, indexed by image position) and
the latents ``default_rng([seed, 1, t])``. Both are pure functions of (seed, t), so
a resumed run needs only ``t`` (and the networks / optimiser state) to continue
exactly where it stopped, and both frameworks see the same data and latents.
``kimg`` counts real images shown to D.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from gancore.errors import UserError
from gancore.grid import save_grid
from gancore.latents import latents_for
from gancore.rundir import RunDir


class ImageSource(Protocol):
    def batch(self, res: int, start: int, count: int) -> tuple[np.ndarray, Any]: ...


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


def latents(seed: int, indices: np.ndarray | range, z_dim: int) -> np.ndarray:
    """Per-image latents: image i of a ``--seed S`` export uses ``default_rng([S, i])``
    (the project-wide convention in ``gancore.latents``)."""
    return latents_for(seed, indices, z_dim)


def step_latents(seed: int, step: int, n_dis: int, batch: int, z_dim: int) -> np.ndarray:
    """Training latents of step ``step``: (n_dis, batch, z_dim), a pure function of (seed, step)."""
    rng = np.random.default_rng([int(seed), 1, int(step)])
    return rng.standard_normal((n_dis, batch, z_dim), dtype=np.float32)


class _Interrupt:
    """Turn SIGINT into a flag checked at step boundaries, so the checkpoint is consistent."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> _Interrupt:
        with contextlib.suppress(ValueError):  # not the main thread: keep default behaviour
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # second Ctrl-C: stop right now
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def run_training(
    cfg, run: RunDir, trainer, source: ImageSource, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train until ``cfg.kimg``; returns the final state dict (nimg, step, time_s)."""
    per_step = cfg.batch * cfg.n_dis
    total_nimg = int(round(cfg.kimg * 1000))
    tick_nimg = max(1, int(round(cfg.tick_kimg * 1000)))
    snap_nimg = max(1, int(round(cfg.snapshot_kimg * 1000)))
    nan_nimg = None if cfg.debug_nan_at_kimg is None else int(round(cfg.debug_nan_at_kimg * 1000))
    grid_z = latents(cfg.seed, range(cfg.grid_size), cfg.z_dim)

    state = {"nimg": 0, "step": 0, "time_s": 0.0}
    if resume:
        ckpt = run.latest_checkpoint()
        if ckpt is None:
            raise UserError(
                f"{run.path} has no checkpoint to resume from (checkpoints/latest.json "
                "missing or its file is gone); start a new run instead."
            )
        state.update(trainer.load(ckpt))
        run.truncate_log(state["nimg"] / 1000.0)
        print(f"resumed from {ckpt.name} at kimg {state['nimg'] / 1000:.3f}")

    def snapshot(final: bool = False) -> None:
        kimg = state["nimg"] / 1000.0
        path = run.checkpoint_path(kimg, trainer.ext)
        trainer.save(path, dict(state))
        run.commit_checkpoint(path, kimg, keep=cfg.keep_checkpoints)
        images = trainer.generate(grid_z)
        save_grid(run.samples / f"grid-{kimg:010.3f}.png", images)
        if final:
            save_grid(run.samples / "final.png", images)

    run.set_status("running")
    bar = tqdm(
        total=total_nimg / 1000.0,
        initial=state["nimg"] / 1000.0,
        unit="kimg",
        disable=not progress,
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} kimg [{elapsed}<{remaining}{postfix}]",
    )
    tick_start_nimg, tick_start_time = state["nimg"], time.perf_counter()
    next_tick = (state["nimg"] // tick_nimg + 1) * tick_nimg
    next_snap = (state["nimg"] // snap_nimg + 1) * snap_nimg
    try:
        with _Interrupt() as interrupt:
            while state["nimg"] < total_nimg:
                t, nimg = state["step"], state["nimg"]
                reals = source.batch(cfg.res, nimg, per_step)[0]
                reals = reals.reshape(cfg.n_dis, cfg.batch, *reals.shape[1:])
                z = step_latents(cfg.seed, t, cfg.n_dis, cfg.batch, cfg.z_dim)
                trainer.step(reals, z, poison=nan_nimg is not None and nimg >= nan_nimg)
                state["step"], state["nimg"] = t + 1, nimg + per_step
                bar.update(per_step / 1000.0)
                done = state["nimg"] >= total_nimg
                if (
                    state["nimg"] >= next_tick
                    or state["nimg"] >= next_snap
                    or done
                    or interrupt.requested
                ):
                    now = time.perf_counter()
                    loss_d, loss_g = trainer.pop_losses()
                    dt = now - tick_start_time
                    state["time_s"] += dt
                    if not (math.isfinite(loss_d) and math.isfinite(loss_g)):
                        raise TrainingDiverged(
                            f"loss became non-finite (loss_d={loss_d}, loss_g={loss_g}) between "
                            f"kimg {tick_start_nimg / 1000:.3f} and {state['nimg'] / 1000:.3f}; "
                            f"the last good checkpoint is {_latest_name(run)}. Start a new run "
                            "with lower learning rates or another loss (--resume would replay "
                            "the same steps from that checkpoint)."
                        )
                    rec = {
                        "kimg": state["nimg"] / 1000.0,
                        "nimg": state["nimg"],
                        "res": cfg.res,
                        "phase": "stabilize",
                        "alpha": 1.0,
                        "loss_d": loss_d,
                        "loss_g": loss_g,
                        "img_per_s": (state["nimg"] - tick_start_nimg) / max(dt, 1e-9),
                        "time_s": state["time_s"],
                        "peak_mem_mb": trainer.peak_mem_mb(),
                        "step": state["step"],
                        "framework": cfg.framework,
                        "model": cfg.model,
                    }
                    run.log(rec)
                    trainer.log_scalars(rec)
                    bar.set_postfix_str(
                        f"D {loss_d:.3f} G {loss_g:.3f} {rec['img_per_s']:.0f} img/s", refresh=False
                    )
                    if state["nimg"] >= next_snap or done or interrupt.requested:
                        snapshot(final=done)
                    next_tick = (state["nimg"] // tick_nimg + 1) * tick_nimg
                    next_snap = (state["nimg"] // snap_nimg + 1) * snap_nimg
                    tick_start_nimg, tick_start_time = state["nimg"], time.perf_counter()
                    if interrupt.requested and not done:
                        raise KeyboardInterrupt
        run.set_status("finished", kimg=state["nimg"] / 1000.0)
    except TrainingDiverged as exc:
        run.set_status("failed", error=str(exc))
        raise
    except KeyboardInterrupt:
        run.set_status(
            "failed",
            error=(
                f"interrupted by the user at kimg {state['nimg'] / 1000:.3f}; checkpoint "
                f"{_latest_name(run)} written; continue with --resume {run.path}"
            ),
            interrupted=True,
        )
        raise
    except BaseException as exc:
        run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        bar.close()
        trainer.close()
    return state


def _latest_name(run: RunDir) -> str:
    p = run.latest_checkpoint()
    return str(p) if p is not None else "(none yet)"
