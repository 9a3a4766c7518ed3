"""Read-throughput and memory benchmark of the prepared cache (prints figures; not a test).

    python -m datasets.bench                      # 32 and 256 with numpy/torch/tf, plus the
                                                  # CelebA-HQ-sized memory check at 1024
    python -m datasets.bench --res 32 --adapters torch --seconds 2
    python -m datasets.bench --res 32,256 --adapters torch,tf --rounds 3 --json runs/data-bench.json

Each (adapter, resolution) runs in its own subprocess so that one framework's
memory does not count against another. Memory is RssAnon from
/proc/self/status (gancore.hardware.rss_anon_mb): pages of the memory-mapped
cache are file-backed and reclaimable, so they are not counted, which is
the point of the memmap design. The memory check streams a CelebA-HQ-sized
30,000 x 1024^2 cache (a sparse file, all zeros: 94 GB apparent, ~0 on disk) through the
PyTorch adapter and, when it is measured, the tf.data one, and prints the peak RssAnon.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from datasets.cache import FORMAT_VERSION, MANIFEST, PreparedDataset, array_file
from gancore.errors import UserError, run_cli
from gancore.hardware import code_version, describe, rss_anon_mb
from gancore.helptext import HelpFormatter
from gancore.io import atomic_write_json, output_file

DEFAULT_COUNTS = {32: 20000, 64: 10000, 128: 4000, 256: 2000, 1024: 30000}
DEFAULT_BATCH = {32: 64, 64: 64, 128: 64, 256: 32, 512: 16, 1024: 4}
ADAPTERS = ("numpy", "torch", "tf")


def synthetic_cache(folder: Path, res: int, count: int, sparse: bool) -> Path:
    """A minimal prepared cache with one resolution: random pixels, or a sparse zero file."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / MANIFEST).exists():
        return folder
    mm = np.lib.format.open_memmap(
        folder / array_file(res), mode="w+", dtype=np.uint8, shape=(count, res, res, 3)
    )  # numpy seeks to the end: sparse
    if not sparse:
        rng = np.random.default_rng(0)
        step = max(1, (64 << 20) // (res * res * 3))
        for i in range(0, count, step):
            n = min(step, count - i)
            mm[i : i + n] = rng.integers(0, 256, size=(n, res, res, 3), dtype=np.uint8)
    mm.flush()
    del mm
    atomic_write_json(
        folder / MANIFEST,
        {
            "format_version": FORMAT_VERSION,
            "name": f"synthetic-{res}",
            "count": count,
            "channels": 3,
            "resolutions": [res],
            "max_res": res,
            "labels": {"present": False},
            "arrays": {
                str(res): {"file": array_file(res), "shape": [count, res, res, 3], "sha256": ""}
            },
        },
    )
    return folder


class _PeakSampler:
    def __init__(self) -> None:
        self.peak = rss_anon_mb() or 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_anon_mb() or 0.0)

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return max(self.peak, rss_anon_mb() or 0.0)


def worker(path: Path, adapter: str, res: int, batch: int, seconds: float) -> dict:
    """Stream batches through one adapter for ``seconds``; images/s and RssAnon figures."""
    ds = PreparedDataset(path)
    if adapter == "numpy":
        from datasets.stream import ImageStream

        stream = ImageStream(ds, seed=0, mirror=True)
        pos = [0]

        def step():
            stream.batch(res, pos[0], batch)
            pos[0] += batch
    elif adapter == "torch":
        from datasets.torch_adapter import TorchBatches

        it = TorchBatches(ds, res, batch, seed=0, mirror=True)
        step = lambda: next(it)  # noqa: E731
    elif adapter == "tf":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from datasets.tf_adapter import tf_dataset

        tf_it = iter(tf_dataset(ds, res, batch, seed=0, mirror=True))
        step = lambda: next(tf_it)  # noqa: E731
    else:
        raise UserError(f"unknown adapter {adapter!r}")
    step()  # warm-up: imports, thread start, first pages
    base = rss_anon_mb() or 0.0
    sampler = _PeakSampler()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += batch
    dt = time.perf_counter() - t0
    return {
        "adapter": adapter,
        "res": res,
        "batch": batch,
        "images": n,
        "img_per_s": round(n / dt, 1),
        "rss_anon_mb_after_warmup": round(base, 1),
        "rss_anon_mb_peak": round(sampler.stop(), 1),
    }


