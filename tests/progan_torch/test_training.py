"""Training step, schedule presets, non-finite handling, exact resume and sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gancore.rundir import RunDir
from progan_common.config import PRESETS, ProGANConfig
from progan_torch import loop
from progan_torch.checkpoint import find_checkpoint, load_checkpoint
from progan_torch.loop import TrainingDiverged, train
from progan_torch.training import (
    RandomSource,
    StepRunner,
    build_models,
    step_randoms,
    to_device_reals,
)

CPU = torch.device("cpu")


def test_preset_schedules():
    cifar = ProGANConfig(**PRESETS["cifar10"])
    assert [cifar.channels_at(r) for r in (4, 8, 16, 32)] == [128] * 4
    assert cifar.latent_dim == 128 and cifar.gp_gamma == 750.0 and not cifar.mirror
    s = cifar.schedule()
    names = [(p.phase, p.res, p.batch, p.phase_start_nimg) for p in s.phases()]
    assert names == [
        ("stabilize", 4, 16, 0),
        ("fade", 8, 16, 400_000),
        ("stabilize", 8, 16, 800_000),
        ("fade", 16, 16, 1_200_000),
        ("stabilize", 16, 16, 1_600_000),
        ("fade", 32, 16, 2_000_000),
        ("stabilize", 32, 16, 2_400_000),
    ]
    assert s.state(600_000).alpha == pytest.approx(0.5)
    hq = ProGANConfig(**PRESETS["celebahq"])
    assert [hq.channels_at(4 * 2**k) for k in range(9)] == [512] * 4 + [256, 128, 64, 32, 16]
    assert [hq.schedule().batch_for(r) for r in (4, 128, 256, 512, 1024)] == [16, 16, 14, 6, 3]
    assert hq.mirror and hq.schedule().state(800_000 + 400_000).alpha == pytest.approx(0.5)
    one = ProGANConfig(**PRESETS["celebahq-1gpu"])
    assert one.schedule().lr_for(1024) == 0.0015 and one.schedule().batch_for(64) == 32
    start64 = ProGANConfig(**{**PRESETS["celebahq"], "start_res": 64})
    assert start64.schedule().state(0).res == 64


def _step_args(cfg, st, source):
    u8, _ = source.batch(st.res, st.nimg, st.batch)
    z_d, z_g, u = step_randoms(cfg.seed, st.nimg, st.batch, cfg.latent_dim)
    return to_device_reals(u8, CPU, False), None, z_d, z_g, u, st.level, st.alpha


def test_one_step_per_phase_changes_parameters(tiny_cfg):
    cfg = tiny_cfg()
    models = build_models(cfg, 3, 0, CPU, channels_last=False)
    runner = StepRunner(models, cfg, CPU, channels_last=False)
    source = RandomSource(3, seed=1)
    sched = cfg.schedule()
    for st in sched.phases():
        mid = sched.state(
            st.phase_start_nimg + (cfg.schedule()._fade_nimg // 2 if st.phase == "fade" else 0)
        )
        assert mid.phase == st.phase
        g_before = [p.detach().clone() for p in models.G.torgb[mid.level].parameters()]
        d_before = models.D.fromrgb[mid.level].weight.detach().clone()
        stats = runner.train_step(*_step_args(cfg, mid, source))
        assert all(np.isfinite(v) for v in stats.values()), (mid.phase_name, stats)
        assert stats["d_skipped"] == 0 and stats["g_skipped"] == 0
        assert not torch.equal(models.D.fromrgb[mid.level].weight, d_before)
        assert any(
            not torch.equal(p, b) for p, b in zip(models.G.torgb[mid.level].parameters(), g_before)
        )
        assert models.G.torgb[mid.level].weight.grad is None  # grads are not left behind
    # EMA (beta 0.999) runs after the D step with the G weights the step started from
    w1 = models.G.torgb[3].weight.detach().clone()
    e1 = models.G_ema.torgb[3].weight.detach().clone()
    assert not torch.equal(w1, e1)
    runner.train_step(*_step_args(cfg, sched.state(10_000), source))
    torch.testing.assert_close(models.G_ema.torgb[3].weight, e1 + (w1 - e1) * (1 - 0.999))
    # A per-step decay (the ema_rampup schedule) overrides cfg.ema_beta for that step only.
    w2 = models.G.torgb[3].weight.detach().clone()
    e2 = models.G_ema.torgb[3].weight.detach().clone()
    runner.train_step(*_step_args(cfg, sched.state(10_000), source), ema_beta=0.25)
    torch.testing.assert_close(models.G_ema.torgb[3].weight, e2 + (w2 - e2) * (1 - 0.25))


def test_nonfinite_step_is_skipped(tiny_cfg):
    cfg = tiny_cfg()
    models = build_models(cfg, 3, 0, CPU, channels_last=False)
    runner = StepRunner(models, cfg, CPU, channels_last=False)
    st = cfg.schedule().state(0)
    args = list(_step_args(cfg, st, RandomSource(3)))
    args[0] = args[0].clone()
    args[0][0, 0, 0, 0] = float("nan")
    d_before = {k: v.clone() for k, v in models.D.state_dict().items()}
    stats = runner.train_step(*args)
    assert stats["d_skipped"] == 1.0
    for k, v in models.D.state_dict().items():
        assert torch.equal(v, d_before[k]), k


def test_diverging_run_stops_and_keeps_last_good_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    cfg = tiny_cfg(max_bad_steps=3, snapshot_kimg=0.008, kimg=0.2)
    real = loop.to_device_reals
    calls = {"n": 0}

    def poisoned(u8, device, channels_last):
        calls["n"] += 1
        x = real(u8, device, channels_last)
        return x * float("nan") if calls["n"] > 4 else x

    monkeypatch.setattr(loop, "to_device_reals", poisoned)
    run = RunDir(tmp_path / "run")
    run.create({})
    with pytest.raises(TrainingDiverged, match="3 consecutive non-finite") as info:
        train(cfg, run, RandomSource(3), CPU, progress_bar=False)
    good = load_checkpoint(run.latest_checkpoint())
    assert good["progress"]["nimg"] == 16  # written after step 4, the last good one
    assert str(run.latest_checkpoint()) in str(info.value)
    assert run.read_log()[-1]["skipped_steps"] <= 3


def _final_states(run: RunDir) -> dict:
    ckpt = load_checkpoint(run.latest_checkpoint())
    return {
        "G": ckpt["G"],
        "D": ckpt["D"],
        "G_ema": ckpt["G_ema"],
        "opt_d": ckpt["opt_d"]["state"],
        "nimg": ckpt["progress"]["nimg"],
    }


def test_resume_mid_fade_is_exact(tiny_cfg, tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        cfg = tiny_cfg(kimg=0.064)  # 16 steps of 4: stabilize-4, fade-8, stabilize-8, fade-16
        sched = cfg.schedule()
        n_first = 5  # step 5 starts at image 16: inside fade-8, alpha 0.25
        assert (
            sched.state(4 * (n_first - 1)).phase == "fade"
            and sched.state(4 * n_first).phase == "fade"
        )
        a = RunDir(tmp_path / "a")
        a.create({})
        train(cfg, a, RandomSource(3), CPU, progress_bar=False)
        b = RunDir(tmp_path / "b")
        b.create({})
        train(cfg, b, RandomSource(3), CPU, progress_bar=False, max_steps=n_first)
        ckpt = load_checkpoint(b.latest_checkpoint())
        assert ckpt["progress"]["nimg"] == 4 * n_first and float(ckpt["G"]["alpha"]) == 0.25
        train(cfg, b, RandomSource(3), CPU, progress_bar=False, resume_ckpt=ckpt)
    finally:
        torch.use_deterministic_algorithms(False)
    sa, sb = _final_states(a), _final_states(b)
    assert sa["nimg"] == sb["nimg"] == 64
    for net in ("G", "D", "G_ema"):
        for k in sa[net]:
            torch.testing.assert_close(sb[net][k], sa[net][k], rtol=0, atol=1e-6, msg=f"{net}.{k}")
    for pid, st in sa["opt_d"].items():
        torch.testing.assert_close(
            sb["opt_d"][pid]["exp_avg_sq"], st["exp_avg_sq"], rtol=0, atol=1e-6
        )
    # and training did move away from the initial weights
    init = build_models(cfg, 3, 0, CPU, False).G.state_dict()
    assert not torch.equal(init["torgb.2.weight"], sa["G"]["torgb.2.weight"])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_cfg):
    cfg = tiny_cfg(kimg=0.02)
    run = RunDir(tmp_path_factory.mktemp("run") / "r")
    run.create({})
    train(cfg, run, RandomSource(3), CPU, progress_bar=False)
    return run


def test_run_directory_contract(tiny_run):
    log = tiny_run.read_log()
    keys = {
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
    assert log and keys <= set(log[-1])
    names = {p.name for p in tiny_run.samples.iterdir()}
    assert "final.png" in names and "phase-00-stabilize-4.png" in names
    assert any(n.startswith("tick-") for n in names)
    assert find_checkpoint(tiny_run.path).exists()


def test_sample_cli_is_deterministic(tiny_run, tmp_path):
    from gancore.samples import load_samples
    from progan_torch.sample import main

    main(["--run", str(tiny_run.path), "--n", "5", "--seed", "7", "--out", str(tmp_path / "a.npz")])
    main(
        [
            "--run",
            str(tiny_run.path),
            "--n",
            "3",
            "--seed",
            "7",
            "--out",
            str(tmp_path / "b.npz"),
            "--batch",
            "2",
        ]
    )
    main(["--run", str(tiny_run.path), "--n", "3", "--seed", "8", "--out", str(tmp_path / "c.npz")])
    a, seeds_a, meta = load_samples(tmp_path / "a.npz")
    b, _, _ = load_samples(tmp_path / "b.npz")
    c, _, _ = load_samples(tmp_path / "c.npz")
    assert a.dtype == np.uint8 and a.shape[0] == 5 and a.shape[-1] == 3
    assert np.array_equal(a[:3], b) and not np.array_equal(a[:3], c)
    assert list(seeds_a) == [7_000_000 + i for i in range(5)] and meta["ema"]
    main(
        [
            "--run",
            str(tiny_run.path),
            "--n",
            "2",
            "--interpolate",
            "4",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "i.npz"),
        ]
    )
    i, _, _ = load_samples(tmp_path / "i.npz")
    assert i.shape[0] == 8 and (tmp_path / "i.png").exists()


def test_slerp_endpoints_and_norm():
    from gancore.latents import interpolation_latents, latents_for

    z = interpolation_latents(3, rows=2, steps=5, dim=16)
    ends = latents_for(3, range(4), 16)
    unit = ends / np.linalg.norm(ends, axis=1, keepdims=True) * 4.0
    np.testing.assert_allclose(z[0], unit[0], rtol=1e-5)
    np.testing.assert_allclose(z[4], unit[1], rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 4.0, rtol=1e-5)  # stays on the sphere


@pytest.mark.parametrize(
    "switch",
    [
        {"conditional": True},
        {"spectral_norm_d": True},
        {"ema": False, "pixelnorm": False},
        {"equalized_lr": False, "mbstd_group": 0},
        {"growing": False},
        {"start_res": 16},
    ],
)
def test_switches_train(tiny_cfg, switch):
    """Each paper ablation / option takes finite steps through the schedule's first phases."""
    cfg = tiny_cfg(**{k: v for k, v in switch.items() if k != "conditional"})
    classes = 3 if switch.get("conditional") else 0
    models = build_models(cfg, 3, classes, CPU, channels_last=False)
    runner = StepRunner(models, cfg, CPU, channels_last=False)
    source = RandomSource(3, num_classes=classes)
    sched = cfg.schedule()
    for nimg in (0, sched.phases()[-1].phase_start_nimg + 4):
        st = sched.state(nimg)
        u8, labels = source.batch(st.res, nimg, st.batch)
        y = None if labels is None else torch.from_numpy(labels)
        z_d, z_g, u = step_randoms(cfg.seed, nimg, st.batch, cfg.latent_dim)
        stats = runner.train_step(
            to_device_reals(u8, CPU, False), y, z_d, z_g, u, st.level, st.alpha
        )
        assert all(np.isfinite(v) for v in stats.values()) and not stats["d_skipped"]
        if classes:
            assert stats["d_label"] > 0
    assert (models.G_ema is None) == (not cfg.ema)
    if not cfg.growing:
        assert sched.state(0).res == 32


def test_channels_last_step_equals_contiguous(tiny_cfg):
    """Memory layout must not change the math (guards the fused-Adam stride fix too)."""
    cfg = tiny_cfg()
    results = []
    for cl in (False, True):
        models = build_models(cfg, 3, 0, CPU, channels_last=cl)
        runner = StepRunner(models, cfg, CPU, channels_last=cl)
        st = cfg.schedule().state(20)  # fade-8
        u8, _ = RandomSource(3).batch(st.res, 20, st.batch)
        z_d, z_g, u = step_randoms(cfg.seed, 20, st.batch, cfg.latent_dim)
        for _ in range(2):
            runner.train_step(to_device_reals(u8, CPU, cl), None, z_d, z_g, u, st.level, st.alpha)
        results.append({k: v.clone() for k, v in models.D.state_dict().items()})
    for k in results[0]:
        torch.testing.assert_close(results[1][k], results[0][k], rtol=1e-4, atol=1e-5, msg=k)
