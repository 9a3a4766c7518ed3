"""`make gpu-check` (benchmarks.gpu_check) rehearsed on the CPU, and its pieces.

The real check needs a GPU; here the same steps run with ``--device cpu`` on one model so
the orchestration, the device parity script, the torchrun launch and the JSON are exercised
by every test run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib

from benchmarks import gpu_check
from benchmarks.device_parity import _compare

ROOT = Path(__file__).resolve().parents[2]


def test_device_slug_names_the_results_folder():
    assert gpu_check.device_slug("NVIDIA H200") == "nvidia-h200"
    assert gpu_check.device_slug("NVIDIA GeForce RTX 4090") == "nvidia-geforce-rtx-4090"
    assert gpu_check.device_slug("???") == "unknown"


def test_summary_is_the_median_tick_rate():
    ticks = [
        {"img_per_s": 10.0, "warmup_s": 5.0, "peak_mem_mb": 100, "kimg": 1, "batch": 64, "res": 32},
        {"img_per_s": 30.0, "warmup_s": 0.0, "peak_mem_mb": 120, "kimg": 2, "batch": 64, "res": 32},
        {"img_per_s": 20.0, "warmup_s": 0.0, "peak_mem_mb": 110, "kimg": 3, "batch": 64, "res": 32},
    ]
    s = gpu_check.summarise_ticks(ticks)
    assert s["img_per_s"] == 20.0 and s["warmup_s"] == 5.0 and s["peak_mem_mb"] == 120
    assert s["ticks"] == 3 and s["kimg"] == 3
    assert gpu_check.summarise_ticks([])["img_per_s"] is None


def test_parity_comparison_fails_on_a_real_difference():
    ref = np.linspace(-1, 1, 50, dtype=np.float32)
    assert _compare("same", ref, ref + 1e-6, 1e-4)["ok"]
    assert not _compare("off", ref, ref + 1e-3, 1e-4)["ok"]
    assert not _compare("nan", ref, ref * np.nan, 1e-4)["ok"]
    # tiny outputs are compared against 1e-3, not against their own scale
    small = ref * 1e-6
    assert _compare("small", small, small + 5e-8, 1e-4)["ok"]


def test_bad_lists_get_one_line_errors(capsys):
    for argv in (["--models", "dcgan,stylegan"], ["--precisions", "fp16"], ["--skip", "all"]):
        assert gpu_check.run_cli(gpu_check.main, argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_refuses_without_a_gpu(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    p = _run(["--skip", "train,parity,torchrun", "--out", str(tmp_path / "r.json")], tmp_path)
    assert p.returncode == 2
    assert "sees no CUDA GPU" in p.stderr and "--device cpu" in p.stderr
    assert not (tmp_path / "r.json").exists()


def test_cpu_rehearsal_trains_checks_parity_and_torchrun(tmp_path):
    out = tmp_path / "check.json"
    p = _run(
        [
            "--device",
            "cpu",
            "--seconds",
            "6",
            "--tick-kimg",
            "0.064",
            "--models",
            "dcgan",
            "--frameworks",
            "torch",
            "--precisions",
            "fp32",
            "--out",
            str(out),
        ],
        tmp_path,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    result = json.loads(out.read_text())
    assert result["ok"] and result["device"] == "cpu"
    (row,) = result["training"]
    assert row["model"] == "dcgan" and row["ok"] and row["img_per_s"] > 0
    assert row["res"] == 32 and row["batch"] == 64
    assert "--max-minutes" in row["command"]
    parity = result["parity"]
    assert parity["ok"] and len(parity["rows"]) >= 20  # 4 models, every ProGAN level
    assert all(r["max_abs_diff"] < 1e-3 for r in parity["rows"])
    assert result["torchrun"]["ok"] and result["torchrun"]["world"] == [1]
    assert "img/s" in p.stdout and "passed" in p.stdout


def test_makefile_installs_the_gpu_extra_only_when_asked():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("tensorflow[and-cuda]") for d in extras["optional-dependencies"]["gpu"])
    if shutil.which("make") is None:
        pytest.skip("no make")

    def install_line(gpu: str) -> str:
        p = subprocess.run(
            ["make", "-n", "-B", "install", f"GPU={gpu}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return next(ln for ln in p.stdout.splitlines() if "-e '" in ln)

    assert "-e '.[dev,gpu]'" in install_line("1")
    assert "-e '.[dev]'" in install_line("0")
    p = subprocess.run(["make", "-n", "gpu-check"], cwd=ROOT, capture_output=True, text=True)
    assert "benchmarks.gpu_check" in p.stdout
