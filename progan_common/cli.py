"""Command-line pieces shared by ``progan_torch`` and ``progan_tf`` (same flags, same rules).

Both frameworks' ``train`` and ``sample`` CLIs must behave identically for the harness,
so the config resolution (presets, overrides, what a resume may change), the phase table
printed by ``--dry-run`` and the sample CLI's arguments live here, once.
"""

from __future__ import annotations

import argparse

from gancore.config import build_config, config_from_dict, config_to_dict, overrides_from_namespace
from gancore.errors import UserError
from gancore.rundir import RunDir
from progan_common.config import PRESETS, ProGANConfig

# Fields a resumed run may change: they do not alter the training trajectory.
RESUME_OVERRIDABLE = {
    "kimg",
    "device",
    "tick_kimg",
    "snapshot_kimg",
    "keep_checkpoints",
    "compile",
    "data_root",
    "cache_dir",
    "max_bad_steps",
    "grid_size",
}


def resolve_train_config(args: argparse.Namespace) -> ProGANConfig:
    """Preset <- flags for a new run; the saved config <- allowed flags for ``--resume``."""
    overrides = overrides_from_namespace(args, ProGANConfig)
    if not args.resume:
        return build_config(ProGANConfig, PRESETS, args.preset, overrides)
    saved = config_from_dict(ProGANConfig, RunDir(args.resume).read_config())
    changed = {k for k, v in overrides.items() if getattr(saved, k) != v}
    bad = sorted(changed - RESUME_OVERRIDABLE)
    if bad or args.preset:
        raise UserError(
            f"--resume continues the saved config; these flags would change the run: "
            f"{bad or ['--preset']}. Allowed on resume: {sorted(RESUME_OVERRIDABLE)}"
        )
    values = config_to_dict(saved)
    values.update(overrides)
    return build_config(ProGANConfig, None, None, config_from_dict(ProGANConfig, values).__dict__)


def phase_table(cfg: ProGANConfig) -> str:
    """The schedule's phases up to ``cfg.kimg`` as a table (``--dry-run``)."""
    total = int(round(cfg.kimg * 1000))
    lines = [
        f"{'#':>3} {'phase':<10} {'res':>5} {'batch':>6} {'lr':>8} {'start kimg':>11} {'end kimg':>9}"
    ]
    for st in cfg.schedule().phases(total):
        end = "end" if st.phase_end_nimg is None else f"{min(st.phase_end_nimg, total) / 1000:.1f}"
        lines.append(
            f"{st.phase_index:>3} {st.phase:<10} {st.res:>5} {st.batch:>6} {st.lr:>8.4g} "
            f"{st.phase_start_nimg / 1000:>11.1f} {end:>9}"
        )
    lines.append(f"total: {cfg.kimg:g} kimg")
    return "\n".join(lines)


def progress_bar(total: int, done: int, enabled: bool):
    """The training progress bar of both ProGAN loops (images shown out of ``total``)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=min(done, total),
        unit="img",
        unit_scale=True,
        dynamic_ncols=True,
        disable=not enabled,
    )


def progress_text(state, nimg: int, loss_d: float, loss_g: float, img_per_s: float) -> str:
    """The bar's postfix: resolution, phase, alpha, kimg, losses, images/s."""
    return (
        f"{state.res}px {state.phase} a={state.alpha:.2f} kimg={nimg / 1000:.1f} "
        f"D={loss_d:.3f} G={loss_g:.3f} {img_per_s:.0f}img/s"
    )


def sample_parser(
    prog: str, description: str | None, checkpoint_help: str
) -> argparse.ArgumentParser:
    """The ``sample`` CLI's arguments (identical in both frameworks)."""
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--run", required=True, help="run directory (uses checkpoints/latest.json)")
    p.add_argument("--checkpoint", default=None, help=checkpoint_help)
    p.add_argument(
        "--n", type=int, required=True, help="images to export (rows with --interpolate)"
    )
    p.add_argument("--seed", type=int, default=0, help="latent seed S (image i uses rng([S, i]))")
    p.add_argument(
        "--out",
        required=True,
        help="output .npz (a .png grid is written beside it with --interpolate)",
    )
    p.add_argument("--batch", type=int, default=64, help="generator minibatch")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--interpolate",
        type=int,
        default=0,
        metavar="STEPS",
        help="write a latent-interpolation grid: --n rows of STEPS images (slerp)",
    )
    return p
