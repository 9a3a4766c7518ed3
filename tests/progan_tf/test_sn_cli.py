"""Every SN-ProGAN preset trains end to end through the real CLIs (``python -m
progan_torch.train`` / ``progan_tf.train``, one step per phase at tiny widths, on CPU), and an
SN-ProGAN run converts between the frameworks and samples the same images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from progan_common.config import PRESETS, ProGANConfig

ROOT = Path(__file__).resolve().parents[2]
PHASES = {"sn-progan-faces-256": 5, "sn-progan-faces-64": 9, "sn-progan-quick": 7}
STEP_KIMG = 0.004  # one step of 4 images per phase


def train(framework: str, preset: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", f"progan_{framework}.train", "--preset", preset]
    argv += ["--random-data", "--latent-dim", "8", "--fmap-base", "256", "--fmap-max", "8"]
    argv += ["--default-batch", "4", "--stabilize-kimg", str(STEP_KIMG), "--fade-kimg"]
    argv += [str(STEP_KIMG), "--kimg", f"{PHASES[preset] * STEP_KIMG:g}", "--tick-kimg"]
    argv += [str(STEP_KIMG), "--snapshot-kimg", "1", "--grid-size", "4", "--device", "cpu"]
    argv += ["--threads", "1", "--no-progress", "--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("framework", ["torch", "tf"])
@pytest.mark.parametrize("preset", sorted(PHASES))
def test_preset_trains_through_every_phase(tmp_path, preset, framework):
    proc = train(framework, preset, tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["run"]["model"] == "sn-progan" and config["run"]["framework"] == framework
    assert config["config"]["spectral_norm_g"] and config["config"]["loss"] == "nonsaturating"
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    cfg = ProGANConfig(**PRESETS[preset])
    assert [r["res"] for r in log][0] == cfg.start_res and log[-1]["res"] == cfg.max_res
    assert len(log) == PHASES[preset] and {r["model"] for r in log} == {"sn-progan"}
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in log)
    assert all(r["gp"] is None and r["grad_norm"] is None for r in log)  # no penalty
    assert all(r["skipped_steps"] == 0 for r in log)
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "finished"


def test_sn_progan_run_converts_and_samples_alike(tmp_path):
    """torch run -> progan_tf.convert -> both samplers give the same images (+-1), and back:
    the spectral-norm vectors travel with the weights."""
    import torch

    from gancore.rundir import RunDir
    from gancore.samples import load_samples
    from progan_tf import convert
    from progan_tf import sample as tf_sample
    from progan_torch import sample as torch_sample

    run, tf_run, back = tmp_path / "torch", tmp_path / "tf", tmp_path / "back"
    proc = train("torch", "sn-progan-quick", run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert convert.main(["torch-to-tf", "--run", str(run), "--out", str(tf_run)]) == 0
    for main, src, name in ((tf_sample.main, tf_run, "k"), (torch_sample.main, run, "t")):
        assert (
            main(
                [
                    "--run",
                    str(src),
                    "--n",
                    "6",
                    "--seed",
                    "4",
                    "--out",
                    str(tmp_path / f"{name}.npz"),
                ]
            )
            == 0
        )
    k, _, meta = load_samples(tmp_path / "k.npz")
    t, _, _ = load_samples(tmp_path / "t.npz")
    assert meta["res"] == 32 and np.abs(k.astype(int) - t.astype(int)).max() <= 1
    assert convert.main(["tf-to-torch", "--run", str(tf_run), "--out", str(back)]) == 0
    a = torch.load(RunDir(run).latest_checkpoint(), weights_only=True)
    b = torch.load(RunDir(back).latest_checkpoint(), weights_only=True)
    assert any(key.endswith("_u") for key in a["G_ema"])
    for part in ("G", "D", "G_ema"):
        for key, v in a[part].items():
            assert torch.equal(b[part][key], v), (part, key)
