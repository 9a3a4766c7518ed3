"""Train DCGAN or SN-DCGAN in PyTorch or TensorFlow/Keras.

    python -m vanilla_gan.train --model dcgan --framework torch --dataset stacked-digits \\
        --res 32 --kimg 100 --batch 64 --seed 0 --out runs/dcgan-torch
    python -m vanilla_gan.train --resume runs/dcgan-torch      # continue exactly
    python -m vanilla_gan.train --model sndcgan --framework tf --dry-run

Settings resolve as: dataclass defaults <- the model's preset (``--model``; add
``--quick`` for a seconds-long smoke run) <- flags given on the command line.
Only the chosen framework is imported (torch and tensorflow never share this
process).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

if __package__ in (None, ""):  # `python train.py` from inside vanilla_gan/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gancore.config import (  # noqa: E402
    add_dataclass_arguments,
    build_config,
    config_from_dict,
    format_config,
    overrides_from_namespace,
)
from gancore.errors import UserError, run_cli  # noqa: E402
from gancore.rundir import RunDir  # noqa: E402
from vanilla_gan.config import PRESETS, TrainConfig, preset_for  # noqa: E402

# Settings that may change when resuming (everything else is fixed by config.json).
RESUMABLE_OVERRIDES = (
    "kimg",
    "snapshot_kimg",
    "keep_checkpoints",
    "tick_kimg",
    "device",
    "threads",
    "xla_legacy_cpu_runtime",
    "tensorboard",
    "debug_nan_at_kimg",
)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m vanilla_gan.train",
        description="Train DCGAN (Radford et al. 2016) or SN-DCGAN (Miyato et al. 2018, "
        "standard CNN) with PyTorch or TensorFlow 2/Keras 3. Writes a run directory: "
        "config.json, log.jsonl, checkpoints/ (latest.json), samples/*.png, "
        "status.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--out", help="run directory to create (required unless --resume/--dry-run)")
    ap.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its "
        "latest checkpoint (model, optimisers, EMA, data and latent position); "
        f"only {', '.join('--' + k.replace('_', '-') for k in RESUMABLE_OVERRIDES)} "
        "may be changed",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"apply the 'quick' preset on top of the model preset: {PRESETS['quick']}",
    )
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="reuse --out even if it already holds a run (deletes its checkpoints)",
    )
    ap.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    ap.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    add_dataclass_arguments(ap, TrainConfig, group_title="training configuration")
    return ap


def resolve(ns: argparse.Namespace) -> TrainConfig:
    overrides = overrides_from_namespace(ns, TrainConfig)
    if ns.resume:
        cfg_dict = RunDir(ns.resume).read_config()
        fixed = set(overrides) - set(RESUMABLE_OVERRIDES)
        changed = sorted(k for k in fixed if overrides[k] != cfg_dict.get(k))
        if changed:
            raise UserError(
                f"--resume keeps the run's config; cannot change {changed}. "
                "Start a new run with --out instead."
            )
        base = config_from_dict(TrainConfig, cfg_dict).__dict__
        return build_config(TrainConfig, None, None, {**base, **overrides})
    model = overrides.get("model", TrainConfig.model)
    if model not in PRESETS:
        raise UserError(f"unknown --model {model!r}; choose dcgan or sndcgan")
    presets = {"resolved": preset_for(model, quick=ns.quick)}
    return build_config(TrainConfig, presets, "resolved", overrides)


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    cfg = resolve(ns)
    if ns.dry_run:
        print(format_config(cfg))
        return 0
    if not ns.resume and not ns.out:
        raise UserError("--out RUN_DIR is required for a new run (or pass --resume RUN_DIR).")

    if cfg.tensorboard and not importlib.util.find_spec("tensorboard"):
        # Both torch's SummaryWriter and tf.summary.scalar need it; it is not a dependency.
        raise UserError(
            "--tensorboard needs the 'tensorboard' package (pip install tensorboard), "
            "or leave --tensorboard off."
        )

    from vanilla_gan.rundata import open_stream, read_run, run_config_dict

    run = RunDir(ns.resume or ns.out)
    source, channels = open_stream(cfg)
    if ns.resume:
        _, _, run_channels = read_run(run.path)
        if run_channels != channels:
            raise UserError(
                f"data set now has {channels} channels, the run was trained with {run_channels}."
            )
        run_dict = run.read_config()
        run_dict.update({k: getattr(cfg, k) for k in RESUMABLE_OVERRIDES})
        from gancore.io import atomic_write_json

        atomic_write_json(run.config_path, run_dict)
    else:
        run.create(run_config_dict(cfg, channels), overwrite=ns.overwrite)

    if cfg.framework == "torch":
        from vanilla_gan.torch_loop import TorchTrainer as Trainer
    else:
        from vanilla_gan.tf_loop import TFTrainer as Trainer
    from vanilla_gan.loop import TrainingDiverged, run_training

    trainer = Trainer(cfg, channels, device=cfg.device)
    if cfg.tensorboard:
        trainer.tb_dir = run.path / "tensorboard"
    try:
        state = run_training(
            cfg, run, trainer, source, resume=bool(ns.resume), progress=not ns.no_progress
        )
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: checkpoint written; continue with --resume {run.path}", file=sys.stderr
        )
        return 130
    print(f"finished: {state['nimg'] / 1000:.3f} kimg in {state['time_s']:.1f} s -> {run.path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
