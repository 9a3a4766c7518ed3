"""The loop contract, for all four trainers (DCGAN / ProGAN x PyTorch / TensorFlow).

Every trainer is driven by ``gancore.train.loop`` through its real ``train`` CLI: the same
log keys and status fields, the same snapshot cadence, the same non-finite policy (skip,
count, stop, keep the last good checkpoint), Ctrl-C writes a checkpoint, and a resumed run
ends exactly where an uninterrupted one does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gancore.rundir import RunDir
from gancore.train.schema import TickRecord

ROOT = Path(__file__).resolve().parents[2]
TRAINERS = [("dcgan", "torch"), ("dcgan", "tf"), ("progan", "torch"), ("progan", "tf")]
IDS = [f"{m}-{f}" for m, f in TRAINERS]


def module(model: str, framework: str) -> str:
    if model == "dcgan":
        return "vanilla_gan.train"
    return "progan_torch.train" if framework == "torch" else "progan_tf.train"


def argv(model: str, framework: str, out: Path, *extra: str) -> list[str]:
    """A tiny run: 16 images per step, ticks every 2 steps, snapshots every 4."""
    common = ["--out", str(out), "--seed", "3", "--no-progress", "--kimg", "0.128"]
    common += ["--tick-kimg", "0.032", "--snapshot-kimg", "0.064", "--keep-checkpoints", "0"]
    common += ["--grid-size", "4", "--device", "cpu"]
    if model == "dcgan":
        own = ["--model", "dcgan", "--framework", framework, "--quick", "--res", "16"]
        own += ["--dataset", "stacked-digits", "--width", "8"]
        if framework == "tf":
            own += ["--no-jit-compile", "--deterministic"]
    else:
        own = ["--preset", "quick", "--random-data", "--max-res", "8", "--latent-dim", "8"]
        own += ["--fmap-base", "16", "--fmap-max", "8", "--default-batch", "16"]
        own += ["--stabilize-kimg", "0.032", "--fade-kimg", "0.032"]
    return own + common + list(extra)


def run_cli(model: str, framework: str, out: Path, *extra: str) -> int:
    import importlib

    from gancore.errors import run_cli as run

    main = importlib.import_module(module(model, framework)).main
    return run(main, argv(model, framework, out, *extra))


def weights(run: RunDir) -> dict[str, np.ndarray]:
    """Every array of the newest checkpoint, read without the framework's classes."""
    path = run.latest_checkpoint()
    if path.suffix == ".pt":
        import torch

        obj = torch.load(path, map_location="cpu", weights_only=True)
        out = {}
        for part in ("G", "D", "G_ema"):
            for k, v in (obj[part] or {}).items():
                out[f"{part}.{k}"] = v.numpy()
        return out
    if path.suffix == ".npz":
        with np.load(path) as f:
            return {k: f[k] for k in f.files if k != "meta"}
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(path / "ckpt"))
    return {
        k: reader.get_tensor(k)
        for k in reader.get_variable_to_shape_map()
        if "OPTIMIZER" not in k and not k.startswith("_CHECKPOINTABLE")
    }


class _at:
    """A view of ``run`` whose newest checkpoint is ``entry`` (for :func:`weights`)."""

    def __init__(self, run: RunDir, entry: dict) -> None:
        self.path = entry["path"]

    def latest_checkpoint(self):
        return self.path


def records(run: RunDir) -> list[dict]:
    return run.read_log()


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.mark.parametrize(("model", "framework"), TRAINERS, ids=IDS)
def test_log_status_grids_and_snapshot_cadence(model, framework, tmp_path):
    assert run_cli(model, framework, tmp_path / "run") == 0
    run = RunDir(tmp_path / "run")
    recs = records(run)
    keys = {f.name for f in dataclasses.fields(TickRecord)}
    assert [r["nimg"] for r in recs] == [32, 64, 96, 128]
    assert all(set(r) == keys for r in recs), "every trainer logs exactly the TickRecord keys"
    assert {r["model"] for r in recs} == {model} and {r["framework"] for r in recs} == {framework}
    assert all(r["loss_d"] is not None and np.isfinite(r["loss_d"]) for r in recs)
    status = run.status()
    assert status["state"] == "finished"
    assert {
        "state",
        "time",
        "pid",
        "host",
        "kimg",
        "nimg",
        "step",
        "time_s",
        "skipped_steps",
        "session_s",
    } <= set(status)
    entries = run.checkpoint_entries()
    assert [e["nimg"] for e in entries] == [64, 128]
    final = weights(run)
    first = weights(_at(run, entries[0]))
    assert any(not np.array_equal(first[k], final[k]) for k in final if k.startswith("G")), (
        "training moved the generator"
    )
    names = {p.name for p in run.samples.iterdir()}
    assert {"reals.png", "final.png", "tick-000000.032.png", "tick-000000.128.png"} <= names
    if model == "progan":  # one grid at the end of every phase of the progressive schedule
        assert {
            "phase-00-stabilize-4.png",
            "phase-01-fade-8.png",
            "phase-02-stabilize-8.png",
        } <= names
    config = json.loads(run.config_path.read_text())
    assert config["schema"] == 2 and config["run"]["model"] == model
    assert config["run"]["framework"] == framework


