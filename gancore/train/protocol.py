"""The trainer interface: numerics only. The loop (:mod:`gancore.train.loop`) does the rest.

Each of the four trainers (DCGAN / SN-DCGAN / ProGAN x PyTorch / TensorFlow) implements
:class:`Trainer`. A trainer never touches the run directory except through ``save``/``load`` on
a path the loop gives it, never decides when to log, snapshot or stop, and never draws random
numbers: reals and randoms are inputs, so both frameworks can be fed identical values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from gancore.train.schema import CheckpointMeta
from gancore.train.stages import Stage

# Randoms of one step, by name (ProGAN: z_d, z_g, u; DCGAN: z), drawn over the GLOBAL batch.
Randoms = dict[str, np.ndarray]
# Per-step statistics: the keys of schema.STEP_STATS (None where not applicable) plus
# "skipped" (1.0 when any update of the step was not applied: non-finite or diverging).
StepStats = dict[str, float | None]


@runtime_checkable
class Trainer(Protocol):
    """What a framework implements to be driven by the one loop."""

    checkpoint_ext: str  # ".pt" / ".npz" for one file; "" for a checkpoint folder
    is_main: bool  # rank 0 (the only process that writes); True without distribution
    world: int  # processes sharing each minibatch

    def set_stage(self, stage: Stage) -> None:
        """Level, fade flag, alpha and learning rate for the next steps."""

    def reset_optimizers(self) -> None:
        """Fresh optimiser state (ProGAN: at every fade start and end, as the official code)."""

    def local_rows(self, batch: int) -> slice:
        """Rows of a global minibatch this process trains on (all of them without distribution)."""

    def step(self, reals: np.ndarray, labels: np.ndarray | None, randoms: Randoms) -> StepStats:
        """One training step from uint8 NHWC reals (this process's rows) and the randoms."""

    def generate(self, latents: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """uint8 NHWC images from the sampling generator (EMA when enabled) at the current stage."""

    def state_is_finite(self) -> bool:
        """Whether every weight and optimiser slot is finite (a checkpoint may be written)."""

    def save(self, path: Path, meta: CheckpointMeta) -> None:
        """Write the full training state to ``path`` atomically (a file, or a folder renamed
        into place); ``meta`` goes inside it."""

    def load(self, path: Path) -> CheckpointMeta:
        """Restore the state written by ``save``; raise ``UserError`` for an unreadable file."""

    def peak_mem_mb(self) -> float:
        """Peak memory of the training device so far (GPU memory, else resident memory)."""

    def agree(self, flag: bool) -> bool:
        """True if ``flag`` is true on any process (identity without distribution)."""

    def barrier(self) -> None:
        """Wait for every process (no-op without distribution)."""

    def close(self) -> None:
        """Release what the trainer holds (threads, writers, process groups)."""


class SingleProcess:
    """Defaults for trainers that run in one process."""

    is_main = True
    world = 1

    def local_rows(self, batch: int) -> slice:
        return slice(0, batch)

    def agree(self, flag: bool) -> bool:
        return flag

    def barrier(self) -> None:
        return None

    def close(self) -> None:
        return None
