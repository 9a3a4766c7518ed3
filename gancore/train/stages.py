"""Where training is, as a pure function of images shown: the stage provider contract.

The one training loop (:mod:`gancore.train.loop`) asks a *stage provider* for the
:class:`Stage` at image position ``nimg`` before every minibatch. ProGAN's provider is its
progressive schedule (:class:`progan_common.schedule.ProgressiveSchedule`); DCGAN's is
:class:`ConstantStages`. Nothing about the stage is stored in a checkpoint: the loop saves
``nimg`` and recomputes everything else from the provider, so a resumed run is exactly
where an uninterrupted one would be.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Stage:
    """What the networks do for the minibatch that starts at image ``nimg``."""

    nimg: int
    res: int  # resolution the networks output (the new one during a fade)
    level: int  # log2(res) - 2: 4x4 is level 0
    phase: str  # "stabilize" | "fade" (progressive) or "train" (constant)
    alpha: float  # weight of the newest block during a fade; 1.0 otherwise
    batch: int  # images this step consumes (DCGAN: batch * n_dis)
    lr: float | None  # learning rate for this stage; None: the config's fixed rates
    phase_index: int  # 0, 1, 2, ... in the order phases happen
    phase_start_nimg: int
    phase_end_nimg: int | None  # None for the final, open-ended phase
    lod: float = 0.0  # ProGAN's "level of detail" (official train.py); 0 for constant stages

    @property
    def kimg(self) -> float:
        return self.nimg / 1000.0

    @property
    def fading(self) -> bool:
        """Whether the previous resolution's path is blended in (alpha is only used then)."""
        return self.phase == "fade"

    @property
    def optimizer_key(self) -> tuple[int, int]:
        """(floor(lod), ceil(lod)) as in the official code; a change means "reset Adam"."""
        return (math.floor(self.lod), math.ceil(self.lod))

    @property
    def phase_name(self) -> str:
        return f"{self.phase}-{self.res}"


class StageProvider(Protocol):
    """Anything that maps images shown to a :class:`Stage` (pure, cheap, monotone in res)."""

    def state(self, nimg: int) -> Stage: ...

    def phases(self, total_nimg: int | None = None) -> list[Stage]: ...


@dataclass(frozen=True)
class ConstantStages:
    """One stage for the whole run (DCGAN / SN-DCGAN): ``batch`` images per step at ``res``."""

    res: int
    batch: int

    def state(self, nimg: int) -> Stage:
        if nimg < 0:
            raise ValueError(f"nimg must be non-negative, got {nimg}")
        return Stage(
            nimg=int(nimg),
            res=self.res,
            level=self.res.bit_length() - 3,
            phase="train",
            alpha=1.0,
            batch=self.batch,
            lr=None,
            phase_index=0,
            phase_start_nimg=0,
            phase_end_nimg=None,
        )

    def phases(self, total_nimg: int | None = None) -> list[Stage]:
        return [self.state(0)]


def last_step_start(state: Callable[[int], Stage], nimg: int) -> int | None:
    """Image position at which the last step before ``nimg`` started (None when ``nimg`` is 0).

    Steps start at 0 and each advances by its stage's batch, which depends only on the
    resolution. Positions with one resolution form an interval (resolution never decreases),
    so the walk visits each resolution once, finding the interval's end by bisection.
    """
    if nimg <= 0:
        return None
    pos = 0
    while True:
        st = state(pos)
        lo, hi = pos, nimg - 1  # largest n in [pos, nimg - 1] with the same resolution
        if state(hi).res == st.res:
            lo = hi
        else:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if state(mid).res == st.res:
                    lo = mid
                else:
                    hi = mid
        last = pos + (lo - pos) // st.batch * st.batch
        if lo == nimg - 1:
            return last
        pos = last + st.batch
        if pos >= nimg:
            return last