@pytest.mark.parametrize(("model", "framework"), TRAINERS, ids=IDS)
def test_resume_is_exact(model, framework, tmp_path):
    assert run_cli(model, framework, tmp_path / "whole") == 0
    assert run_cli(model, framework, tmp_path / "split", "--kimg", "0.064") == 0
    import importlib

    from gancore.errors import run_cli as run

    main = importlib.import_module(module(model, framework)).main
    assert run(main, ["--resume", str(tmp_path / "split"), "--kimg", "0.128", "--no-progress"]) == 0
    a, b = weights(RunDir(tmp_path / "whole")), weights(RunDir(tmp_path / "split"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    ra, rb = records(RunDir(tmp_path / "whole")), records(RunDir(tmp_path / "split"))
    for x, y in zip(ra, rb, strict=True):
        for k in ("nimg", "res", "phase", "alpha", "loss_d", "loss_g", "skipped_steps"):
            assert x[k] == y[k], (k, x, y)


@pytest.mark.parametrize(("model", "framework"), TRAINERS, ids=IDS)
def test_nonfinite_steps_are_skipped_and_no_checkpoint_is_written_inside_a_streak(
    model, framework, tmp_path
):
    # steps starting at 32 and 48 see NaN randoms: two skipped steps; the snapshots due at 48
    # and 64 wait for the first good step (at 64 -> written at 80).
    code = run_cli(
        model,
        framework,
        tmp_path / "run",
        "--debug-nan-kimg",
        "0.032,0.064",
        "--snapshot-kimg",
        "0.016",
        "--max-bad-steps",
        "5",
    )
    assert code == 0
    run = RunDir(tmp_path / "run")
    assert [r["skipped_steps"] for r in records(run)] == [0, 2, 2, 2]
    saved = [e["nimg"] for e in run.checkpoint_entries()]
    assert saved == [16, 32, 80, 96, 112, 128]


@pytest.mark.parametrize(("model", "framework"), TRAINERS, ids=IDS)
def test_a_streak_stops_the_run_and_keeps_the_last_good_checkpoint(model, framework, tmp_path):
    code = run_cli(
        model,
        framework,
        tmp_path / "run",
        "--debug-nan-kimg",
        "0.064,1",
        "--max-bad-steps",
        "3",
        "--snapshot-kimg",
        "0.016",
        "--keep-checkpoints",
        "2",
    )
    assert code == 3
    run = RunDir(tmp_path / "run")
    status = run.status()
    assert status["state"] == "diverged" and "last good checkpoint" in status["error"]
    assert [e["nimg"] for e in run.checkpoint_entries()] == [48, 64]
    assert all(np.isfinite(v).all() for v in weights(run).values() if v.dtype.kind == "f")


@pytest.mark.parametrize(("model", "framework"), TRAINERS, ids=IDS)
def test_ctrl_c_writes_a_checkpoint_and_the_run_resumes(model, framework, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", module(model, framework)]
    cmd += argv(model, framework, out, "--kimg", "1000", "--tick-kimg", "0.016")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    log = out / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().count("\n") >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted (SIGINT)" in err and "--resume" in err
    run = RunDir(out)
    assert run.status()["state"] == "interrupted"
    entries = run.checkpoint_entries()
    assert entries and entries[-1]["nimg"] >= records(run)[-1]["nimg"]
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            module(model, framework),
            "--resume",
            str(out),
            "--kimg",
            str(entries[-1]["nimg"] / 1000 + 0.032),
            "--no-progress",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {out} from" in resumed.stderr


def test_a_time_budget_ends_the_run_like_its_length(tmp_path):
    """--max-minutes: the run ends (final checkpoint, grids, finished) once its training time
    reaches the budget, wherever it is."""
    assert (
        run_cli("dcgan", "torch", tmp_path / "run", "--kimg", "100", "--max-minutes", "0.0001") == 0
    )
    run = RunDir(tmp_path / "run")
    assert run.status()["state"] == "finished"
    nimg = run.checkpoint_entries()[-1]["nimg"]
    assert 0 < nimg < 100_000 and records(run)[-1]["nimg"] == nimg
    assert (run.samples / "final.png").exists()
