"""The benchmark script runs end to end and prints its table (figures are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_bench_smoke(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "datasets.bench",
        "--res",
        "8",
        "--adapters",
        "numpy",
        "--seconds",
        "0.2",
        "--count",
        "50",
        "--no-memory-check",
        "--workdir",
        str(tmp_path),
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2]
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[1:]]
    assert [r[:2] for r in rows] == [["numpy", "8"]]
    assert all(float(r[3]) > 0 for r in rows)
