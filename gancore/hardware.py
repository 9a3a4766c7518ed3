"""Describe the machine and measure memory without importing a framework."""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bf16_support() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX): where it does, torch's
    and XLA's CPU kernels run bf16 convolutions faster than fp32; elsewhere they emulate it."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def onednn_uses_amx() -> bool:
    """Whether oneDNN (torch's CPU convolutions) will use AMX: the CPU has AMX-BF16 and
    ``ONEDNN_MAX_CPU_ISA`` (oneDNN's own switch, read once per process) does not cap it below."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return "amx_bf16" in cpu_flags() and (not cap or "AMX" in cap or cap == "ALL")


# --malloc tuned: glibc's mallopt(3) parameters (numbers from malloc.h) and the values set.
# Why: glibc serves blocks above its mmap threshold (128 KiB at start, raised as mmapped blocks
# are freed) with fresh mmaps, and returns free memory at the top of its heap to the kernel
# beyond a trim threshold tied to it. A training step allocates and frees many 0.1-30 MiB
# tensors, so with those defaults part of its working set is page-faulted in again every step:
# on the 2-core development CPU 1,200-1,500 minor page faults per ProGAN step at 4x4 and
# 1,900-3,100 at 8x8 (`python -m progan_torch.bench --res 4,8 --malloc default` prints them),
# 6-53 with these settings, which made those steps 1.06x / 1.02x and a 64x64 DCGAN step 1.09x
# as fast (README, "Flags every trainer shares"). Keeping blocks up to 32 MiB (glibc's ceiling
# for this parameter on 64-bit) in the heap and trimming only above 256 MiB of free top removes
# those faults; the cost is up to 256 MiB of freed memory the process keeps.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MALLOC_MMAP_THRESHOLD = 32 << 20
MALLOC_TRIM_THRESHOLD = 256 << 20
MALLOC_MODES = ("tuned", "default")
_malloc_state = "default"


def malloc_env() -> dict[str, str]:
    """The environment variables that give another (unmodified) program the same glibc
    settings as ``tune_malloc("tuned")``: for benchmark peers run as their own process."""
    return {
        "MALLOC_MMAP_THRESHOLD_": str(MALLOC_MMAP_THRESHOLD),
        "MALLOC_TRIM_THRESHOLD_": str(MALLOC_TRIM_THRESHOLD),
    }


def _malloc_from_env() -> bool:
    """Whether the user set glibc's malloc parameters themselves (their choice wins)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return "glibc.malloc." in tunables or any(
        k.startswith("MALLOC_") and k.endswith("_") for k in os.environ
    )


def tune_malloc(mode: str) -> str:
    """Apply ``--malloc`` to this process (see the comment above); returns what now holds,
    as :func:`malloc_state` reports it. ``default`` changes nothing; ``tuned`` sets glibc's
    mmap and trim thresholds once (process-wide, so anything else running in the process
    gets them too), unless the environment already sets malloc parameters or the C library
    is not glibc."""
    global _malloc_state
    if mode not in MALLOC_MODES:
        raise ValueError(f"malloc must be one of {MALLOC_MODES}, got {mode!r}")
    if mode == "default" or _malloc_state != "default":
        return _malloc_state
    if _malloc_from_env():
        _malloc_state = "environment (MALLOC_* / GLIBC_TUNABLES)"
        return _malloc_state
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError where it is not glibc
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return _malloc_state  # not glibc: nothing to tune
    if mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD) == 1 and (
        mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD) == 1
    ):
        _malloc_state = (
            f"tuned (glibc mmap_threshold {MALLOC_MMAP_THRESHOLD >> 20} MiB, "
            f"trim_threshold {MALLOC_TRIM_THRESHOLD >> 20} MiB)"
        )
    return _malloc_state


