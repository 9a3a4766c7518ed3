"""Training throughput (images/s) per resolution and phase, on random data, for either framework.

::

    python -m progan_torch.bench --preset cifar10 --steps 8
    python -m progan_tf.bench --preset cifar10 --steps 6 --json runs/bench-tf.json

Each row sets the trainer to a stage (stabilising: alpha 1; fading: alpha 0.5), runs
``--warmup`` untimed steps (tracing, compilation, allocator warm-up) and then ``--steps`` timed
full training steps (D step with gradient penalty, EMA, G step) through the same
:class:`gancore.train.protocol.Trainer` interface the training loop uses. Images/s counts reals
shown per second, the quantity the official code reports. The data are deterministic random
uint8 images, so the figures measure the framework and the model, not the input pipeline. Every
row records the precision (``--amp``) and whether the CPU has native bf16.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from gancore.config import add_dataclass_arguments, build_config, overrides_from_namespace
from gancore.errors import UserError
from gancore.hardware import code_version, describe, malloc_state, minor_faults
from gancore.helptext import HelpFormatter
from gancore.io import atomic_write_json, output_file
from gancore.latents import RandomSource, step_randoms
from gancore.train.protocol import Trainer
from gancore.train.stages import Stage
from progan_common.config import PRESETS, ProGANConfig

# profiler(run_step, n): runs run_step(0..n-1) under the framework's profiler and returns
# {"self_cpu_ms_per_step", "convolution_share", "top": [{"op", "self_cpu_ms_per_step",
# "calls_per_step"}, ...]} (see progan_torch.bench.profile_ops)
Profiler = Callable[[Callable[[int], None], int], dict]


def build_parser(
    prog: str, description: str | None = None, row_options: bool = True
) -> argparse.ArgumentParser:
    """The bench's parser: ``--preset``, ``--res``, ``--batch`` and every ProGAN configuration
    flag; with ``row_options`` also this bench's ``--steps``, ``--warmup``, ``--phases``,
    ``--json`` and ``--profile`` (a command timing otherwise adds its own)."""
    p = argparse.ArgumentParser(
        prog=prog, description=description or __doc__, formatter_class=HelpFormatter
    )
    p.add_argument(
        "--preset",
        default="cifar10",
        choices=sorted(PRESETS),
        help="named settings; flags given override them (default: cifar10, the configuration "
        "of the speed tables in the READMEs)",
    )
    p.add_argument(
        "--res",
        default=None,
        help="comma list of resolutions (default: every one from 4 to --max-res)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="minibatch for every resolution (default: the schedule's)",
    )
    if row_options:
        p.add_argument("--steps", type=int, default=20, help="timed steps per row (default: 20)")
        p.add_argument(
            "--warmup",
            type=int,
            default=3,
            help="untimed steps per row: tracing, compilation (default: 3)",
        )
        p.add_argument(
            "--phases",
            default="stabilize,fade",
            help="which phases to time (default: stabilize,fade)",
        )
        p.add_argument(
            "--json", default=None, help="also write the rows (and the machine) to this file"
        )
        p.add_argument(
            "--profile",
            type=int,
            default=0,
            metavar="N",
            help="PyTorch only: after each row's timed steps, run N more under torch.profiler and "
            "print the operators with the most self CPU time per step and the convolutions' share "
            "(also in the JSON rows as 'profile'); the profiler slows the steps it records",
        )
    add_dataclass_arguments(
        p,
        ProGANConfig,
        group_title="ProGAN configuration",
        defaults=("the cifar10 preset", PRESETS["cifar10"]),
        alternatives={f"--preset {n}": v for n, v in PRESETS.items() if n != "cifar10"},
    )
    return p


def stage_for(res: int, phase: str, batch: int, lr: float) -> Stage:
    return Stage(
        nimg=0,
        res=res,
        level=res.bit_length() - 3,
        phase=phase,
        alpha=0.5 if phase == "fade" else 1.0,
        batch=batch,
        lr=lr,
        phase_index=0,
        phase_start_nimg=0,
        phase_end_nimg=None,
    )


def step_runner(cfg: ProGANConfig, trainer: Trainer, source: RandomSource, res: int, b: int):
    """``run(i)``: training step number ``i`` at ``res``, batch ``b`` (the trainer already set
    to that stage): the random reals and latents of image position ``i * b``, so every
    framework and every repeat gets the same inputs for the same ``i``."""

    def run(i: int) -> None:
        reals, _ = source.batch(res, i * b, b)
        randoms = dict(zip(("z_d", "z_g", "u"), step_randoms(cfg.seed, i * b, b, cfg.latent_dim)))
        trainer.step(reals, None, randoms)  # returns floats: every step is synced

    return run


def bench_rows(
    cfg: ProGANConfig,
    trainer: Trainer,
    resolutions: list[int],
    phases: list[str],
    steps: int,
    warmup: int,
    batch: int | None = None,
    sync: Callable[[], None] = lambda: None,
    profile_steps: int = 0,
    profiler: Profiler | None = None,
) -> list[dict]:
    source = RandomSource(channels=3, seed=cfg.seed)
    sched = cfg.schedule()
    rows = []
    for res in resolutions:
        for phase in phases:
            if phase == "fade" and res == 4:
                continue
            b = batch or sched.batch_for(res)
            trainer.set_stage(stage_for(res, phase, b, sched.lr_for(res)))
            trainer.reset_optimizers()
            elapsed, faults = 0.0, 0
            one_step = step_runner(cfg, trainer, source, res, b)

            for i in range(warmup + steps):
                sync()
                f0, t0 = minor_faults(), time.perf_counter()
                one_step(i)
                if i >= warmup:
                    elapsed += time.perf_counter() - t0
                    faults += minor_faults() - f0
            rows.append(
                {
                    "res": res,
                    "phase": phase,
                    "batch": b,
                    "img_per_s": steps * b / elapsed,
                    "step_ms": 1000 * elapsed / steps,
                    "peak_mem_mb": trainer.peak_mem_mb(),
                    # the process's minor page faults per step (--malloc's target)
                    "page_faults_per_step": faults / steps,
                }
            )
            print(
                f"{res:5d} {phase:9s} batch {b:4d} {rows[-1]['img_per_s']:10.1f} img/s "
                f"{rows[-1]['step_ms']:9.1f} ms/step {faults / steps:9.0f} page faults/step",
                flush=True,
            )
            if profile_steps and profiler is not None:
                first = warmup + steps
                summary = profiler(lambda j, f=first, run=one_step: run(f + j), profile_steps)
                rows[-1]["profile"] = summary
                print(
                    f"      profile ({profile_steps} steps): {summary['self_cpu_ms_per_step']:.1f} "
                    f"ms/step of operator time, convolutions "
                    f"{100 * summary['convolution_share']:.0f}%; top operators, self CPU ms/step:"
                )
                for op in summary["top"]:
                    print(
                        f"        {op['self_cpu_ms_per_step']:8.2f}  {op['calls_per_step']:6.1f} "
                        f"calls  {op['op']}"
                    )
    return rows


def resolutions_and_phases(args: argparse.Namespace, cfg: ProGANConfig) -> tuple[list, list]:
    """``--res`` (default: every level) and ``--phases``, checked."""
    levels = cfg.max_res.bit_length() - 2
    try:
        res = [int(r) for r in args.res.split(",")] if args.res else []
    except ValueError:
        raise UserError(f"--res takes a comma list of resolutions, got {args.res!r}") from None
    res = res or [4 * 2**k for k in range(levels)]
    if any(r < 4 or r > cfg.max_res or r & (r - 1) for r in res):
        raise UserError(f"--res must be powers of two between 4 and max-res {cfg.max_res}")
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not phases or set(phases) - {"stabilize", "fade"}:
        raise UserError("--phases takes stabilize and/or fade")
    return res, phases


def main(
    argv: list[str] | None,
    prog: str,
    framework: str,
    make_trainer: Callable[[ProGANConfig], Trainer],
    sync: Callable[[], None] = lambda: None,
    profiler: Profiler | None = None,
) -> int:
    args = build_parser(prog).parse_args(argv)
    if args.profile < 0:
        raise UserError(f"--profile takes a number of steps >= 0, got {args.profile}")
    if args.profile and profiler is None:
        raise UserError(
            f"--profile is PyTorch's (torch.profiler); {prog} has none: use "
            "python -m progan_torch.bench, or TensorFlow's own profiler through TensorBoard"
        )
    if args.steps < 1 or args.warmup < 0:
        raise UserError("--steps must be >= 1 and --warmup >= 0")
    if args.json:
        output_file(args.json, "--json", "bench.json")  # before the timing, not after it
    over = overrides_from_namespace(args, ProGANConfig)
    cfg = build_config(ProGANConfig, PRESETS, args.preset, over)
    res, phases = resolutions_and_phases(args, cfg)
    machine = describe()
    print(
        f"{prog}: preset {args.preset}, max_res {cfg.max_res}, latent {cfg.latent_dim}, channels "
        f"{[cfg.channels_at(r) for r in res]}, amp {cfg.amp} (CPU native bf16: "
        f"{machine['cpu_bf16']}), compile {cfg.compile}, threads {cfg.threads or 'default'}, "
        f"malloc {cfg.malloc}"
    )
    trainer = make_trainer(cfg)
    rows = bench_rows(
        cfg,
        trainer,
        res,
        phases,
        args.steps,
        args.warmup,
        args.batch,
        sync,
        args.profile,
        profiler,
    )
    for row in rows:
        row.update(
            framework=framework,
            amp=cfg.amp,
            cpu_bf16=machine["cpu_bf16"],
            compile=cfg.compile,
            malloc=malloc_state(),  # what the trainer applied (--malloc, or the environment)
        )
    if args.json:
        atomic_write_json(
            args.json,
            {
                "framework": framework,
                "preset": args.preset,
                "config": over,
                "rows": rows,
                "hardware": machine,
                "code": code_version(),
            },
        )
        print(f"wrote {args.json}")
    return 0
