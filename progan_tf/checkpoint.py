"""Checkpoints with ``tf.train.Checkpoint``, written so a crash never replaces a good one.

A checkpoint is a *directory* ``checkpoints/ckpt-<kimg>kimg/`` holding the TF
checkpoint files (``ckpt.index``, ``ckpt.data-*``: G, D, G_ema, both optimisers,
``nimg`` and the optimiser-reset key; level/alpha live in the networks) and
``meta.json`` (loop bookkeeping: elapsed seconds, next tick/snapshot, skipped steps).
It is written into a temporary directory inside ``checkpoints/`` and renamed to its
final name only when complete; then ``RunDir.commit_checkpoint`` moves
``latest.json`` to it. A reader therefore only ever sees complete checkpoints, and
the previous one stays until the new one is committed.

RNG state: every random number in training is drawn from a counter-based numpy key
``(seed, nimg)`` (see ``training.step_randoms``) and the data order is a function of
the image position, so ``nimg`` *is* the RNG state.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import tensorflow as tf

from gancore.errors import UserError
from gancore.io import atomic_write_json, read_json
from gancore.rundir import RunDir
from progan_tf.networks import model_variables

CKPT_PREFIX = "ckpt"
META = "meta.json"


def _tf_checkpoint(trainer, generator_only: bool = False) -> tf.train.Checkpoint:
    """Networks as explicit ``{torch key: variable}`` dicts (see ``networks.model_variables``)."""
    parts: dict[str, Any] = {"G": model_variables(trainer.G)}
    if trainer.G_ema is not None:
        parts["G_ema"] = model_variables(trainer.G_ema)
    if not generator_only:
        parts.update(
            D=model_variables(trainer.D),
            opt_g=trainer.opt_g,
            opt_d=trainer.opt_d,
            nimg=trainer.nimg,
            opt_key=trainer.opt_key,
        )
    return tf.train.Checkpoint(**parts)


def save_checkpoint(run: RunDir, trainer, kimg: float, meta: dict[str, Any], keep: int = 3) -> Path:
    """Write the trainer's full state for ``kimg`` and commit it; returns the directory."""
    final = run.checkpoint_path(kimg, "")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=run.checkpoints))
    try:
        _tf_checkpoint(trainer).write(str(tmp / CKPT_PREFIX))
        atomic_write_json(tmp / META, {**meta, "kimg": kimg, "format": "progan_tf/1"})
        if final.exists():  # the same kimg written again after a resume: replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    run.commit_checkpoint(final, kimg, keep=keep)
    return final


def load_checkpoint(
    path: str | os.PathLike, trainer, generator_only: bool = False
) -> dict[str, Any]:
    """Restore a checkpoint directory into ``trainer``; returns its ``meta.json``.

    ``generator_only`` restores what sampling needs (G, G_ema) and ignores the rest.
    """
    path = Path(path)
    if not (path / f"{CKPT_PREFIX}.index").exists():
        raise UserError(
            f"{path} is not a progan_tf checkpoint directory (no {CKPT_PREFIX}.index). "
            "Pass a directory listed in <run>/checkpoints/latest.json."
        )
    if generator_only:
        status = _tf_checkpoint(trainer, generator_only=True).read(str(path / CKPT_PREFIX))
        status.expect_partial().assert_existing_objects_matched()
    else:
        status = _tf_checkpoint(trainer).read(str(path / CKPT_PREFIX))
        status.assert_existing_objects_matched()
    meta_path = path / META
    return read_json(meta_path) if meta_path.exists() else {}


def resolve_checkpoint(run: RunDir, checkpoint: str | None = None) -> Path:
    """An explicit ``--checkpoint`` or the run's ``latest.json`` entry (never parsed names)."""
    if checkpoint:
        return Path(checkpoint)
    latest = run.latest_checkpoint()
    if latest is None:
        raise UserError(
            f"{run.path} has no committed checkpoint (checkpoints/latest.json missing "
            "or pointing nowhere); train longer or pass --checkpoint."
        )
    return latest
