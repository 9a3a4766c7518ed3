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


def test_bench_json_records_rows_rounds_and_versions(tmp_path: Path) -> None:
    import json

    out_json = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "datasets.bench", "--res", "8", "--adapters", "numpy"]
    cmd += ["--seconds", "0.1", "--count", "30", "--no-memory-check", "--rounds", "2"]
    cmd += ["--workdir", str(tmp_path), "--json", str(out_json)]
    out = subprocess.run(
        cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2]
    )
    assert out.returncode == 0, out.stderr
    assert "median of 2 interleaved rounds" in out.stdout
    data = json.loads(out_json.read_text())
    (row,) = data["rows"]
    assert row["adapter"] == "numpy" and row["res"] == 8 and len(row["img_per_s_all"]) == 2
    assert sorted(m["round"] for m in data["all_measurements"]) == [0, 1]
    hw = data["hardware"]
    assert {"python", "numpy", "torch", "tensorflow", "torch-fidelity", "constraints"} <= set(hw)
    assert list(tmp_path.iterdir()) == [out_json]  # the synthetic caches were cleaned up
