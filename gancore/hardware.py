"""Describe the machine and measure memory without importing a framework."""

from __future__ import annotations

import os
import platform
import resource
import sys
from importlib import metadata


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


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def describe() -> dict[str, object]:
    """Hardware and software facts recorded beside every run and result."""
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": package_version("numpy"),
        "torch": package_version("torch"),
        "tensorflow": package_version("tensorflow"),
        "keras": package_version("keras"),
        "cpu_bf16": cpu_bf16_support(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
