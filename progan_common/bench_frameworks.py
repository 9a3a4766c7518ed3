"""TensorFlow / PyTorch ProGAN training speed (or two PyTorch implementations), measured in
alternating rounds.

::

    python -m progan_common.bench_frameworks --preset cifar10 --res 4,8,16,32 --rounds 8
    python -m progan_common.bench_frameworks --res 16 --rounds 10 --steps 4 --json tf_vs_torch.json
    python -m progan_common.bench_frameworks --compare torch:autograd-penalty,torch --res 8,16,32

Running ``python -m progan_torch.bench`` and then ``python -m progan_tf.bench`` compares two
moments of a shared machine as much as two frameworks: the development machine's speed drifts
by 10-20% within minutes. Here each framework gets one worker process, built once (trainer,
traced steps) and kept for the whole run. The parent asks the two in turn for short timed
windows of ``--steps`` training steps, swapping which one goes first every round, and reports
for every resolution and phase the median over the rounds of the per-round ratio
TensorFlow / PyTorch, with its range and each framework's median images/s. While one worker
is timed the other waits on its pipe. Each window is preceded by ``--rewarm`` untimed steps
(the other process ran in between); the first window of a stage by ``--warmup`` steps
(tracing, compilation) instead.

The steps are those of ``python -m progan_torch.bench`` / ``python -m progan_tf.bench`` (same
trainers, stage set-up and random data; the two windows of a round run the same step
numbers, hence the same inputs), and every configuration flag outside ``--compare`` applies to
both workers.

``--compare A,B`` chooses the two sides (default ``torch,tf``) and the ratio reported is B / A.
A side is ``torch``, ``tf``, or ``torch:VARIANT``: PyTorch with one implementation choice
switched back to the same-function alternative it replaced (``progan_torch.variants``), so
``--compare torch:VARIANT,torch`` measures what that choice buys. ``--compare torch,torch``
measures the noise of the method itself. A side may end in configuration flags for that side
alone, in brackets: ``--compare 'torch[--no-fused-scale],torch'`` measures what the fused
resampling layers buy (``'tf[--no-fused-scale],tf'`` in TensorFlow), ``'torch,torch[--amp
bf16]'`` what bf16 does. The flags that decide the rows (``--max-res``, ``--start-res``, the batch
sizes) and the run's own options (``--res``, ``--steps``, ...) are refused there; the JSON
records, per side, the configuration fields its worker ran with that differ from the command
line's (``side_config``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gancore.config import build_config, overrides_from_namespace
from gancore.errors import UserError, run_cli
from gancore.hardware import code_version, describe
from gancore.io import atomic_write_json, output_file
from gancore.latents import RandomSource
from progan_common import bench
from progan_common.config import PRESETS, ProGANConfig

FRAMEWORKS = ("torch", "tf")
DEFAULT_COMPARE = "torch,tf"  # the ratio reported is the second's speed over the first's


def split_sides(text: str) -> list[str]:
    """``--compare``'s value split at the commas outside a side's ``[...]`` flags."""
    sides, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if depth not in (0, 1):
            break
        if ch == "," and depth == 0:
            sides.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise UserError(
            f"--compare {text!r}: unbalanced brackets; a side's flags go in one pair of "
            "brackets at its end, e.g. torch[--no-fused-scale],torch"
        )
    sides.append(text[start:].strip())
    return sides


def parse_side(side: str) -> tuple[str, str | None, list[str]]:
    """``FRAMEWORK[:VARIANT][[FLAGS]]`` -> (framework, variant or None, configuration flags);
    UserError if unknown. ``torch[--no-fused-scale]`` is PyTorch with that flag added to the
    command line's configuration for this side only."""
    from progan_torch.variants import VARIANTS  # no torch import: a plain table

    name, flags = side, []
    if "[" in side or "]" in side:
        name, bracket, inner = side.partition("[")
        if not bracket or not inner.endswith("]") or "[" in inner[:-1] or "]" in inner[:-1]:
            raise UserError(
                f"--compare: {side!r}: a side's flags go in one pair of brackets at its end, "
                "e.g. torch[--no-fused-scale]"
            )
        flags = shlex.split(inner[:-1])
        if not flags:
            raise UserError(f"--compare: {side!r} has empty brackets; leave them out")
    fw, _, variant = name.partition(":")
    if fw not in FRAMEWORKS:
        raise UserError(f"--compare: {side!r} is not torch, tf or torch:VARIANT")
    if not variant:
        return fw, None, flags
    if fw != "torch" or variant not in VARIANTS:
        raise UserError(
            f"--compare: no variant {side!r}; the variants are PyTorch's: "
            + ", ".join(f"torch:{v}" for v in VARIANTS)
        )
    return fw, variant, flags


