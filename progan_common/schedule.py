"""ProGAN's progressive schedule, as a pure function of images shown.

Shared verbatim by ``progan_torch`` and ``progan_tf`` so both frameworks train
on exactly the same phases, batch sizes and fade-in values.

It follows the official code's ``TrainingSchedule`` (Karras et al. 2018,
``train.py``): time is measured in images shown (``nimg``), never in epochs;
each resolution level is a window of ``stabilize_kimg + fade_kimg`` images in
which the network first *stabilises* at the current resolution and then
*fades in* the next one, alpha rising linearly with images shown; once the
maximum resolution is reached it stabilises there until the end of training.
So the phases are::

    stabilise 4 | fade 8 | stabilise 8 | fade 16 | ... | fade R | stabilise R ...

Exact arithmetic on integer image counts keeps phase boundaries free of
floating-point drift (a resumed run lands on the same phase as an
uninterrupted one).

Adam state: the official code resets both optimisers whenever
``floor(lod)`` or ``ceil(lod)`` changes, that is at the start *and* at the end
of every fade. :attr:`gancore.train.stages.Stage.optimizer_key` changes exactly then; a
trainer resets its optimisers when the key differs from the previous step's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gancore.train.stages import Stage


def _log2_int(x: int, what: str) -> int:
    if x < 1 or x & (x - 1):
        raise ValueError(f"{what} must be a power of two, got {x}")
    return x.bit_length() - 1


@dataclass
class ProgressiveSchedule:
    """Phases, batch sizes, learning rates and alpha as functions of images shown.

    ``growing=False`` is the paper's "no progressive growing" ablation: the
    networks train at ``max_res`` from the first image, alpha fixed at 1.
    """

    max_res: int
    start_res: int = 4
    stabilize_kimg: float = 800.0
    fade_kimg: float = 800.0
    batch_sizes: dict[int, int] = field(default_factory=dict)  # res -> batch; missing -> default
    default_batch: int = 16
    lr_dict: dict[int, float] = field(default_factory=dict)  # res -> lr; missing -> base lr
    base_lr: float = 0.001
    growing: bool = True

    def __post_init__(self) -> None:
        self.batch_sizes = {int(k): int(v) for k, v in self.batch_sizes.items()}
        self.lr_dict = {int(k): float(v) for k, v in self.lr_dict.items()}
        lo, hi = _log2_int(self.start_res, "start_res"), _log2_int(self.max_res, "max_res")
        if lo < 2:
            raise ValueError(f"start_res must be at least 4, got {self.start_res}")
        if lo > hi:
            raise ValueError(f"start_res ({self.start_res}) exceeds max_res ({self.max_res})")
        if self.stabilize_kimg < 0 or self.fade_kimg < 0:
            raise ValueError("stabilize_kimg and fade_kimg must be non-negative")
        if self.growing and self.stabilize_kimg + self.fade_kimg <= 0 and lo < hi:
            raise ValueError("a growing schedule needs stabilize_kimg + fade_kimg > 0")
        for res, b in self.batch_sizes.items():
            if b < 1:
                raise ValueError(f"batch size for {res}x{res} must be positive, got {b}")
        if self.default_batch < 1:
            raise ValueError(f"default_batch must be positive, got {self.default_batch}")

    # ------------------------------------------------------------------ lookups
    @property
    def num_growth_steps(self) -> int:
        """How many times the resolution doubles (0 without growing)."""
        if not self.growing:
            return 0
        return _log2_int(self.max_res, "max_res") - _log2_int(self.start_res, "start_res")

    def batch_for(self, res: int) -> int:
        return self.batch_sizes.get(res, self.default_batch)

    def lr_for(self, res: int) -> float:
        return self.lr_dict.get(res, self.base_lr)

    @property
    def _stab_nimg(self) -> int:
        return int(round(self.stabilize_kimg * 1000))

    @property
    def _fade_nimg(self) -> int:
        return int(round(self.fade_kimg * 1000))

    # -------------------------------------------------------------------- state
    def state(self, nimg: int) -> Stage:
        """The schedule position after ``nimg`` images have been shown."""
        if nimg < 0:
            raise ValueError(f"nimg must be non-negative, got {nimg}")
        nimg = int(nimg)
        max_log2 = _log2_int(self.max_res, "max_res")
        steps = self.num_growth_steps
        stab, fade = self._stab_nimg, self._fade_nimg
        cycle = stab + fade
        if steps == 0 or nimg >= steps * cycle:
            res = self.max_res
            start = steps * cycle
            return self._make(nimg, res, "stabilize", 1.0, 2 * steps, start, None, max_log2)
        c, t = divmod(nimg, cycle)
        low = self.start_res * 2**c
        if t <= stab or fade == 0:
            # Official: lod is an integer up to and including the last stabilising image.
            return self._make(
                nimg, low, "stabilize", 1.0, 2 * c, c * cycle, c * cycle + stab, max_log2
            )
        alpha = (t - stab) / fade
        return self._make(
            nimg, 2 * low, "fade", alpha, 2 * c + 1, c * cycle + stab, (c + 1) * cycle, max_log2
        )

    def _make(self, nimg, res, phase, alpha, index, start, end, max_log2) -> Stage:
        lod = float(max_log2 - _log2_int(res, "res")) + (1.0 - alpha if phase == "fade" else 0.0)
        return Stage(
            nimg=nimg,
            res=res,
            level=_log2_int(res, "res") - 2,
            phase=phase,
            alpha=float(alpha),
            batch=self.batch_for(res),
            lr=self.lr_for(res),
            phase_index=index,
            phase_start_nimg=start,
            phase_end_nimg=end,
            lod=lod,
        )

    def phases(self, total_nimg: int | None = None) -> list[Stage]:
        """The state at the first image of every phase (for docs, --dry-run and tests)."""
        out = [self.state(0)]
        while out[-1].phase_end_nimg is not None:
            nxt = self.state(out[-1].phase_end_nimg + (1 if out[-1].phase == "stabilize" else 0))
            if total_nimg is not None and nxt.phase_start_nimg >= total_nimg:
                break
            out.append(nxt)
        return out