def _positive_ints(flag: str, text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise UserError(f"{flag} takes comma-separated integers, got {text!r}") from exc
    if not values or any(v < 4 or v & (v - 1) for v in values):
        raise UserError(f"{flag} takes powers of two >= 4 such as 32,256, got {text!r}")
    return values


def check_args(ns: argparse.Namespace) -> tuple[list[int], list[str]]:
    """Every flag checked before any cache is written (one-line errors, exit 2)."""
    resolutions = _positive_ints("--res", ns.res)
    adapters = [a.strip() for a in ns.adapters.split(",") if a.strip()]
    unknown = sorted(set(adapters) - set(ADAPTERS))
    if not adapters or unknown:
        raise UserError(f"--adapters: choose from {','.join(ADAPTERS)}, got {ns.adapters!r}")
    if not (math.isfinite(ns.seconds) and ns.seconds > 0):
        raise UserError(f"--seconds must be a positive number, got {ns.seconds}")
    if ns.count is not None and ns.count < 1:
        raise UserError(f"--count must be 1 or more, got {ns.count}")
    if ns.rounds < 1:
        raise UserError(f"--rounds must be 1 or more, got {ns.rounds}")
    if ns.workdir is not None and not Path(ns.workdir).is_dir():
        what = "is not a folder" if Path(ns.workdir).exists() else "does not exist"
        raise UserError(f"--workdir {ns.workdir} {what}; create it first or leave --workdir out.")
    if ns.json is not None:
        check_writable_file("--json", ns.json)
    return resolutions, adapters


def check_writable_file(flag: str, value: str) -> None:
    """``value`` can be written: not a folder; its folder is created when missing, as every
    CLI does for its outputs (checked before measuring)."""
    if not value.strip():
        raise UserError(f"{flag} {value!r} is not a file path; give one such as bench.json.")
    output_file(value, flag, "bench.json")


def run_worker(path: Path, adapter: str, res: int, batch: int, seconds: float) -> dict:
    """One measurement in a fresh process; a failure is a row with its error, not a crash."""
    cmd = [sys.executable, "-m", "datasets.bench", "--worker", str(path), adapter]
    out = subprocess.run(cmd + [str(res), str(batch), str(seconds)], capture_output=True, text=True)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"adapter": adapter, "res": res, "batch": batch, "error": last[:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m datasets.bench",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--res", default="32,256", help="resolutions to time (default: 32,256)")
    p.add_argument(
        "--adapters", default="numpy,torch,tf", help="which readers (default: all three)"
    )
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    p.add_argument(
        "--count",
        type=int,
        default=None,
        help="images per synthetic cache (default: 20000 at 32, 2000 at 256)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the whole plan this many times, interleaved, and report each "
        "measurement's median (ratios from one run are fairer on a busy machine)",
    )
    p.add_argument(
        "--no-memory-check",
        action="store_true",
        help="skip the CelebA-HQ-sized (30,000 x 1024^2, sparse) RssAnon check",
    )
    p.add_argument(
        "--workdir", default=None, help="existing folder for the synthetic caches (default: temp)"
    )
    p.add_argument("--json", default=None, help="also write the figures, machine and versions here")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    p.add_argument(
        "--worker",
        nargs=5,
        metavar=("PATH", "ADAPTER", "RES", "BATCH", "SECONDS"),
        help=argparse.SUPPRESS,
    )
    ns = p.parse_args(argv)
    if ns.worker:
        path, adapter, res, batch, seconds = ns.worker
        print(json.dumps(worker(Path(path), adapter, int(res), int(batch), float(seconds))))
        return 0
    resolutions, adapters = check_args(ns)
    plan = [(a, r) for r in resolutions for a in adapters]
    if not ns.no_memory_check:  # the framework adapters stream the CelebA-HQ-sized cache too
        plan += [(a, 1024) for a in ("torch", "tf") if a in adapters or a == "torch"]
    plan = list(dict.fromkeys(plan))  # --res 1024 and the memory check: measured once
    if ns.dry_run:
        for a, r in plan:
            print(f"{a:6s} {r}x{r} batch {DEFAULT_BATCH.get(r, 16)} for {ns.seconds} s")
        return 0
    results: dict[tuple[str, int], list[dict]] = {key: [] for key in plan}
    with tempfile.TemporaryDirectory(prefix="ganbench-bench-", dir=ns.workdir) as tmp:
        print(
            f"{'adapter':8s} {'res':>5s} {'batch':>5s} {'img/s':>10s} {'RssAnon MB (warm / peak)':>26s}"
        )
        for rnd in range(ns.rounds):
            for adapter, res in plan:
                memory_check = res == 1024 and adapter != "numpy" and not ns.no_memory_check
                count = (
                    DEFAULT_COUNTS.get(res, 2000) if ns.count is None or memory_check else ns.count
                )
                path = synthetic_cache(Path(tmp) / f"r{res}-{count}", res, count, memory_check)
                r = run_worker(path, adapter, res, DEFAULT_BATCH.get(res, 16), ns.seconds)
                r.update(round=rnd, count=count, sparse_cache=memory_check)
                results[(adapter, res)].append(r)
                _print_row(r, memory_check, ns.rounds)
    rows = [_median_row(results[key]) for key in plan]
    if ns.rounds > 1:
        print(f"median of {ns.rounds} interleaved rounds:")
        for r in rows:
            _print_row(r, r.get("sparse_cache", False), 1)
    if ns.json:
        atomic_write_json(
            ns.json,
            {
                "command": "python -m datasets.bench "
                + " ".join(sys.argv[1:] if argv is None else argv),
                "seconds": ns.seconds,
                "rounds": ns.rounds,
                "rows": rows,
                "all_measurements": [r for key in plan for r in results[key]],
                "load_average": list(os.getloadavg()),
                "hardware": describe(),
                "code": code_version(),
            },
        )
        print(f"wrote {ns.json}")
    return 0


def _print_row(r: dict, memory_check: bool, rounds: int) -> None:
    tag = "  (CelebA-HQ-sized sparse cache)" if memory_check else ""
    if rounds > 1:
        tag += f"  [round {r.get('round', 0) + 1}]"
    if "error" in r:
        print(f"{r['adapter']:8s} {r['res']:5d} failed: {r['error']}", flush=True)
        return
    print(
        f"{r['adapter']:8s} {r['res']:5d} {r['batch']:5d} {r['img_per_s']:10.0f} "
        f"{r['rss_anon_mb_after_warmup']:12.0f} / {r['rss_anon_mb_peak']:<8.0f}{tag}",
        flush=True,
    )


def _median_row(measurements: list[dict]) -> dict:
    """The measurement with the median images/s (an actual run, so its memory figures fit)."""
    ok = sorted((m for m in measurements if "error" not in m), key=lambda m: m["img_per_s"])
    if not ok:
        return measurements[-1]
    row = dict(ok[(len(ok) - 1) // 2])
    row["img_per_s_all"] = [m["img_per_s"] for m in measurements if "error" not in m]
    return row


if __name__ == "__main__":
    sys.exit(run_cli(main))