def _compare_help() -> str:
    from progan_torch.variants import VARIANTS

    return (
        "the two sides, A,B; the ratio reported is B / A (default: torch,tf). A side is torch, "
        "tf, or torch:VARIANT, PyTorch with one implementation choice switched back to the "
        "same-function alternative it replaced: "
        + "; ".join(f"{k}: {v.what}" for k, v in VARIANTS.items())
        + ". Either kind of side may end in configuration flags for that side only, in "
        "brackets (quote them for the shell): 'torch[--no-fused-scale],torch' measures the "
        "fused resampling layers, 'tf[--no-fused-scale],tf' TensorFlow's. Flags that change "
        "the rows (--max-res, --start-res, the batch sizes) are refused there"
    )


def build_parser():
    p = bench.build_parser(
        "python -m progan_common.bench_frameworks", description=__doc__, row_options=False
    )
    p.add_argument(
        "--steps",
        type=int,
        default=4,
        help="timed steps per window, i.e. per framework per round (default: 4)",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="untimed steps before a stage's first window: tracing, compilation (default: 3)",
    )
    p.add_argument(
        "--phases",
        default="stabilize",
        help="which phases to time (default: stabilize; or stabilize,fade)",
    )
    p.add_argument(
        "--json",
        default=None,
        help="also write every round, the medians and the machine to this file",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="rounds per resolution and phase; each round times one window of each framework, "
        "their order swapped every round (default: 6)",
    )
    p.add_argument(
        "--rewarm",
        type=int,
        default=1,
        help="untimed steps before every later window, after the other framework's (default: 1)",
    )
    p.add_argument("--compare", default=DEFAULT_COMPARE, help=_compare_help())
    p.add_argument("--worker", default=None, help="internal: run as a worker")
    return p


