"""The one training loop: every trainer (DCGAN / SN-DCGAN / ProGAN x PyTorch / TensorFlow).

Per minibatch: the stage provider says where training is (:mod:`gancore.train.stages`); Adam
is reset when the official key changes; reals come from the position-indexed data stream at
image ``nimg``; randoms are a pure function of ``(seed, nimg)``; the trainer steps. Around the
steps the loop owns, identically for all trainers:

- ticks: one :class:`~gancore.train.schema.TickRecord` in ``log.jsonl`` (and TensorBoard) and a
  grid every ``tick_kimg``; a grid at the end of every phase of a progressive schedule;
- snapshots: a checkpoint every ``snapshot_kimg`` and at the end, committed to ``latest.json``;
- the non-finite policy (official ProGAN): a step whose loss or gradients are non-finite, or
  whose loss exceeds the divergence limit, is skipped by the trainer and counted; a checkpoint
  is never written inside a streak of skipped steps or from non-finite weights (so pruning
  never removes the last good one), and ``max_bad_steps`` consecutive skips stop the run;
- interrupts: Ctrl-C (or SIGTERM) stops at the next step boundary with a checkpoint; a second
  Ctrl-C stops at once;
- resume: the newest loadable checkpoint (an unreadable one is reported and the previous one
  taken), its ``nimg`` is all that is restored of the schedule.

Time is measured in images shown (``nimg``); ``kimg`` = nimg / 1000.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gancore.errors import UserError
from gancore.grid import save_grid
from gancore.rundir import RunDir
from gancore.train.display import ProgressDisplay
from gancore.train.protocol import Randoms, StepStats, Trainer
from gancore.train.schema import STEP_STATS, CheckpointMeta, GridNames, RunInfo, TickRecord
from gancore.train.stages import Stage, StageProvider, last_step_start


class ImageSource(Protocol):
    """Reals by stream position: ``batch(res, start, count) -> (uint8 NHWC, labels or None)``."""

    channels: int
    num_classes: int

    def batch(self, res: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray | None]: ...


class TrainingDiverged(UserError):
    """Too many consecutive skipped steps; the last good checkpoint is kept."""

    exit_code = 3


class TrainingInterrupted(UserError):
    """Ctrl-C or SIGTERM; a checkpoint was written when the state allowed it."""

    exit_code = 130


@dataclass
class LoopSettings:
    """The loop's knobs, taken from a trainer's config by :func:`settings_from`."""

    total_nimg: int
    tick_nimg: int
    snapshot_nimg: int
    keep_checkpoints: int = 3
    max_bad_steps: int = 20
    reset_optimizer: bool = True
    progress: bool = True
    tensorboard: bool = False
    max_steps: int | None = None  # stop early without a final checkpoint (benchmarks, tests)
    # A wall-clock budget (equal-time comparisons): the run ends, like at total_nimg, once its
    # training time (all sessions) reaches this many seconds.
    max_seconds: float | None = None
    # Test hook (hidden flag): the randoms of steps starting in [start, end) images are NaN, so
    # every loss is non-finite -- exercises the non-finite policy in every trainer the same way.
    nan_window: tuple[int, int] | None = None


@dataclass
class TrainJob:
    """Everything but the trainer: where to write, what to read, how to draw randoms."""

    run: RunDir
    info: RunInfo
    stages: StageProvider
    draw: Callable[[int, Stage], Randoms]  # randoms of the step at image nimg (global batch)
    source: ImageSource
    grid_latents: np.ndarray
    grid_labels: np.ndarray | None
    settings: LoopSettings
    conditional: bool = False


@dataclass
class Position:
    """What a checkpoint restores of the loop (the rest is recomputed from ``nimg``)."""

    nimg: int = 0
    step: int = 0
    time_s: float = 0.0
    skipped_steps: int = 0


@dataclass
class Outcome:
    position: Position
    session_s: float
    finished: bool
    resumed_from: str | None = None


def settings_from(cfg: Any, progress: bool, max_steps: int | None = None) -> LoopSettings:
    """LoopSettings from a DCGAN ``TrainConfig`` or a ``ProGANConfig`` (same field names)."""
    window = None
    if getattr(cfg, "debug_nan_kimg", None):
        a, b = cfg.debug_nan_kimg
        window = (int(round(a * 1000)), int(round(b * 1000)))
    return LoopSettings(
        total_nimg=int(round(cfg.kimg * 1000)),
        tick_nimg=max(1, int(round(cfg.tick_kimg * 1000))),
        snapshot_nimg=max(1, int(round(cfg.snapshot_kimg * 1000))),
        keep_checkpoints=cfg.keep_checkpoints,
        max_bad_steps=cfg.max_bad_steps,
        reset_optimizer=getattr(cfg, "reset_optimizer", True),
        progress=progress,
        tensorboard=cfg.tensorboard,
        max_steps=max_steps,
        max_seconds=None if getattr(cfg, "max_minutes", None) is None else cfg.max_minutes * 60.0,
        nan_window=window,
    )


# --------------------------------------------------------------------------- helpers
class Prefetcher:
    """Reads the next minibatch's reals in a background thread while the current step runs.

    The next request is known exactly (the stage is a function of ``nimg``), so the data order
    is unchanged; a mismatched guess is simply read again in the foreground.
    """

    def __init__(self, source: ImageSource) -> None:
        self.source = source
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reals-prefetch")
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


class SignalGuard:
    """SIGINT / SIGTERM become a flag checked at step boundaries (a consistent checkpoint);
    a second SIGINT raises KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: keep the default
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass
class _Tick:
    """Accumulates one tick: means of the good steps' statistics, images, step seconds."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    nimg: int = 0
    timed_nimg: int = 0
    step_s: float = 0.0
    warmup_s: float = 0.0
    start: float = field(default_factory=time.perf_counter)

    def add(self, stats: StepStats) -> None:
        for k in STEP_STATS:
            v = stats.get(k)
            if v is not None and math.isfinite(v):
                self.sums[k] = self.sums.get(k, 0.0) + v
                self.counts[k] = self.counts.get(k, 0) + 1

    def mean(self, k: str) -> float | None:
        return self.sums[k] / self.counts[k] if self.counts.get(k) else None

    def rate(self) -> float | None:
        return self.timed_nimg / self.step_s if self.step_s > 0 and self.timed_nimg else None


def _crossed(before: int, after: int, every: int) -> bool:
    return after // every > before // every


def _poison(randoms: Randoms) -> Randoms:
    return {
        k: np.full_like(v, np.nan) if np.issubdtype(v.dtype, np.floating) else v
        for k, v in randoms.items()
    }


# ------------------------------------------------------------------------------ loop
def restore(job: TrainJob, trainer: Trainer, say: Callable[[str], None]) -> tuple[Position, str]:
    """Load the newest loadable checkpoint; an unreadable one is reported and skipped."""
    run = job.run
    entries = run.checkpoint_entries()
    if not entries:
        raise UserError(
            f"{run.path} has no checkpoint to resume from (it stopped before its first snapshot); "
            f"start it again with --overwrite --out {run.path}."
        )
    problems = []
    for entry in reversed(entries):
        try:
            meta = trainer.load(entry["path"])
        except UserError as exc:
            problems.append(str(exc))
            say(f"warning: {exc}; trying the previous checkpoint")
            continue
        if problems:
            say(f"warning: resuming from an older checkpoint, {entry['path'].name}")
        pos = Position(meta.nimg, meta.step, meta.time_s, meta.skipped_steps)
        return pos, entry["path"].name
    raise UserError(
        f"no checkpoint of {run.path} could be read ({len(problems)} tried: {problems[0]}); "
        f"start the run again with --overwrite --out {run.path}."
    )


def train(job: TrainJob, trainer: Trainer, resume: bool = False) -> Outcome:
    """Train until ``settings.total_nimg`` images have been shown (or ``max_steps`` steps)."""
    s, run, stages = job.settings, job.run, job.stages
    main = trainer.is_main
    single_stage = len(stages.phases()) == 1

    def say(line: str) -> None:
        if main:
            print(line, file=sys.stderr, flush=True)

    pos, resumed_from = Position(), None
    if resume:
        pos, resumed_from = restore(job, trainer, say)
        if main:
            run.truncate_log(pos.nimg / 1000.0)
        say(f"resumed {run.path} from {resumed_from} at kimg {pos.nimg / 1000:.3f}")
    display = ProgressDisplay(s.total_nimg, pos.nimg, s.progress and main, single_stage)
    say = display.write if main else say
    prev_start = last_step_start(stages.state, pos.nimg)
    prev = stages.state(prev_start) if prev_start is not None else None
    opt_key = prev.optimizer_key if prev is not None else None
    if prev is not None:
        trainer.set_stage(prev)  # the stage the restored weights were last trained at
    if main and not resume:
        _write_reals(job)
    tb = None
    if s.tensorboard and main:
        from gancore.train.tensorboard import ScalarWriter

        tb = ScalarWriter(run.path / "tensorboard")

    tick, bad_streak, steps, pending_snapshot, out_of_time = _Tick(), 0, 0, False, False
    seen_shapes: set[tuple[int, bool]] = set()
    session_start, time_base = time.perf_counter(), pos.time_s
    reader = Prefetcher(job.source)

    def elapsed() -> float:
        return time_base + time.perf_counter() - session_start

    def grid(name: str) -> None:
        if main:
            images = trainer.generate(job.grid_latents, job.grid_labels)
            save_grid(run.samples / name, images, caption=_caption(job, prev, pos.nimg))

    def snapshot() -> bool:
        if trainer.agree(not trainer.state_is_finite()):
            say(
                f"warning: weights are not finite at kimg {pos.nimg / 1000:.3f}; no checkpoint written"
            )
            return False
        pos.time_s = elapsed()
        meta = CheckpointMeta(
            pos.nimg, pos.step, pos.time_s, pos.skipped_steps, job.info.model, job.info.framework
        )
        if main:
            path = run.checkpoint_path(meta.kimg, trainer.checkpoint_ext)
            trainer.save(path, meta)
            run.commit_checkpoint(path, meta, keep=s.keep_checkpoints)
        trainer.barrier()
        return True

    try:
        with SignalGuard() as guard:
            while (
                pos.nimg < s.total_nimg
                and not out_of_time
                and (s.max_steps is None or steps < s.max_steps)
            ):
                st = stages.state(pos.nimg)
                if prev is not None and st.phase_index != prev.phase_index and not single_stage:
                    grid(GridNames.phase(prev.phase_index, prev.phase, prev.res))
                if opt_key is not None and st.optimizer_key != opt_key and s.reset_optimizer:
                    trainer.reset_optimizers()
                opt_key = st.optimizer_key
                trainer.set_stage(st)

                rows = trainer.local_rows(st.batch)
                reals, labels = reader.get(st.res, pos.nimg + rows.start, rows.stop - rows.start)
                nxt = stages.state(pos.nimg + st.batch)
                nrows = trainer.local_rows(nxt.batch)
                reader.prefetch(
                    nxt.res, pos.nimg + st.batch + nrows.start, nrows.stop - nrows.start
                )
                randoms = job.draw(pos.nimg, st)
                if s.nan_window and s.nan_window[0] <= pos.nimg < s.nan_window[1]:
                    randoms = _poison(randoms)
                t0 = time.perf_counter()
                stats = trainer.step(reals, labels if job.conditional else None, randoms)
                dt = time.perf_counter() - t0
                shape = (st.level, st.fading)
                if shape in seen_shapes:  # first step of a shape traces / compiles: not timed
                    tick.step_s += dt
                    tick.timed_nimg += st.batch
                else:
                    seen_shapes.add(shape)
                    tick.warmup_s += dt

                before = pos.nimg
                pos.nimg += st.batch  # official: images count even when the update is skipped
                pos.step += 1
                steps += 1
                prev = st
                tick.nimg += st.batch
                if stats.get("skipped"):
                    pos.skipped_steps += 1
                    bad_streak += 1
                else:
                    bad_streak = 0
                    tick.add(stats)
                display.show(
                    st,
                    tick.mean("loss_d") if tick.counts else stats.get("loss_d"),
                    tick.mean("loss_g") if tick.counts else stats.get("loss_g"),
                    tick.rate(),
                )
                display.advance(before, pos.nimg)
                if bad_streak >= s.max_bad_steps:
                    raise TrainingDiverged(
                        f"training diverged: {bad_streak} consecutive steps with non-finite or "
                        f"exploding losses (the last at kimg {pos.nimg / 1000:.3f}, "
                        f"{st.phase_name}); the last good checkpoint is "
                        f"{_latest_name(run)}. Resume from it with a lower learning rate."
                    )
                if s.max_seconds is not None and elapsed() >= s.max_seconds and not out_of_time:
                    out_of_time = True
                    say(
                        f"the time budget of {s.max_seconds / 60:g} min is reached at kimg "
                        f"{pos.nimg / 1000:.3f}; finishing the run here"
                    )
                done = pos.nimg >= s.total_nimg or out_of_time
                if _crossed(before, pos.nimg, s.tick_nimg) or done:
                    rec = _record(job, st, pos, tick, elapsed(), trainer)
                    if main:
                        run.log(rec.to_json())
                        if tb is not None:
                            tb.scalars(pos.nimg, rec.to_json())
                        grid(GridNames.tick(pos.nimg / 1000.0))
                    if rec.img_per_s and math.isfinite(rec.img_per_s):
                        display.tick_rate(st, rec.img_per_s)
                    tick = _Tick()
                pending_snapshot |= _crossed(before, pos.nimg, s.snapshot_nimg) or done
                stop = trainer.agree(guard.requested is not None)
                wrote = False
                if (pending_snapshot or stop) and bad_streak == 0:
                    wrote = snapshot()
                    pending_snapshot = pending_snapshot and not wrote
                if stop:
                    raise TrainingInterrupted(
                        f"interrupted ({guard.requested or 'signal'}) at kimg {pos.nimg / 1000:.3f}; "
                        + (
                            f"checkpoint {_latest_name(run)} written"
                            if wrote
                            else f"no checkpoint written now (last good: {_latest_name(run)})"
                        )
                        + f"; continue with --resume {run.path}"
                    )
    finally:
        reader.close()
        display.close()
        if tb is not None:
            tb.close()

    finished = pos.nimg >= s.total_nimg or out_of_time
    if finished and main:
        if prev is not None and not single_stage:
            grid(GridNames.phase(prev.phase_index, prev.phase, prev.res))
        grid(GridNames.FINAL)
    pos.time_s = elapsed()
    return Outcome(pos, time.perf_counter() - session_start, finished, resumed_from)


def _record(
    job: TrainJob, st: Stage, pos: Position, tick: _Tick, time_s: float, trainer
) -> TickRecord:
    return TickRecord(
        kimg=pos.nimg / 1000.0,
        nimg=pos.nimg,
        step=pos.step,
        res=st.res,
        level=st.level,
        phase=st.phase,
        alpha=st.alpha,
        batch=st.batch,
        lr=st.lr,
        **{k: tick.mean(k) for k in STEP_STATS},
        img_per_s=tick.rate() or float("nan"),
        warmup_s=tick.warmup_s,
        tick_s=time.perf_counter() - tick.start,
        time_s=time_s,
        peak_mem_mb=trainer.peak_mem_mb(),
        skipped_steps=pos.skipped_steps,
        world=trainer.world,
        model=job.info.model,
        framework=job.info.framework,
    )


def _write_reals(job: TrainJob) -> None:
    """``samples/reals.png``: real images at the final resolution, to compare grids with."""
    st = job.stages.state(max(job.settings.total_nimg - 1, 0))
    n = len(job.grid_latents)
    images, _ = job.source.batch(st.res, 0, n)
    save_grid(
        job.run.samples / GridNames.REALS,
        images,
        caption=f"real images ({job.info.dataset}, {st.res}x{st.res})",
    )


def _caption(job: TrainJob, st: Stage | None, nimg: int) -> str:
    where = (
        ""
        if st is None
        else f"{st.res}x{st.res}" + (f" fade a={st.alpha:.2f}" if st.fading else "")
    )
    return f"{job.info.model} ({job.info.framework}) {nimg / 1000:.1f} kimg {where}".strip()


def _latest_name(run: RunDir) -> str:
    p = run.latest_checkpoint()
    return str(p) if p is not None else "none (no checkpoint was written yet)"
