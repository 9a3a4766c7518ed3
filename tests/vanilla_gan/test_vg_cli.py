"""The train / sample CLIs: --help, --dry-run, the run-directory contract, resume, sampling."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from gancore.errors import UserError
from gancore.rundir import RunDir
from vanilla_gan import sample, train
from vanilla_gan.config import TrainConfig

LOG_KEYS = {
    "kimg",
    "nimg",
    "res",
    "phase",
    "alpha",
    "loss_d",
    "loss_g",
    "img_per_s",
    "time_s",
    "peak_mem_mb",
}


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        train.main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name
        if not f.metadata.get("hidden"):  # testing hooks stay out of --help
            assert "--" + f.name.replace("_", "-") in text


def _dry_run_config(out: str) -> dict:
    """The resolved config a dry run prints first (the compute estimate follows it)."""
    return json.JSONDecoder().raw_decode(out)[0]


def test_dry_run_resolves_presets(capsys):
    assert train.main(["--model", "sndcgan", "--framework", "tf", "--dry-run"]) == 0
    cfg = _dry_run_config(capsys.readouterr().out)
    assert (cfg["z_dim"], cfg["lrelu_slope"], cfg["sn_d"], cfg["beta2"]) == (128, 0.1, True, 0.999)
    assert train.main(["--model", "dcgan", "--loss", "hinge", "--dry-run"]) == 0
    cfg = _dry_run_config(capsys.readouterr().out)
    assert (cfg["z_dim"], cfg["lrelu_slope"], cfg["sn_d"], cfg["loss"]) == (
        100,
        0.2,
        False,
        "hinge",
    )
    with pytest.raises(UserError, match="label_smoothing"):
        train.main(["--loss", "hinge", "--label-smoothing", "0.1", "--dry-run"])


def _train_args(framework: str, folder, out, kimg: str = "0.032") -> list[str]:
    return [
        "--model",
        "sndcgan" if framework == "tf" else "dcgan",
        "--framework",
        framework,
        "--dataset",
        f"folder:{folder}",
        "--res",
        "32",
        "--quick",
        "--kimg",
        kimg,
        "--batch",
        "8",
        "--seed",
        "3",
        "--out",
        str(out),
        "--tick-kimg",
        "0.016",
        "--snapshot-kimg",
        "0.016",
        "--threads",
        "1",
        "--no-progress",
        "--device",
        "cpu",
        "--ema-beta",
        "0.9",
    ]


def _check_contract(run: RunDir, kimg: float) -> None:
    assert run.status()["state"] == "finished"
    cfg = json.loads(run.config_path.read_text())
    assert cfg["run"]["entry_point"] == "vanilla_gan.train" and cfg["run"]["img_channels"] == 3
    log = run.read_log()
    assert log and all(LOG_KEYS <= set(r) for r in log)
    assert log[-1]["kimg"] == pytest.approx(kimg)
    assert all(r["phase"] == "train" and r["alpha"] == 1.0 for r in log)
    assert list(run.samples.glob("tick-*.png")) and (run.samples / "final.png").exists()
    latest = run.latest_checkpoint()
    assert latest is not None and latest.exists()
    assert json.loads((run.checkpoints / "latest.json").read_text())["latest"][
        "kimg"
    ] == pytest.approx(kimg)


def _check_tensorboard(folder, n_ticks: int) -> None:
    """The event files hold one value per log tick for each scalar of the log, under the log's
    own names, whichever framework trained."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert list(folder.glob("events.out.tfevents.*")), f"no event file in {folder}"
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    for name in ("loss_d", "loss_g", "img_per_s", "kimg", "peak_mem_mb"):
        assert name in tags["scalars"], f"{name} missing from {tags}"
        steps = [e.step for e in acc.Scalars(name)]
        assert len(steps) == n_ticks and steps == sorted(steps) and steps[-1] > 0


def _sample(run, tmp_path, n: int, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    out = tmp_path / name
    assert (
        sample.main(
            [
                "--run",
                str(run),
                "--n",
                str(n),
                "--seed",
                str(seed),
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    with np.load(out) as f:
        return f["images"], f["seeds"]


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_train_resume_and_sample(framework, image_folder, tmp_path):
    out = tmp_path / "run"
    assert train.main([*_train_args(framework, image_folder, out), "--tensorboard"]) == 0
    run = RunDir(out)
    _check_contract(run, 0.032)
    _check_tensorboard(out / "tensorboard", n_ticks=len(run.read_log()))
    with pytest.raises(UserError, match="already holds a run"):
        train.main(_train_args(framework, image_folder, out))
    with pytest.raises(UserError, match="would change the run"):
        train.main(["--resume", str(out), "--lr-d", "0.1"])
    if framework == "torch":  # (TF resume exactness is tested at trainer level; TF is slow)
        # Continue the finished run to a longer length.
        assert train.main(["--resume", str(out), "--kimg", "0.048", "--no-progress"]) == 0
        _check_contract(run, 0.048)

    a, seeds = _sample(out, tmp_path, 5, 2, "a.npz")
    b, _ = _sample(out, tmp_path, 3, 2, "b.npz")
    assert a.dtype == np.uint8 and a.shape == (5, 32, 32, 3)
    assert np.array_equal(a[:3], b)  # per-image seeds: same images at any N
    assert seeds.tolist() == [2_000_000 + i for i in range(5)]
    assert len({img.tobytes() for img in a}) == 5  # different latents, different images
    if framework == "torch":
        a2, _ = _sample(out, tmp_path, 5, 2, "a2.npz")
        assert np.array_equal(a, a2)


def test_bench_rounds_and_json(tmp_path, capsys):
    """bench measures in subprocesses, interleaves rounds and reports the median per framework;
    torch-convs is torch with --no-cpu-gemm-convs, and the reference loop never uses them."""
    from vanilla_gan import bench

    out = tmp_path / "bench.json"
    args = ["--models", "dcgan", "--frameworks", "torch,torch-ref,torch-convs", "--width", "8"]
    args += ["--steps", "1", "--warmup", "0", "--rounds", "2", "--threads", "1", "--json", str(out)]
    assert bench.main(args) == 0
    data = json.loads(out.read_text())
    assert set(data["code"]) == {"commit", "dirty"}
    rows = data["results"]
    assert [(r["round"], r["framework"], r["cpu_gemm_convs"]) for r in rows] == [
        (0, "torch", True),
        (0, "torch-ref", False),
        (0, "torch-convs", False),
        (1, "torch", True),
        (1, "torch-ref", False),
        (1, "torch-convs", False),
    ]
    assert all(r["img_per_s"] > 0 and r["jit_compile"] is None for r in rows)
    torch_rates = sorted(r["img_per_s"] for r in rows if r["framework"] == "torch")
    assert data["median_img_per_s"]["dcgan"]["torch"] == pytest.approx(np.median(torch_rates))
    printed = capsys.readouterr().out
    assert "dcgan: torch/torch-ref = " in printed and "dcgan: torch/torch-convs = " in printed
    with pytest.raises(UserError, match="rounds"):
        bench.main(["--rounds", "0"])
