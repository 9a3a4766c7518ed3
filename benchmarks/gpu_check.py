"""Check a GPU machine end to end in one command, and write its images/s table.

::

    make gpu-check                                  # = python -m benchmarks.gpu_check
    python -m benchmarks.gpu_check --seconds 30     # longer training rows
    python -m benchmarks.gpu_check --device cpu --seconds 5 --models dcgan --precisions fp32 \\
        --out runs/gpu-check-rehearsal.json         # a rehearsal of the same steps on a CPU

Steps, each in its own process (as the harness runs them), in this order:

1. **environment**: PyTorch's and TensorFlow's versions and the GPU each of them sees. With
   ``--device cuda`` a PyTorch that sees no GPU stops the check here with one line; a
   TensorFlow that sees none fails its rows with the reason (install the ``gpu`` extra:
   ``make install GPU=1``).
2. **training**: every model (DCGAN, SN-DCGAN, ProGAN, SN-ProGAN) x framework x precision
   (fp32, bf16) trains for ``--seconds`` of wall-clock through its real training CLI
   (``--max-minutes``): offline stacked-digits data, 32x32, the default profile's settings
   (DCGANs batch 64; ProGAN presets ``quick`` / ``sn-progan-quick`` trained at 32x32 from the
   start, ``--start-res 32``, so every row measures the same resolution). Images/s is the
   median of the run's ticks, each of which leaves out its warm-up steps (the first step of
   each shape, where the frameworks trace and compile; their seconds are ``warmup_s``).
3. **parity**: ``python -m benchmarks.device_parity`` compares PyTorch and TensorFlow on the
   device with the same weights (every model, every ProGAN level, fp32, TF32 off).
4. **torchrun**: ``torchrun --standalone --nproc_per_node 1 -m progan_torch.train`` trains a
   few hundred images and must finish with exit status 0 and one process in its log.

The JSON (default ``benchmarks/results/<device>/gpu_check.json``, ``<device>`` from the GPU's
name, e.g. ``nvidia-h200``) holds the environment, one row per training (command, exit
status, images/s, warm-up seconds, peak memory), the parity rows and the torchrun result.
The exit status is 0 when every step passed and 1 otherwise; the JSON is written either way.
With the defaults (16 trainings of 15 s, plus process start-up and tracing) the whole check
is estimated at about 7 minutes on one GPU; the CPU rehearsal of one row, parity and
torchrun takes about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.commands import HARDWARE_SNIPPET
from benchmarks.runner import child_env, last_error_line
from gancore.errors import UserError, run_cli
from gancore.helptext import HelpFormatter
from gancore.io import atomic_write_json
from gancore.rundir import RunDir

MODELS = ("dcgan", "sndcgan", "progan", "sn-progan")
FRAMEWORKS = ("torch", "tf")
PRECISIONS = {"fp32": "off", "bf16": "bf16"}
PROGAN_PRESETS = {"progan": "quick", "sn-progan": "sn-progan-quick"}
RES = 32
STARTUP_ALLOWANCE_S = 300  # a row's process start-up, data preparation and tracing

TF_PROBE = """
import json
from gancore.tf_utils import tf
info = tf.sysconfig.get_build_info()
print(json.dumps({"tensorflow": tf.__version__, "cuda": info.get("cuda_version"),
                  "cudnn": info.get("cudnn_version"),
                  "gpus": [g.name for g in tf.config.list_physical_devices("GPU")]}))
"""


def device_slug(name: str) -> str:
    """``NVIDIA H200`` -> ``nvidia-h200``: the folder name under benchmarks/results/."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def _run(argv: list[str], timeout: float) -> tuple[int, str, str, float]:
    """(exit status, stdout, stderr, seconds); a timeout is exit status 124."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=child_env())
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = 124, str(exc.stdout or ""), str(exc.stderr or "") + "\ntimed out"
    return rc, out, err, round(time.perf_counter() - t0, 1)


def _last_line(text: str) -> str:
    return last_error_line(text)[:300]


def _probe(code: str) -> dict[str, Any]:
    rc, out, err, _ = _run([sys.executable, "-c", code], timeout=180)
    if rc != 0:
        return {"error": _last_line(err) or f"exit status {rc}"}
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"unreadable probe output: {_last_line(out)!r}"}


def train_argv(
    model: str, framework: str, amp: str, args: argparse.Namespace, out: Path
) -> list[str]:
    """The real training CLI for one row: wall-clock bounded, 32x32, offline data."""
    common = [
        "--dataset",
        "stacked-digits",
        "--device",
        args.device,
        "--amp",
        amp,
        "--seed",
        "0",
        "--kimg",
        "100000",
        "--max-minutes",
        f"{args.seconds / 60:.6g}",
        "--tick-kimg",
        f"{args.tick_kimg:g}",
        "--snapshot-kimg",
        "100000",
        "--out",
        str(out),
    ]
    if model in PROGAN_PRESETS:
        module = "progan_torch.train" if framework == "torch" else "progan_tf.train"
        return [
            sys.executable,
            "-m",
            module,
            "--preset",
            PROGAN_PRESETS[model],
            "--max-res",
            str(RES),
            "--start-res",
            str(RES),
            *common,
        ]
    return [
        sys.executable,
        "-m",
        "vanilla_gan.train",
        "--model",
        model,
        "--framework",
        framework,
        "--res",
        str(RES),
        "--batch",
        "64",
        *common,
    ]


def read_ticks(run_dir: Path) -> list[dict[str, Any]]:
    """The run's tick records (``log.jsonl``), none if it never logged one."""
    if not run_dir.is_dir():
        return []
    return [r for r in RunDir(run_dir).read_log() if "img_per_s" in r]