# ----------------------------------------------------------------------------- worker
def _worker(args, cfg: ProGANConfig) -> int:
    """Build one framework's trainer, then answer timing requests, one JSON line each."""
    proto = os.fdopen(os.dup(1), "w")  # the answers; anything else printed goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    fw, variant, _ = parse_side(args.worker)  # its flags are already in the command line
    if fw == "torch":
        from progan_torch.bench import make_trainer

        try:
            trainer = make_trainer(cfg, variant)
        except ValueError as e:  # a variant that does not apply to this precision
            raise UserError(str(e)) from None
    else:
        from progan_tf.bench import make_trainer

        trainer = make_trainer(cfg)
    source = RandomSource(channels=3, seed=cfg.seed)
    sched = cfg.schedule()
    current: tuple[int, str] | None = None
    run = None
    # the configuration this worker built (its side's flags included), for the parent's record
    print(json.dumps({"ready": args.worker, "config": _plain(cfg)}), file=proto, flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("quit"):
            break
        res, phase, b = req["res"], req["phase"], req["batch"]
        if current != (res, phase):
            trainer.set_stage(bench.stage_for(res, phase, b, sched.lr_for(res)))
            trainer.reset_optimizers()
            run, current = bench.step_runner(cfg, trainer, source, res, b), (res, phase)
        first = req["first"]
        for i in range(first - req["untimed"], first):
            run(i)
        t0 = time.perf_counter()
        for i in range(first, first + req["steps"]):
            run(i)
        seconds = time.perf_counter() - t0
        print(json.dumps({"seconds": seconds}), file=proto, flush=True)
    return 0


# ----------------------------------------------------------------------------- parent
class _Worker:
    def __init__(self, side: str, argv: list[str]) -> None:
        self.framework, _, flags = parse_side(side)
        self.side = side
        env = {**os.environ}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        cmd = [sys.executable, "-m", "progan_common.bench_frameworks", *argv, *flags]
        cmd += ["--worker", side]
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.config = self._read()["config"]  # {"ready": side, "config": its configuration}

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise UserError(
                f"the {self.side} worker exited (status {code}) before answering; its "
                "messages are above. Check that `python -m progan_"
                f"{self.framework}.bench` runs with the same options."
            )
        return json.loads(line)

    def time_window(self, req: dict) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return float(self._read()["seconds"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def _parent(
    args, cfg: ProGANConfig, argv: list[str], res_list: list[int], phases, sides: list[str]
) -> int:
    sched = cfg.schedule()
    machine = describe()
    first_side, second_side = sides
    print(
        f"python -m progan_common.bench_frameworks: {second_side} / {first_side}, preset "
        f"{args.preset}, max_res {cfg.max_res}, latent {cfg.latent_dim}, amp {cfg.amp}, threads "
        f"{cfg.threads or 'default'}, {args.rounds} rounds of {args.steps} timed steps per side; "
        "starting the workers",
        flush=True,
    )
    workers: list[_Worker] = []
    rows: list[dict[str, Any]] = []
    try:
        for side in sides:
            workers.append(_Worker(side, argv))
        for res in res_list:
            for phase in phases:
                if phase == "fade" and res == 4:
                    continue
                b = args.batch or sched.batch_for(res)
                rounds = []
                for r in range(args.rounds):
                    order = (0, 1) if r % 2 == 0 else (1, 0)
                    # the same step numbers for both (same inputs); warm-up before the first
                    untimed = args.warmup if r == 0 else args.rewarm
                    first = r * (args.steps + args.rewarm) + args.warmup
                    speed = [0.0, 0.0]
                    req = dict(
                        res=res,
                        phase=phase,
                        batch=b,
                        first=first,
                        untimed=untimed,
                        steps=args.steps,
                    )
                    for k in order:
                        speed[k] = args.steps * b / workers[k].time_window(req)
                    rounds.append(
                        {"first": sides[order[0]], "img_per_s": speed, "ratio": speed[1] / speed[0]}
                    )
                ratios = [x["ratio"] for x in rounds]
                row = {
                    "res": res,
                    "phase": phase,
                    "batch": b,
                    "median_ratio": statistics.median(ratios),
                    "min_ratio": min(ratios),
                    "max_ratio": max(ratios),
                    "median_img_per_s": [
                        statistics.median(x["img_per_s"][k] for x in rounds) for k in (0, 1)
                    ],
                    "rounds": rounds,
                }
                rows.append(row)
                print(
                    f"{res:5d} {phase:9s} batch {b:4d}  {second_side} / {first_side} median "
                    f"{row['median_ratio']:.3f} (rounds {row['min_ratio']:.3f}-"
                    f"{row['max_ratio']:.3f}); img/s {first_side} "
                    f"{row['median_img_per_s'][0]:.1f}, {second_side} "
                    f"{row['median_img_per_s'][1]:.1f}",
                    flush=True,
                )
    finally:
        for w in workers:
            w.close()
    if args.json:
        base = _plain(cfg)
        atomic_write_json(
            args.json,
            {
                "method": (
                    "one persistent worker process per side; per round one timed window of "
                    "--steps steps each, order swapped every round; ratio = the second side's "
                    "img/s / the first's per round, median over rounds"
                ),
                "compare": sides,
                # per side, the configuration fields its worker ran with that differ from the
                # command line's (its bracketed flags; empty for a side without any)
                "side_config": {
                    w.side: {k: v for k, v in w.config.items() if v != base.get(k)} for w in workers
                },
                "preset": args.preset,
                "config": overrides_from_namespace(args, ProGANConfig),
                "options": {
                    k: getattr(args, k) for k in ("steps", "warmup", "rewarm", "rounds", "batch")
                },
                "rows": rows,
                "hardware": machine,
                "code": code_version(),
            },
        )
        print(f"wrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.rewarm < 0 or args.rounds < 1:
        raise UserError("--steps and --rounds must be >= 1, --warmup and --rewarm >= 0")
    cfg = build_config(
        ProGANConfig, PRESETS, args.preset, overrides_from_namespace(args, ProGANConfig)
    )
    if args.worker:
        return _worker(args, cfg)
    sides = split_sides(args.compare)
    if len(sides) != 2:
        raise UserError(f"--compare takes two sides, A,B, got {args.compare!r}")
    res, phases = bench.resolutions_and_phases(args, cfg)
    for side in sides:
        _check_side(argv, side, args, cfg)
    if args.json:
        output_file(args.json, "--json", "tf_vs_torch.json")
    return _parent(args, cfg, argv, res, phases, sides)


# Flags a side may not change: the parent decides the rows (resolutions, batch) from the
# command line's configuration, for both sides alike.
_ROW_FIELDS = ("max_res", "start_res", "batch_sizes", "default_batch")


def _plain(cfg: ProGANConfig) -> dict[str, Any]:
    """The configuration as JSON values (what a worker reports)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def _check_side(argv: list[str], side: str, args, cfg: ProGANConfig) -> None:
    """Check one ``--compare`` side before any worker starts: its bracketed flags against
    the command line, its variant against its own precision."""
    _, variant, flags = parse_side(side)
    own_cfg = cfg
    if flags:
        own_args, unknown = build_parser().parse_known_args([*argv, *flags])
        if unknown:
            raise UserError(
                f"--compare {side}: unknown flags {' '.join(unknown)}; a side takes the "
                "configuration flags listed by --help"
            )
        changed = {k for k, v in vars(own_args).items() if getattr(args, k, object()) != v}
        fields = set(overrides_from_namespace(own_args, ProGANConfig))
        if changed - fields:
            raise UserError(
                f"--compare {side}: only configuration flags go in a side's brackets; "
                f"{', '.join('--' + k.replace('_', '-') for k in sorted(changed - fields))} "
                "belong to the whole run: give them outside --compare"
            )
        own_cfg = build_config(
            ProGANConfig, PRESETS, own_args.preset, overrides_from_namespace(own_args, ProGANConfig)
        )
        rows = set(_ROW_FIELDS) & {k for k in changed if getattr(own_cfg, k) != getattr(cfg, k)}
        if rows:
            raise UserError(
                f"--compare {side}: {', '.join(sorted(rows))} must be the same on both sides "
                "(they decide the rows): give them outside --compare"
            )
    if variant is not None:
        from progan_torch.variants import check

        try:
            check(variant, own_cfg.amp)
        except ValueError as e:
            raise UserError(f"--compare {side}: {e}") from None


if __name__ == "__main__":
    sys.exit(run_cli(main))
