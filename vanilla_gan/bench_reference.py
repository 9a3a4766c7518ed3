"""DCGAN training speed against pytorch/examples ``dcgan/main.py`` itself, on the same machine.

::

    git clone https://github.com/pytorch/examples /tmp/pytorch-examples
    python -m vanilla_gan.bench_reference --peer-main /tmp/pytorch-examples/dcgan/main.py \\
        --res 64 --iters 20 --rounds 2 --threads 1 --json dcgan_vs_examples_64.json

The peer runs unchanged from its own checkout (nothing of it enters this repository): its own
``ImageFolder`` data loader with one worker (``--workers 1``) on a folder of PNGs written for
the run, ``--batchSize 64 --ngf 64 --ndf 64 --niter 1``, CPU (no ``--accel``), its intra-op
threads capped with ``OMP_NUM_THREADS`` when ``--threads`` is given. It has no timer of its own,
so it is timed by its log: it prints one ``[epoch/niter][i/len]`` line after every iteration,
and this script stamps each line on arrival; images/s = ``batch * iters /`` the time between
the line of iteration ``warmup`` and the last one. The data set holds exactly
``(warmup + iters + 1) * batch`` images, so the window holds training iterations only (the example
saves sample images at iterations 0, 100, ... and checkpoints after the epoch, outside it).

With ``--threads N`` every implementation's process (the peer's data-loader worker and our
prefetch thread included) is also pinned to the same N CPUs, so "N CPUs each" holds for every
side. Each row records the cores its process kept busy in the window.

Our trainers run through the real training command (``vanilla_gan.train``: prepared-data
stream, prefetch, latents, the loop) on the same images, same batch and widths, and print one
line after each training step, stamped and windowed the same way (their default tick and
snapshot intervals fall after the window). Implementations alternate within each round, each in
its own process; every row records the load average before and after.

``main.py``'s networks are fixed to 64x64 (a 32x32 input reaches D's last 4x4 convolution at
2x2 and fails), so this comparison exists at 64x64 only; ``vanilla_gan.bench --frameworks
torch-ref,...`` compares 32x32 against an in-repository imitation of its loop.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench_reference.py` from inside vanilla_gan/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from gancore.errors import UserError, run_cli
from gancore.hardware import MALLOC_MODES, bench_cpus, git_commit, malloc_env, pinned_to
from gancore.helptext import HelpFormatter

ROOT = Path(__file__).resolve().parents[1]
PEER = "pytorch/examples dcgan/main.py"
# ours -> (vanilla_gan.train's --framework, its extra flags): TensorFlow without / with XLA
FRAMEWORKS = {
    "torch": ("torch", []),
    "tf": ("tf", []),
    "tf-graph": ("tf", ["--no-jit-compile"]),  # the plain tf.function graph, whatever --amp
    "tf-xla": ("tf", ["--jit-compile"]),  # XLA, whatever the device
}
# main.py's per-iteration log line: "[epoch/niter][i/len(dataloader)] Loss_D: ..."
PEER_LINE = re.compile(r"^\[(\d+)/\d+\]\[(\d+)/\d+\] Loss_D")


def write_images(folder: Path, n: int, res: int, seed: int = 0) -> None:
    """``n`` smooth random RGB PNGs in ``folder/0/`` (ImageFolder wants a class folder)."""
    from PIL import Image

    (folder / "0").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        base = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        Image.fromarray(base).resize((res, res), Image.BILINEAR).save(folder / "0" / f"{i:05d}.png")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far, all its threads (``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stamped_lines(
    cmd: list[str], env: dict[str, str], cwd: Path, pattern, cpus: list[int] | None = None
) -> tuple[list, str]:
    """Run ``cmd`` (pinned to ``cpus`` when given); return ``[(index, arrival time, the
    process's CPU seconds so far)]`` for stdout lines matching ``pattern`` (group 1 = the
    iteration index) and the tail of stderr."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
            cwd=cwd,
            bufsize=1,
            preexec_fn=pinned_to(cpus) if cpus else None,
        )
        stamps = []
        assert proc.stdout is not None
        for line in proc.stdout:
            m = pattern.match(line)
            if m:
                now = time.perf_counter()
                stamps.append((int(m.group(m.lastindex)), now, process_cpu_seconds(proc.pid)))
        proc.wait()
        err.seek(0)
        tail = err.read()[-3000:]
    if proc.returncode:
        raise UserError(f"{' '.join(cmd[:4])} ... failed (exit {proc.returncode}):\n{tail}")
    return stamps, tail


