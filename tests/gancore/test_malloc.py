"""--malloc: the glibc allocator setting every trainer applies to its process."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from gancore.hardware import MALLOC_MMAP_THRESHOLD, malloc_env, tune_malloc

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: apply the mode, then malloc a 4 MiB block and report whether it came
# from the heap (below the program break) or from a separate mmap. glibc's default serves a
# 4 MiB request with mmap (its threshold starts at 128 KiB); the tuned setting keeps blocks up
# to 32 MiB in the heap, which is the whole point of it.
PROBE = """
import ctypes, sys
from gancore.hardware import tune_malloc, malloc_state
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.sbrk.restype = ctypes.c_void_p
libc.sbrk.argtypes = [ctypes.c_ssize_t]
tune_malloc(sys.argv[1])
block = libc.malloc(4 << 20)
print(malloc_state() + "|" + ("heap" if block < libc.sbrk(0) else "mmap"))
"""


def _is_glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _probe(mode: str, **env: str) -> tuple[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    clean.pop("GLIBC_TUNABLES", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **env},
        check=True,
    ).stdout.strip()
    state, where = out.rsplit("|", 1)
    return state, where


@pytest.mark.skipif(not _is_glibc(), reason="mallopt is glibc's")
def test_tuned_keeps_mid_sized_blocks_in_the_heap_and_default_leaves_glibc_alone() -> None:
    state, where = _probe("tuned")
    assert state.startswith("tuned (glibc mmap_threshold 32 MiB"), state
    assert where == "heap"
    state, where = _probe("default")
    assert (state, where) == ("default", "mmap")


@pytest.mark.skipif(not _is_glibc(), reason="mallopt is glibc's")
def test_the_environment_wins_and_malloc_env_is_the_same_setting() -> None:
    # The user's own MALLOC_* settings are left as they are (and reported as such) ...
    state, where = _probe("tuned", MALLOC_TRIM_THRESHOLD_=str(1 << 20))
    assert state.startswith("environment"), state
    # ... and malloc_env() (what benchmark peers get) has glibc do what tune_malloc does.
    state, where = _probe("default", **malloc_env())
    assert state == "default" and where == "heap"
    assert malloc_env()["MALLOC_MMAP_THRESHOLD_"] == str(MALLOC_MMAP_THRESHOLD)


def test_bad_mode_is_refused_by_the_function_and_the_configs() -> None:
    with pytest.raises(ValueError, match="malloc must be one of"):
        tune_malloc("jemalloc")
    from progan_common.config import ProGANConfig
    from vanilla_gan.config import TrainConfig

    for cls in (ProGANConfig, TrainConfig):
        with pytest.raises(
            ValueError, match=r"malloc must be one of \('tuned', 'default'\), got 'fast'"
        ):
            cls(malloc="fast").validate()
