"""The train / sample / bench command lines: flags, dry run, end-to-end run and resume."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gancore.errors import UserError
from gancore.rundir import RunDir
from progan_torch import train as train_cli

TINY = [
    "--max-res",
    "8",
    "--latent-dim",
    "8",
    "--fmap-base",
    "32",
    "--fmap-max",
    "8",
    "--default-batch",
    "4",
    "--stabilize-kimg",
    "0.008",
    "--fade-kimg",
    "0.008",
    "--tick-kimg",
    "0.008",
    "--snapshot-kimg",
    "0.012",
    "--grid-size",
    "4",
    "--device",
    "cpu",
    "--no-progress",
]


def test_help_lists_every_config_field(capsys):
    with pytest.raises(SystemExit):
        train_cli.main(["--help"])
    out = capsys.readouterr().out
    for flag in [
        "--dataset",
        "--preset",
        "--max-res",
        "--kimg",
        "--seed",
        "--out",
        "--resume",
        "--dry-run",
        "--no-pixelnorm",
        "--no-equalized-lr",
        "--mbstd-group",
        "--no-ema",
        "--no-growing",
        "--spectral-norm-d",
        "--conditional",
        "--start-res",
        "--amp",
    ]:
        assert flag in out


def test_dry_run_prints_config_and_phases(capsys):
    assert train_cli.main(["--preset", "cifar10", "--kimg", "1000", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"gp_gamma": 750.0' in out
    assert "fade" in out and "400.0" in out and "total: 1000 kimg" in out


def test_train_resume_and_sample_end_to_end(tmp_path):
    out = tmp_path / "run"
    args = [
        "--dataset",
        "stacked-digits",
        "--kimg",
        "0.024",
        "--seed",
        "1",
        "--out",
        str(out),
        *TINY,
    ]
    assert train_cli.main(args) == 0
    run = RunDir(out)
    assert run.status()["state"] == "finished"
    assert run.config_path.exists() and run.read_config()["run"]["framework"] == "torch"
    assert (run.samples / "phase-01-fade-8.png").exists()
    with pytest.raises(UserError, match="would change the run"):
        train_cli.main(["--resume", str(out), "--lr", "0.1"])
    assert train_cli.main(["--resume", str(out), "--kimg", "0.032", "--no-progress"]) == 0
    assert run.read_log()[-1]["nimg"] == 32
    from progan_torch.sample import main as sample_main

    assert sample_main(["--run", str(out), "--n", "3", "--out", str(tmp_path / "s.npz")]) == 0


def test_script_entry_points_run_from_package_folder():
    """`python train.py --help` from inside progan_torch/ (the sys.path shim; sample.py and
    bench.py carry the same shim). --help never imports torch, so this stays fast."""
    from pathlib import Path

    pkg = Path(train_cli.__file__).parent
    r = subprocess.run(
        [sys.executable, "train.py", "--help"], cwd=pkg, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "usage: python -m progan_torch.train" in r.stdout


def test_bench_profile_lists_the_operators_of_the_profiled_steps(capsys, tmp_path):
    from progan_torch.bench import TOP_OPS, main

    tiny = ["--preset", "quick", "--res", "4", "--phases", "stabilize", "--steps", "1"]
    tiny += ["--warmup", "0", "--fmap-max", "8", "--latent-dim", "8", "--device", "cpu"]
    assert main([*tiny, "--profile", "2", "--json", str(tmp_path / "b.json")]) == 0
    import json

    (row,) = json.loads((tmp_path / "b.json").read_text())["rows"]
    prof = row["profile"]
    assert prof["steps"] == 2 and prof["self_cpu_ms_per_step"] > 0
    assert row["malloc"] != "default"  # the trainer applied --malloc tuned (or the environment)
    assert 0 < prof["convolution_share"] < 1  # D and G at 4x4 run 3x3 and 1x1 convolutions
    ops = [op["op"] for op in prof["top"]]
    assert 0 < len(ops) <= TOP_OPS and any("convolution" in op for op in ops)
    assert "convolutions" in capsys.readouterr().out
    with pytest.raises(UserError, match="--profile takes a number of steps >= 0"):
        main([*tiny, "--profile", "-1"])


def test_bench_prints_a_row_per_phase(capsys, tmp_path):
    from progan_torch.bench import main

    assert (
        main(
            [
                "--preset",
                "quick",
                "--res",
                "4,8",
                "--steps",
                "1",
                "--warmup",
                "0",
                "--fmap-max",
                "8",
                "--latent-dim",
                "8",
                "--device",
                "cpu",
                "--json",
                str(tmp_path / "b.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "stabilize" in out and "fade" in out
    import json

    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(r["res"], r["phase"]) for r in rows] == [
        (4, "stabilize"),
        (8, "stabilize"),
        (8, "fade"),
    ]
    assert all(r["img_per_s"] > 0 for r in rows)


class _FakePeer:
    """Stands in for a public ProGAN in progan_torch.bench_reference (the real peers are not
    installed here): counts its steps."""

    name, commit, phases, full_res_reals, SHIMS = "fake", None, ("stabilize",), False, ()

    def __init__(self, max_res, channels, latent, peer_dir=None):
        self.steps = []

    def prepare(self, res):
        pass

    def reset(self):
        pass

    def step(self, reals, res, alpha):
        assert reals.shape[1:3] == (res, res)
        self.steps.append(res)


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_bench_reference_rows_record_our_precision(monkeypatch, tmp_path, amp):
    """--amp sets our trainer's precision only (the peer stays fp32); the JSON rows say so,
    with each round's ratio and their median."""
    import json

    from progan_torch import bench_reference, reference_peers

    monkeypatch.setitem(reference_peers.PEERS, "gan-zoo", _FakePeer)
    made = []
    real_ours = bench_reference.Ours

    def spy(*args):
        made.append(real_ours(*args))
        return made[-1]

    monkeypatch.setattr(bench_reference, "Ours", spy)
    out = tmp_path / "rows.json"
    args = ["--peer", "gan-zoo", "--res", "4", "--max-res", "8", "--channels", "8"]
    args += ["--latent", "8", "--batch", "4", "--steps", "1", "--warmup", "1", "--rounds", "3"]
    assert bench_reference.main([*args, "--threads", "1", "--amp", amp, "--json", str(out)]) == 0
    assert made[0].trainer.cfg.amp == amp
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert (row["amp"], row["peer_amp"], row["res"], len(row["round_ratios"])) == (amp, "off", 4, 3)
    assert set(data["code"]) == {"commit", "dirty"}  # the code behind the figures
    assert row["ratio_median"] == sorted(row["round_ratios"])[1]
