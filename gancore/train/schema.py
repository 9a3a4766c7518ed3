"""The run directory's records, as dataclasses: what the loop writes and everyone else reads.

::

    RUN_DIR/
      config.json      {"schema": 2, "run": RunInfo, "config": <the trainer's config>}
      log.jsonl        one TickRecord per line
      status.json      Status (created / running / finished / failed / diverged / interrupted)
      checkpoints/     ckpt-<kimg>kimg<ext> (file or folder) + latest.json (CheckpointMeta each)
      samples/         PNG grids named by GridNames
      .lock            held (flock) by the one process that trains in this folder

The harness and the report read these through :func:`read_run_info`, :func:`read_ticks` and
``RunDir``; they never parse file names or call a trainer's private methods.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gancore.errors import UserError

SCHEMA_VERSION = 2

# Per-step statistics every trainer reports (None where a model has no such quantity, e.g.
# the gradient penalty of a non-WGAN loss). The loop averages them over a tick's good steps.
STEP_STATS = ("loss_d", "loss_g", "d_real", "d_fake", "gp", "grad_norm")


@dataclass
class RunInfo:
    """What was trained, by which code, on what: the ``run`` part of ``config.json``."""

    model: str  # dcgan | sndcgan | progan | sn-progan
    framework: str  # torch | tf
    entry_point: str  # the module whose ``train`` CLI wrote the run
    img_channels: int
    num_classes: int = 0
    dataset: str = ""
    random_data: bool = False
    hardware: dict[str, Any] = field(default_factory=dict)
    converted_from: str | None = None  # set by the converters: the source run and checkpoint


@dataclass
class TickRecord:
    """One line of ``log.jsonl``: the state at the end of a tick, identical keys everywhere."""

    kimg: float
    nimg: int
    step: int
    res: int
    level: int
    phase: str
    alpha: float
    batch: int
    lr: float | None
    loss_d: float | None  # means over the tick's applied (not skipped) steps
    loss_g: float | None
    d_real: float | None
    d_fake: float | None
    gp: float | None
    grad_norm: float | None
    img_per_s: float  # images / seconds of this tick's timed steps (warm-up steps excluded)
    warmup_s: float  # seconds of steps not timed: the first step of each (level, fade) shape
    # in a session, where frameworks trace / compile
    tick_s: float  # wall-clock seconds of the tick (steps, data, grids, checkpoints)
    time_s: float  # wall-clock seconds of training so far, summed over all sessions
    peak_mem_mb: float
    skipped_steps: int  # non-finite or diverging steps skipped so far (whole run)
    world: int  # processes sharing the minibatch
    model: str
    framework: str

    def to_json(self) -> dict[str, Any]:
        return {k: _finite_or_none(v) for k, v in asdict(self).items()}


@dataclass
class CheckpointMeta:
    """Where training was when a checkpoint was written; everything else is recomputed."""

    nimg: int
    step: int
    time_s: float
    skipped_steps: int
    model: str = ""
    framework: str = ""
    schema: int = SCHEMA_VERSION

    @property
    def kimg(self) -> float:
        return self.nimg / 1000.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckpointMeta:
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as exc:
            raise UserError(
                f"checkpoint metadata is incomplete ({exc}); not a checkpoint of this project"
            ) from exc


@dataclass
class Status:
    """``status.json``: the last thing the trainer said about the run."""

    state: str  # created | running | finished | failed | diverged | interrupted
    time: float
    kimg: float | None = None
    error: str | None = None
    pid: int | None = None
    host: str | None = None


class GridNames:
    """File names of the sample grids under ``samples/`` (one place, read by the report)."""

    REALS = "reals.png"
    FINAL = "final.png"

    @staticmethod
    def tick(kimg: float) -> str:
        return f"tick-{kimg:010.3f}.png"

    @staticmethod
    def phase(index: int, phase: str, res: int) -> str:
        return f"phase-{index:02d}-{phase}-{res}.png"

    @staticmethod
    def parse(name: str) -> dict[str, Any] | None:
        """``{"kind": "tick"|"phase"|"final"|"reals", ...}`` for a grid file name, else None."""
        stem = Path(name).stem
        if name == GridNames.FINAL:
            return {"kind": "final"}
        if name == GridNames.REALS:
            return {"kind": "reals"}
        parts = stem.split("-")
        try:
            if parts[0] == "tick" and len(parts) == 2:
                return {"kind": "tick", "kimg": float(parts[1])}
            if parts[0] == "phase" and len(parts) == 4:
                return {
                    "kind": "phase",
                    "index": int(parts[1]),
                    "phase": parts[2],
                    "res": int(parts[3]),
                }
        except ValueError:
            return None
        return None


def run_config(info: RunInfo, config: dict[str, Any]) -> dict[str, Any]:
    """The content of ``config.json``."""
    return {"schema": SCHEMA_VERSION, "run": asdict(info), "config": config}


def split_run_config(data: Any, where: str) -> tuple[RunInfo, dict[str, Any]]:
    """(RunInfo, config dict) from a parsed ``config.json``; clear errors for anything else."""
    if not isinstance(data, dict) or not isinstance(data.get("run"), dict):
        raise UserError(
            f"{where} is not a run configuration written by this project's trainers "
            f"(schema {SCHEMA_VERSION}); train the run again or pass the right folder."
        )
    if data.get("schema") != SCHEMA_VERSION:
        raise UserError(
            f"{where} has run schema {data.get('schema')!r}; this version reads schema "
            f"{SCHEMA_VERSION}. Retrain it with this version of the project."
        )
    names = {f.name for f in dataclasses.fields(RunInfo)}
    try:
        info = RunInfo(**{k: v for k, v in data["run"].items() if k in names})
    except TypeError as exc:
        raise UserError(f"{where}: incomplete run information ({exc}).") from exc
    config = data.get("config")
    if not isinstance(config, dict):
        raise UserError(f"{where}: its 'config' entry is not an object.")
    return info, config


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
