"""Compute and wall-clock of a run before it starts: training FLOPs over the schedule, and a
time estimate from a few real steps measured on this machine.

FLOPs per image come from each family's torch twin (``progan_torch.flops``,
``vanilla_gan.flops``); the TensorFlow twins run the same networks and losses, so a FLOP budget
is framework- and machine-independent. The time estimate divides the FLOPs by the throughput
(FLOP/s) of a short calibration of the run's own trainer at one stage; efficiency varies
between stages and with machine load, so it is an estimate (say +-50%), printed as such.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gancore.train.stages import Stage, StageProvider

PerImage = Callable[[int, bool], float]  # (res, fading) -> training FLOPs per image


def segments(stages: StageProvider, total_nimg: int) -> list[tuple[Stage, int]]:
    """(first stage of a phase, images of that phase within the run), in order."""
    phases = stages.phases(total_nimg)
    out = []
    for i, st in enumerate(phases):
        end = phases[i + 1].phase_start_nimg if i + 1 < len(phases) else total_nimg
        n = max(0, min(end, total_nimg) - st.phase_start_nimg)
        if n:
            out.append((st, n))
    return out


def schedule_flops(stages: StageProvider, total_nimg: int, per_image: PerImage) -> float:
    """Training FLOPs of a whole run: each phase's images times its per-image cost."""
    return sum(n * per_image(st.res, st.fading) for st, n in segments(stages, total_nimg))


def nimg_for_flops(
    stages_for: Callable[[int], StageProvider], per_image: PerImage, flops: float, step: int = 1000
) -> int:
    """The smallest run length (a multiple of ``step`` images) whose training FLOPs reach
    ``flops``; ``stages_for(nimg)`` builds the schedule for a run of that length."""
    lo, hi = step, step
    while schedule_flops(stages_for(hi), hi, per_image) < flops:
        lo, hi = hi, hi * 2
        if hi > 10**10:
            raise ValueError("FLOP budget out of range")
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if schedule_flops(stages_for(mid), mid, per_image) < flops:
            lo = mid
        else:
            hi = mid
    return hi


@dataclass
class Calibration:
    stage: Stage
    steps: int
    seconds: float
    flop_per_s: float


def calibrate(
    trainer, stage: Stage, draw, source, per_image: PerImage, steps: int = 3, warmup: int = 2
) -> Calibration:
    """Time ``steps`` real training steps of ``trainer`` at ``stage`` (after ``warmup``)."""
    trainer.set_stage(stage)
    elapsed = 0.0
    for i in range(warmup + steps):
        reals, _ = source.batch(stage.res, i * stage.batch, stage.batch)
        t0 = time.perf_counter()
        trainer.step(reals, None, draw(i * stage.batch, stage))
        if i >= warmup:
            elapsed += time.perf_counter() - t0
    flops = per_image(stage.res, stage.fading) * stage.batch * steps
    return Calibration(stage, steps, elapsed, flops / max(elapsed, 1e-9))


def describe(total_flops: float, total_nimg: int, cal: Calibration | None) -> str:
    """Two lines for a dry run: the compute, and the estimated time on this machine."""
    lines = [f"compute: {total_flops / 1e12:.1f} TFLOP of training over {total_nimg / 1000:g} kimg"]
    if cal is not None:
        est = total_flops / cal.flop_per_s
        lines.append(
            f"estimated training time on this machine: {_duration(est)} (+-50%; calibrated on "
            f"{cal.steps} steps at {cal.stage.res}x{cal.stage.res}, {cal.flop_per_s / 1e9:.1f} "
            "GFLOP/s; evaluation and start-up not included)"
        )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
