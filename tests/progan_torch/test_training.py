"""The PyTorch ProGAN trainer: one step per phase, skipped non-finite steps, switches,
memory layout, mid-fade resume and the sample CLI (the loop contract is tested for all
trainers in tests/gancore/test_loop_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gancore.latents import RandomSource
from gancore.rundir import RunDir
from progan_common.config import PRESETS, ProGANConfig
from progan_torch.training import ProGANTrainer
from tests.train_helpers import progan_randoms as _randoms  # noqa: E402


def _step(trainer, cfg, st, source, labels=None):
    trainer.set_stage(st)
    u8, y = source.batch(st.res, st.nimg, st.batch)
    return trainer.step(u8, y if labels is None else labels, _randoms(cfg, st))


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


def test_one_step_per_phase_changes_parameters(tiny_cfg):
    cfg = tiny_cfg()
    tr = ProGANTrainer(cfg, 3, 0, channels_last=False)
    G, D, G_ema = tr.m.G, tr.m.D, tr.m.G_ema
    source = RandomSource(3, seed=1)
    sched = cfg.schedule()
    for st in sched.phases():
        mid = sched.state(st.phase_start_nimg + (8 if st.phase == "fade" else 0))
        assert mid.phase == st.phase
        g_before = [p.detach().clone() for p in G.torgb[mid.level].parameters()]
        d_before = D.fromrgb[mid.level].weight.detach().clone()
        stats = _step(tr, cfg, mid, source)
        assert all(np.isfinite(v) for v in stats.values()), (mid.phase_name, stats)
        assert stats["skipped"] == 0
        assert not torch.equal(D.fromrgb[mid.level].weight, d_before)
        assert any(not torch.equal(p, b) for p, b in zip(G.torgb[mid.level].parameters(), g_before))
        assert G.torgb[mid.level].weight.grad is None  # grads are not left behind
    # EMA (beta 0.999) runs after the D step with the G weights the step started from
    w1 = G.torgb[3].weight.detach().clone()
    e1 = G_ema.torgb[3].weight.detach().clone()
    assert not torch.equal(w1, e1)
    _step(tr, cfg, sched.state(10_000), source)
    torch.testing.assert_close(G_ema.torgb[3].weight, e1 + (w1 - e1) * (1 - 0.999))


def test_ema_rampup_sets_the_step_decay(tiny_cfg):
    cfg = tiny_cfg(ema_rampup=0.05)
    tr = ProGANTrainer(cfg, 3, 0, channels_last=False)
    st = cfg.schedule().state(10_000)
    beta = cfg.ema_beta_at(st.nimg, st.batch)
    assert 0 < beta < cfg.ema_beta
    w, e = tr.m.G.torgb[3].weight.detach().clone(), tr.m.G_ema.torgb[3].weight.detach().clone()
    _step(tr, cfg, st, RandomSource(3))
    torch.testing.assert_close(tr.m.G_ema.torgb[3].weight, e + (w - e) * (1 - beta))


def test_nonfinite_step_is_skipped_and_leaves_every_weight(tiny_cfg):
    cfg = tiny_cfg()
    tr = ProGANTrainer(cfg, 3, 0, channels_last=False)
    st = cfg.schedule().state(0)
    tr.set_stage(st)
    u8, _ = RandomSource(3).batch(st.res, 0, st.batch)
    randoms = _randoms(cfg, st)
    randoms["z_d"] = np.full_like(randoms["z_d"], np.nan)
    before = {k: v.clone() for k, v in tr.m.D.state_dict().items()}
    stats = tr.step(u8, None, randoms)
    assert stats["skipped"] == 1.0
    for k, v in tr.m.D.state_dict().items():
        assert torch.equal(v, before[k]), k
    # the skip was decided on the device: D's shared Adam counter did not move, G's did
    assert tr.opt_d.param_groups[0]["step"] == 0 and tr.opt_g.param_groups[0]["step"] == 1


def test_exploding_loss_is_skipped_like_a_nonfinite_one(tiny_cfg):
    cfg = tiny_cfg(max_abs_loss=1e-6)  # every real loss exceeds it
    tr = ProGANTrainer(cfg, 3, 0, channels_last=False)
    before = {k: v.clone() for k, v in tr.m.G.named_parameters()}
    stats = _step(tr, cfg, cfg.schedule().state(0), RandomSource(3))
    assert stats["skipped"] == 1.0 and np.isfinite(stats["loss_d"])
    for k, v in tr.m.G.named_parameters():
        assert torch.equal(v, before[k]), k


def test_resume_mid_fade_is_exact(tiny_cfg, tmp_path):
    """Stop inside fade-8 (alpha 0.5) and resume: the run ends bit-identical."""
    from gancore.train.loop import train
    from tests.train_helpers import progan_job

    cfg = tiny_cfg(kimg=0.064, snapshot_kimg=0.004)  # a checkpoint after every step of 4
    st = cfg.schedule().state(20)
    assert st.phase == "fade" and st.alpha == 0.5

    def trainer():
        return ProGANTrainer(cfg, 3, 0, channels_last=False)

    train(progan_job(cfg, tmp_path / "a"), trainer())
    out = train(progan_job(cfg, tmp_path / "b", max_steps=5), trainer())
    assert out.position.nimg == 20 and not out.finished
    train(progan_job(cfg, tmp_path / "b"), trainer(), resume=True)
    sa = torch.load(RunDir(tmp_path / "a").latest_checkpoint(), weights_only=True)
    sb = torch.load(RunDir(tmp_path / "b").latest_checkpoint(), weights_only=True)
    assert sa["meta"]["nimg"] == sb["meta"]["nimg"] == 64
    for net in ("G", "D", "G_ema"):
        for k in sa[net]:
            assert torch.equal(sb[net][k], sa[net][k]), f"{net}.{k}"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from gancore.errors import run_cli
    from progan_torch.train import main

    out = tmp_path_factory.mktemp("run") / "r"
    argv = ["--preset", "quick", "--random-data", "--max-res", "8", "--latent-dim", "8"]
    argv += ["--fmap-base", "16", "--fmap-max", "8", "--kimg", "0.064", "--stabilize-kimg", "0.016"]
    argv += ["--fade-kimg", "0.016", "--tick-kimg", "0.032", "--snapshot-kimg", "0.032"]
    argv += ["--grid-size", "4", "--no-progress", "--out", str(out)]
    assert run_cli(main, argv) == 0
    return RunDir(out)


def test_sample_cli_is_deterministic(tiny_run, tmp_path):
    from gancore.samples import load_samples
    from progan_torch.sample import main

    run = str(tiny_run.path)
    main(["--run", run, "--n", "5", "--seed", "7", "--out", str(tmp_path / "a.npz")])
    main(
        ["--run", run, "--n", "3", "--seed", "7", "--out", str(tmp_path / "b.npz"), "--batch", "2"]
    )
    main(["--run", run, "--n", "3", "--seed", "8", "--out", str(tmp_path / "c.npz")])
    a, seeds_a, meta = load_samples(tmp_path / "a.npz")
    b, _, _ = load_samples(tmp_path / "b.npz")
    c, _, _ = load_samples(tmp_path / "c.npz")
    assert a.dtype == np.uint8 and a.shape == (5, 8, 8, 3)
    assert np.array_equal(a[:3], b) and not np.array_equal(a[:3], c)
    assert list(seeds_a) == [7_000_000 + i for i in range(5)] and meta["ema"]
    main(
        [
            "--run",
            run,
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
    tr = ProGANTrainer(cfg, 3, classes, channels_last=False)
    source = RandomSource(3, num_classes=classes)
    sched = cfg.schedule()
    for nimg in (0, sched.phases()[-1].phase_start_nimg + 4):
        stats = _step(tr, cfg, sched.state(nimg), source)
        assert all(np.isfinite(v) for v in stats.values()) and not stats["skipped"]
    assert (tr.m.G_ema is None) == (not cfg.ema)
    if not cfg.growing:
        assert sched.state(0).res == 32


@pytest.mark.parametrize("nimg", [0, 20], ids=["4x4", "fade-8"])
def test_channels_last_step_equals_contiguous(tiny_cfg, nimg):
    """Memory layout must not change the math (guards the fused-Adam stride fix too), with
    the 4x4 level contiguous and the rest channels_last (build_models)."""
    cfg = tiny_cfg()
    results = []
    for cl in (False, True):
        tr = ProGANTrainer(cfg, 3, 0, channels_last=cl)
        st = cfg.schedule().state(nimg)
        for _ in range(2):
            _step(tr, cfg, st, RandomSource(3))
        results.append({k: v.clone() for k, v in tr.m.D.state_dict().items()})
        for name, p in (*tr.m.G.named_parameters(), *tr.m.D.named_parameters()):
            if p.dim() == 4 and p.shape[-1] > 1:  # 1x1 kernels are both layouts at once
                base = name.startswith(("blocks.0.", "torgb.0.", "fromrgb.0."))
                want = torch.channels_last if cl and not base else torch.contiguous_format
                assert p.is_contiguous(memory_format=want), (cl, name)
    for k in results[0]:
        torch.testing.assert_close(results[1][k], results[0][k], rtol=1e-4, atol=1e-5, msg=k)
