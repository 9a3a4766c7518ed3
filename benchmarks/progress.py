"""One overall progress line for a whole benchmark: which run, which phase, ETA.

The trainers' own progress output goes to their log files; the harness shows
only this line (rewritten in place on a terminal, one line every 30 s in a log).
The ETA is learned as the grid runs: seconds per unit of training work and
seconds per evaluation point, each measured on the runs finished so far. Work is
what the profile makes equal: TFLOP under a compute budget (a DCGAN image costs a
sixth of an SN-DCGAN image, so seconds per kimg learned on one model mispredict the
next by that factor), kimg otherwise.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    def __init__(
        self,
        total_runs: int,
        train_work: float,
        eval_points: int,
        stream: TextIO | None = None,
        interval_s: float = 30.0,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval_s = 0.5 if self.tty else interval_s
        self.total_runs = total_runs
        self.train_left = train_work  # work (TFLOP or kimg) still to train in this invocation
        self.evals_left = eval_points
        self.start = time.time()
        self.train_s = self.train_done = 0.0  # measured: seconds and work trained
        self.eval_s = 0.0
        self.evals_done = 0
        self.index = 0
        self.run = ""
        self.phase = ""
        self.detail = ""
        self._last = 0.0
        self._phase_work = 0.0

    # ----------------------------------------------------------------- events
    def start_run(self, index: int, name: str) -> None:
        self.index, self.run = index, name

    def set_phase(self, phase: str, detail: str = "") -> None:
        self.phase, self.detail = phase, detail
        self._phase_start = time.time()
        self.draw(force=True)

    def train_tick(
        self, kimg_done: float, kimg_total: float, start_kimg: float, work_per_kimg: float = 1.0
    ) -> None:
        self._phase_work = max(0.0, kimg_done - start_kimg) * work_per_kimg
        self.detail = f"{kimg_done:.1f}/{kimg_total:g} kimg"
        self.draw()

    def train_finished(
        self, kimg_trained: float, seconds: float, planned: float, work_per_kimg: float = 1.0
    ) -> None:
        """A run's training ended: ``kimg_trained`` of the ``planned`` kimg, each kimg being
        ``work_per_kimg`` units of work (its TFLOP per kimg under a compute budget)."""
        self.train_s += seconds
        self.train_done += kimg_trained * work_per_kimg
        self.train_left = max(0.0, self.train_left - planned * work_per_kimg)
        self._phase_work = 0.0

    def eval_finished(self, seconds: float) -> None:
        self.eval_s += seconds
        self.evals_done += 1
        self.evals_left = max(0, self.evals_left - 1)

    # ---------------------------------------------------------------- display
    def eta(self) -> float | None:
        parts = []
        if self.train_left > 0:
            if self.train_done <= 0:
                return None
            parts.append(
                self.train_s / self.train_done * max(0.0, self.train_left - self._phase_work)
            )
        if self.evals_left > 0:
            if self.evals_done == 0:
                return None
            parts.append(self.eval_s / self.evals_done * self.evals_left)
        return sum(parts)

    def line(self) -> str:
        elapsed = time.time() - self.start
        detail = f" {self.detail}" if self.detail else ""
        return (
            f"[{self.index}/{self.total_runs} {self.run}] {self.phase}{detail} | "
            f"elapsed {fmt_duration(elapsed)} | ETA {fmt_duration(self.eta())}"
        )

    def draw(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        text = self.line()
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line that stays (a finished or failed run)."""
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
