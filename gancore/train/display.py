"""The one progress display of every trainer: a bar over images shown with losses from the
first step, the stage, throughput, an ETA, and a warning when throughput collapses."""

from __future__ import annotations

import statistics
import sys

from gancore.train.stages import Stage

# A tick slower than this fraction of the run's own median throughput is flagged: on a shared
# CPU another process can cut a trainer's speed several-fold (oversubscribed threads).
SLOW_FRACTION = 0.4
MIN_TICKS_FOR_MEDIAN = 3


class ProgressDisplay:
    """tqdm bar in images (never past the total); postfix updated every step."""

    def __init__(self, total: int, done: int, enabled: bool, single_stage: bool) -> None:
        from tqdm import tqdm

        self.total, self.single_stage = total, single_stage
        self.rates: dict[tuple[int, bool], list[float]] = {}
        self.slow: float | None = None  # this tick's rate / median, when far below it
        self.bar = tqdm(
            total=total,
            initial=min(done, total),
            unit="img",
            unit_scale=True,
            dynamic_ncols=True,
            disable=not enabled,
            file=sys.stderr,
            smoothing=0.1,
        )

    def advance(self, before: int, after: int) -> None:
        self.bar.update(min(after, self.total) - min(before, self.total))

    def show(
        self, st: Stage, loss_d: float | None, loss_g: float | None, rate: float | None
    ) -> None:
        where = f"{st.res}px" if self.single_stage else f"{st.res}px {st.phase} a={st.alpha:.2f}"
        parts = [where]
        if loss_d is not None and loss_g is not None:
            parts.append(f"D {loss_d:.3f} G {loss_g:.3f}")
        if rate:
            parts.append(f"{rate:.0f} img/s")
        if self.slow is not None:
            parts.append(f"SLOW: {self.slow:.2f}x this run's median (other load? try --threads 1)")
        self.bar.set_postfix_str(" | ".join(parts), refresh=False)

    def tick_rate(self, st: Stage, rate: float) -> None:
        """Record a finished tick's throughput and flag it when it is far below the median of
        earlier ticks of the same resolution and fade state (those differ legitimately)."""
        rates = self.rates.setdefault((st.res, st.fading), [])
        med = statistics.median(rates) if len(rates) >= MIN_TICKS_FOR_MEDIAN else None
        self.slow = rate / med if med and rate < SLOW_FRACTION * med else None
        rates.append(rate)

    def write(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
