"""Command-line pieces every ``train`` CLI shares: run-control flags, config resolution with
presets and resume rules, and what a dry run prints.

Every trainer takes the same run-control flags (``RUN_FLAGS``) and the same loop flags from
its config (``LOOP_FLAGS``), with the same meaning; ``tests/test_docs.py`` checks both lists
against every trainer's ``--help``.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

from gancore.config import build_config, config_from_dict, config_to_dict, overrides_from_namespace
from gancore.errors import UserError
from gancore.rundir import RunDir
from gancore.train.schema import split_run_config

T = TypeVar("T")

RUN_FLAGS = ("--out", "--resume", "--overwrite", "--dry-run", "--no-progress", "--preset")
LOOP_FLAGS = (
    "--dataset",
    "--data-root",
    "--cache-dir",
    "--mirror",
    "--kimg",
    "--max-minutes",
    "--seed",
    "--device",
    "--threads",
    "--malloc",
    "--amp",
    "--tensorboard",
    "--tick-kimg",
    "--snapshot-kimg",
    "--keep-checkpoints",
    "--grid-size",
    "--max-bad-steps",
    "--max-abs-loss",
)

# Fields a resumed run may change: none alters the training trajectory.
RESUME_OVERRIDABLE = frozenset(
    {
        "kimg",
        "tflop",
        "max_minutes",
        "device",
        "threads",
        "malloc",
        "tick_kimg",
        "snapshot_kimg",
        "keep_checkpoints",
        "grid_size",
        "max_bad_steps",
        "max_abs_loss",
        "tensorboard",
        "data_root",
        "cache_dir",
        "compile",
        "jit_compile",
        "xla_legacy_cpu_runtime",
        "debug_nan_kimg",
    }
)


def add_run_arguments(
    parser: argparse.ArgumentParser,
    presets: dict[str, Any],
    preset_help: str,
    config_cls: type | None = None,
) -> None:
    """The run-control flags of every trainer (``--resume``'s help names the flags of
    ``config_cls`` a resumed run may change)."""
    changeable = sorted(RESUME_OVERRIDABLE)
    if config_cls is not None:
        fields = {f.name: f for f in dataclasses.fields(config_cls)}
        changeable = [k for k in changeable if k in fields and not fields[k].metadata.get("hidden")]
    parser.add_argument("--preset", default=None, choices=sorted(presets), help=preset_help)
    parser.add_argument(
        "--out",
        default=None,
        metavar="RUN_DIR",
        help="run directory to create, e.g. runs/NAME (required for a new run)",
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its newest readable checkpoint, exactly where it "
        "stopped; of its settings only "
        + ", ".join("--" + k.replace("_", "-") for k in changeable)
        + " may change",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in --out even if it holds one (its checkpoints, grids and log go)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved config (ProGAN: and its phase table), the training compute "
        "and a time estimate from a few steps timed here; write nothing and exit",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (logs are still written)"
    )


def check_run_arguments(ns: argparse.Namespace) -> None:
    if ns.resume and ns.out:
        raise UserError("pass either --out (a new run) or --resume (an existing one), not both.")
    if not ns.dry_run and not ns.out and not ns.resume:
        raise UserError("--out RUN_DIR is required for a new run (or --resume RUN_DIR).")


def resolve_config(
    cls: type[T],
    presets: dict[str, dict[str, Any]],
    ns: argparse.Namespace,
    base_preset: dict[str, Any] | None = None,
) -> T:
    """dataclass defaults <- ``base_preset`` <- ``--preset`` <- flags, for a new run; for
    ``--resume``, the saved config <- the flags allowed to change (others are refused)."""
    overrides = overrides_from_namespace(ns, cls)
    if not ns.resume:
        values = dict(base_preset or {})
        if ns.preset:
            values.update(presets[ns.preset])
        return build_config(cls, {"_": values}, "_", overrides)
    _, saved_dict = split_run_config(RunDir(ns.resume).read_config(), f"{ns.resume}/config.json")
    saved = config_from_dict(cls, saved_dict)
    changed = sorted(k for k, v in overrides.items() if getattr(saved, k) != v)
    bad = [k for k in changed if k not in RESUME_OVERRIDABLE]
    if bad or ns.preset:
        flags = ["--" + k.replace("_", "-") for k in bad] or ["--preset"]
        raise UserError(
            f"--resume continues the saved config; {', '.join(flags)} would change the run. "
            "Start a new run with --out instead."
        )
    values = config_to_dict(saved)
    values.update(overrides)
    return build_config(cls, None, None, config_from_dict(cls, values).__dict__)
