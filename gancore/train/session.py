"""One training session around the loop, shared by every ``train`` CLI.

Order matters for "nothing is lost": the configuration is validated and the data opened
before anything is written (a typo in ``--dataset`` leaves no half-made run behind); the run
directory is locked for the whole session (one trainer per folder); temporaries of a killed
checkpoint write are swept; ``status.json`` always ends in a final state with the reason; the
exit status says what happened (0 finished, 2 a user error, 3 diverged, 130 interrupted).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from gancore.errors import UserError
from gancore.rundir import RunDir
from gancore.train.loop import TrainingDiverged, TrainingInterrupted, TrainJob, train
from gancore.train.protocol import Trainer
from gancore.train.schema import RunInfo, run_config, split_run_config


class DatasetSource:
    """Reals from a prepared data set through the position-indexed ``ImageStream``: the same
    images in the same order for every framework (``datasets.stream``)."""

    def __init__(self, ds, seed: int, mirror: bool, conditional: bool = False) -> None:
        from datasets.stream import ImageStream

        self.stream = ImageStream(ds, seed=seed, mirror=mirror)
        self.channels = ds.channels
        self.conditional = conditional
        self.num_classes = 0
        if conditional:
            if ds.labels is None:
                raise UserError(f"--conditional needs labels, but data set {ds.name!r} has none.")
            self.num_classes = int(ds.labels.max()) + 1

    def batch(self, res: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray | None]:
        images, labels = self.stream.batch(res, start, count)
        return images, (labels if self.conditional else None)


def open_source(
    dataset: str,
    *,
    data_root: str | None,
    cache_dir: str | None,
    resolutions: list[int],
    seed: int,
    mirror: bool = False,
    conditional: bool = False,
    split: str = "train",
    random_data: bool = False,
):
    """The reals of a run: a prepared data set (prepared on first use) or random images."""
    if random_data:
        from gancore.latents import RandomSource

        return RandomSource(channels=3, seed=seed)
    from datasets import prepare

    ds = prepare(
        dataset, data_root=data_root, cache_dir=cache_dir, max_res=max(resolutions), split=split
    )
    missing = sorted(set(resolutions) - set(ds.resolutions))
    if missing:
        raise UserError(
            f"data set {dataset!r} has resolutions {ds.resolutions}, not {missing}; "
            "lower the resolution or use a larger source."
        )
    return DatasetSource(ds, seed, mirror, conditional)


def read_run(
    path: str, entry_points: tuple[str, ...] | None = None
) -> tuple[RunInfo, dict[str, Any]]:
    """(RunInfo, config dict) of a run directory; ``entry_points`` restricts who trained it."""
    run = RunDir(path)
    info, config = split_run_config(run.read_config(), str(run.config_path))
    if entry_points and info.entry_point not in entry_points:
        raise UserError(
            f"{path} was trained by {info.entry_point} ({info.model}, {info.framework}); "
            f"use python -m {info.entry_point.rsplit('.', 1)[0]}.sample for it."
            if info.entry_point.endswith(".train")
            else f"{path} was written by {info.entry_point}, not {' or '.join(entry_points)}."
        )
    return info, config


def checkpoint_for_sampling(
    run_dir: str, checkpoint: str | None, entry_points: tuple[str, ...]
) -> Path:
    """The checkpoint a ``sample`` CLI reads: ``--checkpoint`` when given, else the run's
    newest committed one; the run must have been trained by one of ``entry_points``."""
    read_run(run_dir, entry_points)
    if checkpoint:
        return Path(checkpoint)
    latest = RunDir(run_dir).latest_checkpoint()
    if latest is None:
        raise UserError(
            f"{run_dir} has no checkpoint yet (checkpoints/latest.json names none); "
            "train it past its first snapshot."
        )
    return latest


def execute(
    run: RunDir,
    job: TrainJob,
    make_trainer: Callable[[], Trainer],
    *,
    config: dict[str, Any],
    resume: bool,
    overwrite: bool = False,
    is_main: bool = True,
    barrier: Callable[[], None] = lambda: None,
) -> int:
    """Create or reopen the run, train, record how it ended; returns the exit status."""
    if not is_main:  # other ranks of a distributed run: rank 0 owns the folder
        barrier()
        trainer = make_trainer()
        try:
            train(job, trainer, resume=resume)
        finally:
            trainer.close()
        return 0
    with run.lock():
        if resume:
            entries = run.checkpoint_entries()
            at = int(entries[-1].get("nimg", 0)) if entries else 0
            if entries and at >= job.settings.total_nimg:
                print(
                    f"{run.path} is already at {at / 1000:g} kimg (asked for "
                    f"{job.settings.total_nimg / 1000:g}); nothing to do. Pass a larger --kimg "
                    "to train further.",
                    file=sys.stderr,
                )
                return 0
            stored_info, _ = split_run_config(run.read_config(), str(run.config_path))
            run.write_config(run_config(stored_info, config))  # the allowed overrides (kimg...)
        else:
            run.create(run_config(job.info, config), overwrite=overwrite)
        swept = run.sweep_temporaries()
        if swept:
            print(
                f"removed {len(swept)} unfinished checkpoint write(s) of a killed run: {', '.join(swept)}",
                file=sys.stderr,
            )
        barrier()
        trainer = make_trainer()
        run.set_status("running", kimg=None)
        try:
            outcome = train(job, trainer, resume=resume)
        except TrainingDiverged as exc:
            run.set_status("diverged", error=str(exc))
            raise
        except TrainingInterrupted as exc:
            run.set_status("interrupted", error=str(exc))
            raise
        except KeyboardInterrupt:
            msg = (
                "interrupted during a step (second Ctrl-C): no checkpoint written now; "
                f"continue with --resume {run.path} from {run.latest_checkpoint() or 'the start'}"
            )
            run.set_status("interrupted", error=msg)
            raise TrainingInterrupted(msg) from None
        except UserError as exc:
            run.set_status("failed", error=str(exc))
            raise
        except BaseException as exc:
            run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            trainer.close()
        pos = outcome.position
        state = "finished" if outcome.finished else "stopped"
        run.set_status(state, **asdict(pos), kimg=pos.nimg / 1000.0, session_s=outcome.session_s)
    print(
        f"{state} at {pos.nimg / 1000:g} kimg: {outcome.session_s:.1f} s this session, "
        f"{pos.time_s:.1f} s of training in all; {pos.skipped_steps} step(s) skipped; "
        f"run directory {run.path}",
        file=sys.stderr,
    )
    return 0