def malloc_state() -> str:
    """This process's allocator setting: ``default``, ``tuned (...)`` or ``environment``."""
    return _malloc_state


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# The packages whose versions change results or speed; recorded beside every result.
RECORDED_PACKAGES = ("torch", "torchvision", "tensorflow", "keras", "numpy", "torch-fidelity")
CONSTRAINTS_FILE = Path(__file__).resolve().parents[1] / "constraints.txt"


def _norm(name: str) -> str:
    """Distribution names compare case-insensitively with - _ . alike (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict[str, str]:
    """Every installed distribution's version by normalised name (one scan of sys.path)."""
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            out.setdefault(_norm(name), dist.version)
    return out


def read_constraints(path: Path = CONSTRAINTS_FILE) -> dict[str, str]:
    """``name==version`` pins of a pip constraints file (comments and other lines ignored)."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            pins[_norm(name.split("[")[0].strip())] = version.split(";")[0].strip()
    return pins


def constraints_status(installed: dict[str, str], path: Path = CONSTRAINTS_FILE) -> str:
    """Which known-good set this environment is: ``unpinned`` when the repository has no
    constraints file; else its hash and whether every pinned package is at its pin."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        pins = read_constraints(path)
    except (OSError, UnicodeDecodeError):
        return "unpinned"
    off = [
        f"{n} {installed.get(n, 'missing')} != {v}"
        for n, v in sorted(pins.items())
        if installed.get(n) is not None and installed[n] != v
    ]
    if not off:
        return f"{path.name} sha256:{digest} (every installed pinned package matches)"
    shown = "; ".join(off[:5]) + (f"; {len(off) - 5} more" if len(off) > 5 else "")
    return f"{path.name} sha256:{digest}, but {len(off)} differ: {shown}"


def describe() -> dict[str, object]:
    """Hardware and software facts recorded beside every run and result.

    Reads package metadata only: nothing here imports torch or tensorflow."""
    installed = installed_versions()
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        **{name: installed.get(_norm(name)) for name in RECORDED_PACKAGES},
        "constraints": constraints_status(installed),
        "cpu_bf16": cpu_bf16_support(),
        "onednn_amx": onednn_uses_amx(),  # bf16 convolutions on AMX tiles: another speed class
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_subset(n: int) -> list[int]:
    """The first ``n`` CPUs this process may run on (all of them when ``n`` <= 0)."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus if n <= 0 else cpus[:n]


def bench_cpus(threads: int) -> list[int] | None:
    """The CPUs a speed benchmark pins each implementation to for ``--threads N``: the first
    N (see :func:`pinned_to`); None (unpinned) for ``--threads 0``, the frameworks' defaults."""
    return cpu_subset(threads) if threads > 0 else None


def pinned_to(cpus: list[int]):
    """A ``preexec_fn`` for ``subprocess``: the child and every thread and process it starts run
    on ``cpus`` only. The speed benchmarks pin each implementation to ``--threads N`` CPUs so
    that helpers outside the compute threads (``main.py``'s data-loader worker process, our
    prefetch thread) share those CPUs too, and "N CPUs each" means the same for every side."""
    return lambda: os.sched_setaffinity(0, cpus)


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, all its threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def minor_faults() -> int:
    """Minor page faults of this process so far (memory the kernel had to map in)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def rss_anon_mb() -> float | None:
    """Current anonymous resident memory (RssAnon) in MiB; file-backed pages excluded."""
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def code_version(root: Path | None = None) -> dict[str, object]:
    """The commit of this repository's checkout and whether tracked files differ from it:
    recorded in every benchmark JSON, so each figure names the code that produced it (None
    for both outside a git checkout, e.g. an unpacked archive)."""
    root = Path(__file__).resolve().parents[1] if root is None else root
    commit = git_commit(root)
    if commit is None:
        return {"commit": None, "dirty": None}
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        )
    except OSError:
        return {"commit": commit, "dirty": None}
    return {"commit": commit, "dirty": bool(out.stdout.strip()) if out.returncode == 0 else None}


def git_commit(path: Path) -> str | None:
    """The checked-out commit of a clone (a benchmark peer's), None when it is not one."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None
