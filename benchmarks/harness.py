"""Benchmark harness: train the grid of a profile, evaluate it, write the report.

    python -m benchmarks.harness run --profile default [--seeds N] [--data-root P] [--device D]
    python -m benchmarks.harness report --profile default
    python -m benchmarks.harness list

``run`` is resumable: run it again after an interruption and it skips finished
runs and resumes the others (see :mod:`benchmarks.runner`). ``report`` rebuilds
``reports/<profile>/`` from the run directories alone.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path

from benchmarks.commands import COMMANDS
from benchmarks.profiles import list_profiles, load_profile, profile_to_dict
from benchmarks.runner import HarnessInterrupted, Runner, describe_exit, eval_points, plan
from gancore.errors import UserError, run_cli
from gancore.helptext import HelpFormatter


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        default="default",
        help="bundled profile name (see `list`) or path to a .toml file (default: default)",
    )
    p.add_argument(
        "--runs-dir", type=Path, default=None, help="where run folders go (default: runs/<profile>)"
    )
    p.add_argument(
        "--reports-dir",
        type=Path,
        default=None,
        help="where the report goes (default: reports/<profile>)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train, evaluate and report a profile's grid (resumable)")
    _common(run)
    run.add_argument(
        "--seeds", type=int, default=None, help="use seeds 0..N-1 instead of the profile's"
    )
    run.add_argument("--data-root", default=None, help="folder with the raw data set files")
    run.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=None,
        help="device for every trainer (default: the profile's, usually auto)",
    )
    run.add_argument(
        "--only",
        default=None,
        help="comma-separated glob(s) on run names, e.g. 'progan-*' or '*-tf-s0'",
    )
    run.add_argument("--no-report", action="store_true", help="skip building the report at the end")
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="start over the runs that stopped before their first checkpoint (their log and "
        "grids are replaced); without it such a run is a failed row and nothing is deleted",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved profile and every command, run nothing",
    )
    rep = sub.add_parser("report", help="rebuild reports/<profile>/ from the run directories")
    _common(rep)
    sub.add_parser("list", help="list the bundled profiles")
    return parser


def _dirs(ns: argparse.Namespace, name: str) -> tuple[Path, Path]:
    return (ns.runs_dir or Path("runs") / name, ns.reports_dir or Path("reports") / name)


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    if ns.command == "list":
        for name in list_profiles():
            prof = load_profile(name)
            print(f"{name:16s} {prof.dataset:16s} {prof.description}")
        return 0
    profile = load_profile(ns.profile)
    runs_dir, reports_dir = _dirs(ns, profile.name)
    if ns.command == "report":
        from benchmarks.report import build_report

        if not (runs_dir / "plan.json").exists() and not any(
            (d / "config.json").exists() for d in (runs_dir.iterdir() if runs_dir.is_dir() else [])
        ):
            raise UserError(
                f"no runs of profile {profile.name!r} in {runs_dir}: nothing to report. Run "
                f"`make bench PROFILE={profile.name}` first, or pass --runs-dir."
            )
        out = build_report(profile, runs_dir, reports_dir)
        print(f"report written: {out['md']}, {out['html']}, {out['csv']}, {out['json']}")
        return 0
    profile = profile.with_overrides(seeds=ns.seeds, device=ns.device, data_root=ns.data_root)
    patterns = [p.strip() for p in ns.only.split(",")] if ns.only else None

    def only(run) -> bool:
        return patterns is None or any(fnmatch.fnmatch(run.name, p) for p in patterns)

    if patterns and not any(only(r) for r in plan(profile, runs_dir)):
        names = ", ".join(r.name for r in plan(profile, runs_dir))
        raise UserError(f"--only {ns.only!r} matches none of this profile's runs: {names}")

    if ns.dry_run:
        print(json.dumps(profile_to_dict(profile), indent=2))
        for run in filter(only, plan(profile, runs_dir)):
            print(f"\n# {run.name}")
            print(" ".join(COMMANDS.train(run, profile, resume=False)))
            for folder, kimg in eval_points(profile):
                n = profile.evaluation.num_samples
                samples = run.run_dir / "eval" / folder / "samples.npz"
                ckpt = None if kimg is None else Path(f"<checkpoint at {kimg:g} kimg>")
                print(" ".join(COMMANDS.sample(run, ckpt, n, samples, profile)))
                print(
                    " ".join(COMMANDS.evaluate(samples, samples.with_name("metrics.json"), profile))
                )
        print("\n" + estimate_text(profile, [r for r in plan(profile, runs_dir) if only(r)]))
        return 0
    try:
        records = Runner(profile, runs_dir, overwrite=ns.overwrite).run(only=only)
    except HarnessInterrupted as exc:
        print(
            f"interrupted during {exc.step}: the running trainer was asked to checkpoint and stop "
            f"({describe_exit(exc.returncode or 0)}); run the same command again to continue.",
            file=sys.stderr,
        )
        return 130
    failed = [r for r in records if r.get("state") != "finished"]
    if not ns.no_report:
        from benchmarks.report import build_report

        out = build_report(profile, runs_dir, reports_dir)
        print(f"report: {out['md']} and {out['html']}", file=sys.stderr)
    print(
        f"{len(records) - len(failed)} of {len(records)} runs finished"
        + (
            f"; failed: {', '.join(r['model'] + '-' + r['framework'] + '-s' + str(r['seed']) for r in failed)}"
            if failed
            else ""
        ),
        file=sys.stderr,
    )
    return 1 if failed else 0


def estimate_text(profile, runs) -> str:
    """Each run's images, training TFLOP and, with the profile's ``throughput_tflops``, the
    training wall-clock it implies (evaluation and start-up come on top)."""
    from benchmarks.runner import size_commands

    budget = profile.budget
    if budget.axis == "time":
        total = budget.minutes * len(runs)
        return f"# estimate: {len(runs)} runs x {budget.minutes:g} min = {total:g} min of training"
    sizes = size_commands([COMMANDS.train(r, profile, resume=False) for r in runs])
    rate = profile.throughput_tflops
    lines = [
        f"# estimate ({budget.describe()})",
        "# run                      kimg     TFLOP   train time",
    ]
    total_tflop = 0.0
    for run, size in zip(runs, sizes):
        total_tflop += size["tflop"]
        when = _minutes(size["tflop"] / rate) if rate else "-"
        lines.append(f"# {run.name:<22} {size['kimg']:>6.1f} {size['tflop']:>9.1f}   {when}")
    if rate:
        lines.append(
            f"# total: {total_tflop:.1f} TFLOP, about {_minutes(total_tflop / rate)} of training "
            f"at the profile's throughput_tflops = {rate:g} TFLOP/s (+-50%: a model's rate "
            "depends on its batch and layer sizes); evaluation and start-up come on top"
        )
    else:
        lines.append(
            f"# total: {total_tflop:.1f} TFLOP; set throughput_tflops in the profile for a "
            "wall-clock estimate"
        )
    return "\n".join(lines)


def _minutes(seconds: float) -> str:
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


if __name__ == "__main__":
    sys.exit(run_cli(main))