def summarise_ticks(ticks: list[dict[str, Any]]) -> dict[str, Any]:
    """Median images/s over the ticks (each tick's rate already leaves out the warm-up steps,
    the first step of each shape, where the frameworks trace and compile)."""
    if not ticks:
        return {"img_per_s": None, "ticks": 0}
    rates = [t["img_per_s"] for t in ticks if t.get("img_per_s")]
    return {
        "img_per_s": round(statistics.median(rates), 1) if rates else None,
        "ticks": len(ticks),
        "kimg": ticks[-1].get("kimg"),
        "warmup_s": round(sum(t.get("warmup_s") or 0.0 for t in ticks), 1),
        "peak_mem_mb": max((t.get("peak_mem_mb") or 0.0) for t in ticks),
        "batch": ticks[-1].get("batch"),
        "res": ticks[-1].get("res"),
    }


def training_rows(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    rows = []
    for model in args.models:
        for framework in args.frameworks:
            for precision in args.precisions:
                out = work / f"{model}-{framework}-{precision}"
                argv = train_argv(model, framework, PRECISIONS[precision], args, out)
                print(f"train {model} {framework} {precision} ...", flush=True)
                rc, _, err, secs = _run(argv, timeout=args.seconds + STARTUP_ALLOWANCE_S)
                row: dict[str, Any] = {
                    "model": model,
                    "framework": framework,
                    "precision": precision,
                    "command": " ".join(argv[1:]),
                    "exit_status": rc,
                    "wall_s": secs,
                    **summarise_ticks(read_ticks(out)),
                }
                row["ok"] = rc == 0 and bool(row["img_per_s"])
                if rc == 0 and not row["ok"]:
                    row["error"] = (
                        "no timed step within --seconds (tracing took the whole budget): "
                        "raise --seconds or lower --tick-kimg"
                    )
                elif not row["ok"]:
                    row["error"] = _last_line(err) or f"exit status {rc}"
                print(
                    f"  {'ok' if row['ok'] else 'FAILED'}: "
                    + (f"{row['img_per_s']} img/s" if row["ok"] else row["error"]),
                    flush=True,
                )
                rows.append(row)
    return rows


def parity_step(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out = work / "parity.json"
    argv = [sys.executable, "-m", "benchmarks.device_parity", "--device", args.device]
    rc, stdout, err, secs = _run(argv + ["--json", str(out)], timeout=600)
    result: dict[str, Any] = {"exit_status": rc, "wall_s": secs, "summary": _last_line(stdout)}
    if out.is_file():
        result.update(json.loads(out.read_text(encoding="utf-8")))
    result["ok"] = rc == 0 and bool(result.get("ok"))
    if not result["ok"]:
        result["error"] = _last_line(err) or result["summary"]
    return result


def torchrun_step(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out = work / "torchrun"
    argv = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "1",
        "-m",
        "progan_torch.train",
        "--preset",
        "quick",
        "--max-res",
        "8",
        "--dataset",
        "stacked-digits",
        "--device",
        args.device,
        "--kimg",
        "0.4",
        "--tick-kimg",
        "0.2",
        "--out",
        str(out),
    ]
    rc, _, err, secs = _run(argv, timeout=600)
    ticks = read_ticks(out)
    worlds = sorted({t.get("world") for t in ticks})
    result = {
        "command": " ".join(argv[1:]),
        "exit_status": rc,
        "wall_s": secs,
        "world": worlds,
        "kimg": ticks[-1].get("kimg") if ticks else None,
    }
    result["ok"] = rc == 0 and worlds == [1] and bool(ticks)
    if not result["ok"]:
        result["error"] = _last_line(err) or f"logged worlds {worlds}"
    return result


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'model':<10} {'framework':<9} {'precision':<9} {'img/s':>9} {'warm-up s':>9}")
    for r in rows:
        rate = f"{r['img_per_s']:.1f}" if r.get("img_per_s") else "failed"
        print(
            f"{r['model']:<10} {r['framework']:<9} {r['precision']:<9} {rate:>9} "
            f"{r.get('warmup_s') or 0:>9.1f}"
        )


def _csv(text: str, allowed: tuple[str, ...] | dict[str, str], flag: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise UserError(
            f"{flag} {text!r}: expected a comma list of {', '.join(allowed)}"
            + (f"; unknown: {', '.join(bad)}" if bad else "")
            + "."
        )
    return items


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check", description=__doc__, formatter_class=HelpFormatter
    )
    p.add_argument(
        "--device",
        default="cuda",
        help="cuda (default), cuda:N, or cpu for a rehearsal of the same steps on a machine "
        "without a GPU",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=15.0,
        help="wall-clock training seconds per row (default: 15; 16 rows)",
    )
    p.add_argument(
        "--tick-kimg",
        type=float,
        default=2.0,
        help="thousands of images per logged tick; images/s is the median over the ticks "
        "after the first, so a row needs at least two (default: 2; use less on a CPU)",
    )
    p.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma list of {', '.join(MODELS)} (default: all)",
    )
    p.add_argument(
        "--frameworks", default="torch,tf", help="comma list of torch, tf (default: both)"
    )
    p.add_argument(
        "--precisions", default="fp32,bf16", help="comma list of fp32, bf16 (default: both)"
    )
    p.add_argument(
        "--skip",
        default="",
        help="comma list of steps to leave out: train, parity, torchrun (default: none)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="the JSON to write (default: benchmarks/results/<device>/gpu_check.json, "
        "<device> from the GPU's name; with --device cpu: cpu-rehearsal)",
    )
    p.add_argument(
        "--keep-runs",
        default=None,
        help="keep the training run directories in this folder (default: a temporary folder, "
        "removed at the end)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        raise UserError(f"--device must be cuda, cuda:N or cpu, got {args.device!r}.")
    if args.seconds <= 0 or args.tick_kimg <= 0:
        raise UserError("--seconds and --tick-kimg must be positive.")
    args.models = _csv(args.models, MODELS, "--models")
    args.frameworks = _csv(args.frameworks, FRAMEWORKS, "--frameworks")
    args.precisions = _csv(args.precisions, PRECISIONS, "--precisions")
    skip = _csv(args.skip, ("train", "parity", "torchrun"), "--skip") if args.skip else []

    started = time.perf_counter()
    # the harness's hardware record (machine, versions, the GPU as torch sees it)
    env: dict[str, Any] = {"host": _probe(HARDWARE_SNIPPET)}
    gpus = [env["host"]["gpu"]] if env["host"].get("cuda_available") else []
    if args.device != "cpu" and not gpus:
        raise UserError(
            "PyTorch sees no CUDA GPU here ("
            + (
                env["host"].get("torch_error")
                or env["host"].get("error")
                or f"torch {env['host'].get('torch')}"
            )
            + "); gpu-check needs one. Rehearse on this machine with --device cpu."
        )
    if "tf" in args.frameworks:
        env["tensorflow"] = _probe(TF_PROBE)
        if args.device != "cpu" and not env["tensorflow"].get("gpus"):
            print(
                "warning: TensorFlow sees no GPU; its rows will fail. Install its CUDA "
                "libraries with `make install GPU=1`.",
                file=sys.stderr,
            )
    slug = device_slug(gpus[0]) if args.device != "cpu" else "cpu-rehearsal"
    out = Path(args.out or f"benchmarks/results/{slug}/gpu_check.json")

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(args.keep_runs) if args.keep_runs else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result: dict[str, Any] = {
            "device": args.device,
            "device_name": gpus[0] if args.device != "cpu" else env["host"].get("cpu"),
            "date": time.strftime("%Y-%m-%d"),
            "seconds_per_row": args.seconds,
            "resolution": RES,
            "environment": env,
        }
        if "train" not in skip:
            result["training"] = training_rows(args, work)
            print_table(result["training"])
        if "parity" not in skip:
            print("parity ...", flush=True)
            result["parity"] = parity_step(args, work)
            print(f"  {result['parity'].get('summary') or result['parity'].get('error')}")
        if "torchrun" not in skip:
            print("torchrun, one process ...", flush=True)
            result["torchrun"] = torchrun_step(args, work)
            print(f"  {'ok' if result['torchrun']['ok'] else result['torchrun'].get('error')}")
    failed = [r for r in result.get("training", []) if not r["ok"]]
    failed += [result[k] for k in ("parity", "torchrun") if k in result and not result[k]["ok"]]
    result["ok"] = not failed
    result["wall_s"] = round(time.perf_counter() - started, 1)
    atomic_write_json(out, result)
    print(
        f"\ngpu-check {'passed' if not failed else f'FAILED ({len(failed)} steps)'} in "
        f"{result['wall_s'] / 60:.1f} min; wrote {out}"
    )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