def window_rate(stamps: list[tuple], warmup: int, batch: int) -> dict:
    """Images/s between the line of iteration ``warmup`` and the last line, and the cores the
    process kept busy meanwhile (its CPU seconds / wall seconds, every thread counted; a child
    process such as main.py's data-loader worker not)."""
    timed = [s for s in stamps if s[0] >= warmup]
    if len(timed) < 2:
        raise UserError(f"only {len(stamps)} iterations logged; raise --iters")
    (i0, t0, c0), (i1, t1, c1) = timed[0], timed[-1]
    cores = None if c0 is None or c1 is None else (c1 - c0) / (t1 - t0)
    return {
        "iters": i1 - i0,
        "seconds": t1 - t0,
        "img_per_s": (i1 - i0) * batch / (t1 - t0),
        "cores_busy": cores,
    }


def _cores(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def thread_env(threads: int) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    if threads > 0:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def run_peer(args, data: Path, work: Path) -> dict:
    cmd = [sys.executable, "-u", str(args.peer_main), "--dataset", "folder"]
    cmd += ["--dataroot", str(data), "--imageSize", str(args.res), "--batchSize", str(args.batch)]
    cmd += ["--ngf", str(args.width), "--ndf", str(args.width), "--niter", "1", "--workers", "1"]
    cmd += ["--outf", str(work / "peer-out"), "--manualSeed", "0"]
    env = thread_env(args.threads)
    if args.malloc == "tuned":  # the setting our trainers apply to themselves (--malloc)
        env.update(malloc_env())
    stamps, _ = stamped_lines(cmd, env, work, PEER_LINE, bench_cpus(args.threads))
    return window_rate(stamps, args.warmup, args.batch)


def run_ours(args, framework: str, data: Path, work: Path, tag: str) -> dict:
    n_steps = args.warmup + args.iters + 1
    name, extra = FRAMEWORKS[framework]
    train_args = ["--model", "dcgan", "--framework", name, *extra]
    train_args += ["--dataset", f"folder:{data}"]
    train_args += ["--cache-dir", str(work / "cache"), "--res", str(args.res)]
    train_args += ["--batch", str(args.batch), "--width", str(args.width), "--seed", "0"]
    train_args += ["--kimg", str(n_steps * args.batch / 1000), "--threads", str(args.threads)]
    train_args += ["--device", "cpu", "--amp", args.amp, "--malloc", args.malloc, "--no-progress"]
    train_args += ["--out", str(work / f"run-{tag}")]
    cmd = [sys.executable, "-m", "vanilla_gan.bench_reference", "--worker", json.dumps(train_args)]
    step_line = re.compile(r"^STEP (\d+)")
    stamps, _ = stamped_lines(
        cmd, thread_env(args.threads), ROOT, step_line, bench_cpus(args.threads)
    )
    # STEP k is printed after step k (1-based); iteration index = k - 1, as the peer's i.
    return window_rate([(k - 1, t, c) for k, t, c in stamps], args.warmup, args.batch)


class _Timed:
    """A trainer that prints ``STEP k`` after its k-th training step (everything else passes
    through), so the parent stamps our steps exactly as it stamps the peer's log lines."""

    def __init__(self, inner) -> None:
        self._inner, self._n = inner, 0

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def step(self, *args, **kwargs):
        out = self._inner.step(*args, **kwargs)
        self._n += 1
        print(f"STEP {self._n}", flush=True)
        return out


def worker(train_args: list[str]) -> int:
    from vanilla_gan import train

    make = train.make_trainer
    train.make_trainer = lambda cfg, channels: _Timed(make(cfg, channels))
    return train.main(train_args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vanilla_gan.bench_reference",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--peer-main", type=Path, help="path of pytorch/examples' dcgan/main.py")
    p.add_argument("--peer-commit", default=None, help="its commit (default: git rev-parse)")
    p.add_argument("--res", type=int, default=64, help="image size (main.py supports 64 only)")
    p.add_argument("--batch", type=int, default=64, help="minibatch (main.py --batchSize)")
    p.add_argument("--width", type=int, default=64, help="ngf = ndf")
    p.add_argument("--iters", type=int, default=20, help="timed iterations per run")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations first")
    p.add_argument("--rounds", type=int, default=2, help="interleaved repeats (medians)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="N > 0: every implementation's process uses N threads and is pinned to N CPUs, its "
        "data loading included; 0: unpinned, the frameworks' defaults",
    )
    p.add_argument(
        "--malloc",
        default="tuned",
        choices=MALLOC_MODES,
        help="the CPU allocator setting of both sides: our trainers' --malloc, and for "
        "main.py the same glibc thresholds as environment variables (tuned) or none (default)",
    )
    p.add_argument(
        "--frameworks",
        default="torch,tf",
        help="ours to time: torch, tf (the training default: XLA on a GPU, the plain graph on "
        "a CPU), tf-graph / tf-xla (tf without / with XLA, whatever the device)",
    )
    p.add_argument("--amp", default="off", choices=("off", "bf16"), help="our trainers' --amp")
    p.add_argument("--no-peer", action="store_true", help="time only ours (e.g. --amp pairs)")
    p.add_argument("--json", default=None, help="also write rows, medians and ratios here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    frameworks = [f for f in args.frameworks.split(",") if f]
    if set(frameworks) - set(FRAMEWORKS) or args.rounds < 1 or args.iters < 1 or args.warmup < 1:
        raise UserError(
            f"--frameworks takes {','.join(FRAMEWORKS)}; --rounds, --iters, --warmup must be >= 1"
        )
    if args.json:
        from gancore.io import output_file

        output_file(args.json, "--json", "dcgan_vs_examples.json")  # before the timing
    impls = ([] if args.no_peer else ["examples"]) + frameworks
    commit = None
    if not args.no_peer:
        if args.peer_main is None or not args.peer_main.is_file():
            raise UserError(
                "--peer-main must name pytorch/examples' dcgan/main.py (git clone "
                "https://github.com/pytorch/examples /tmp/pytorch-examples), or pass --no-peer"
            )
        if args.res != 64:
            raise UserError("main.py's networks are fixed to 64x64: use --res 64 (or --no-peer)")
        commit = args.peer_commit or git_commit(args.peer_main.parent)
    from gancore.hardware import code_version, describe

    rows = []
    with tempfile.TemporaryDirectory(prefix="dcgan-vs-examples-") as tmp:
        work = Path(tmp)
        data = work / "images"
        # One iteration past the window's end: the window spans exactly --iters iterations.
        write_images(data, (args.warmup + args.iters + 1) * args.batch, args.res)
        for rnd in range(args.rounds):
            for impl in impls:
                load0 = os.getloadavg()
                tag = f"{impl}-{rnd}"
                if impl == "examples":
                    res = run_peer(args, data, work)
                else:
                    res = run_ours(args, impl, data, work, tag)
                row = {"round": rnd, "impl": impl, **res, "load_before": load0}
                row["load_after"] = os.getloadavg()
                row["amp"] = "off" if impl == "examples" else args.amp
                row["malloc"] = args.malloc
                rows.append(row)
                print(
                    f"round {rnd + 1} {impl:9s} {res['img_per_s']:8.1f} img/s "
                    f"({res['iters']} iters in {res['seconds']:.1f} s; "
                    f"{_cores(res['cores_busy'])} cores busy; load "
                    f"{load0[0]:.1f} -> {row['load_after'][0]:.1f})",
                    flush=True,
                )
    medians = {i: float(np.median([r["img_per_s"] for r in rows if r["impl"] == i])) for i in impls}
    ratios = {}
    base = "examples" if "examples" in medians else None
    for impl in frameworks:
        if base:
            ratios[f"{impl}/examples"] = medians[impl] / medians[base]
            print(f"{impl}/examples = {ratios[f'{impl}/examples']:.2f}x (medians)")
    machine = describe()
    print(
        f"res {args.res}, batch {args.batch}, width {args.width}, threads {args.threads}, "
        f"amp {args.amp}, malloc {args.malloc} (both sides), CPU bf16 {machine['cpu_bf16']}"
    )
    if args.json:
        from gancore.io import atomic_write_json

        atomic_write_json(
            args.json,
            {
                "peer": None if args.no_peer else {"name": PEER, "commit": commit},
                "method": "per-iteration log lines stamped on arrival; window from iteration "
                "--warmup to the last; each implementation in its own process, interleaved, "
                "pinned to the CPUs in `cpus` (when --threads > 0); cores_busy: the process's "
                "CPU seconds in the window / its wall seconds",
                "cpus": bench_cpus(args.threads),
                "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "rows": rows,
                "median_img_per_s": medians,
                "ratios": ratios,
                "hardware": machine,
                "code": code_version(),
            },
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
