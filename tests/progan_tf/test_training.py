"""The TensorFlow ProGAN trainer: every phase 4 -> 32 through the CLI, checkpoints, sampling,
skipped non-finite steps, switches, Adam resets and the EMA (the loop contract is tested for
all trainers in tests/gancore/test_loop_contract.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.progan_tf.pgtf_helpers import tiny_cfg
from tests.train_helpers import progan_job, progan_randoms

tf = pytest.importorskip("tensorflow")

from gancore.errors import UserError  # noqa: E402
from gancore.latents import RandomSource  # noqa: E402
from gancore.rundir import RunDir  # noqa: E402
from gancore.samples import load_samples  # noqa: E402
from gancore.train.loop import train  # noqa: E402
from gancore.train.schema import CheckpointMeta  # noqa: E402
from progan_tf import sample as sample_cli  # noqa: E402
from progan_tf import train as train_cli  # noqa: E402
from progan_tf import training  # noqa: E402
from progan_tf.networks import build_networks, named_layers  # noqa: E402
from progan_tf.training import ProGANTrainer  # noqa: E402

TINY_FLAGS = ["--latent-dim", "8", "--fmap-base", "64", "--fmap-max", "16", "--seed", "3"]


def _step(trainer, cfg, st, source=None, labels=None):
    source = source or RandomSource(3, seed=1)
    trainer.set_stage(st)
    u8, y = source.batch(st.res, st.nimg, st.batch)
    return trainer.step(u8, y if labels is None else labels, progan_randoms(cfg, st))


def test_one_step_per_phase_4_to_32_via_cli(tmp_path, capsys):
    """Every phase from 4x4 to 32x32 runs (batch 4: one or two steps each) and trains every block."""
    out = tmp_path / "run"
    flags = ["--preset", "quick", "--max-res", "32", *TINY_FLAGS, "--default-batch", "4"]
    flags += ["--stabilize-kimg", "0.004", "--fade-kimg", "0.008", "--kimg", "0.040"]
    flags += ["--tick-kimg", "0.004", "--snapshot-kimg", "1", "--random-data", "--out", str(out)]
    assert train_cli.main(flags) == 0
    bar = capsys.readouterr().err  # the progress bar: resolution, phase, alpha, losses, img/s
    assert "32px stabilize a=1.00" in bar and "img/s" in bar and "D " in bar
    run = RunDir(out)
    assert run.status()["state"] == "finished"
    log = run.read_log()
    seen = {(r["phase"], r["res"]) for r in log}
    assert {("fade", 8), ("stabilize", 8), ("fade", 16), ("fade", 32), ("stabilize", 32)} <= seen
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in log)
    names = sorted(p.name for p in run.samples.iterdir())
    assert {"final.png", "phase-05-fade-32.png", "phase-00-stabilize-4.png"} <= set(names)
    # every block of G and D moved away from its (seeded, reproducible) initial value
    cfg = tiny_cfg(max_res=32)
    g0, d0, _ = build_networks(cfg, 3)
    trainer = ProGANTrainer(cfg, 3)
    meta = trainer.load(run.latest_checkpoint())
    for fresh, trained in ((g0, trainer.G), (d0, trainer.D)):
        a, b = named_layers(fresh), named_layers(trained)
        for name in a:
            assert not np.allclose(a[name].weight.numpy(), b[name].weight.numpy()), name
    assert int(trainer.G.level.numpy()) == 3 and meta.nimg == 40


def test_resume_mid_fade_equals_uninterrupted(tmp_path):
    tf.config.experimental.enable_op_determinism()
    cfg = tiny_cfg(
        max_res=8, stabilize_kimg=0.016, fade_kimg=0.032, kimg=0.048, snapshot_kimg=0.008
    )
    st = cfg.schedule().state(32)
    assert st.phase == "fade" and 0 < st.alpha < 1  # the checkpoint below is mid-fade
    train(progan_job(cfg, tmp_path / "full", "tf"), ProGANTrainer(cfg, 3))
    out = train(progan_job(cfg, tmp_path / "part", "tf", max_steps=4), ProGANTrainer(cfg, 3))
    assert out.position.nimg == 32
    train(progan_job(cfg, tmp_path / "part", "tf"), ProGANTrainer(cfg, 3), resume=True)
    a, b = ProGANTrainer(cfg, 3), ProGANTrainer(cfg, 3)
    a.load(RunDir(tmp_path / "full").latest_checkpoint())
    b.load(RunDir(tmp_path / "part").latest_checkpoint())
    for name in ("G", "D", "G_ema"):
        for va, vb in zip(getattr(a, name).weights, getattr(b, name).weights):
            np.testing.assert_array_equal(va.numpy(), vb.numpy(), err_msg=f"{name} {va.path}")
    for va, vb in zip(a.opt_d.variables, b.opt_d.variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy(), err_msg=va.path)
    full, part = RunDir(tmp_path / "full").read_log(), RunDir(tmp_path / "part").read_log()
    assert [r["kimg"] for r in part] == [r["kimg"] for r in full]


def test_failed_checkpoint_write_keeps_the_last_good_one(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run")
    run.create({})
    trainer = ProGANTrainer(tiny_cfg(max_res=8), 3)
    good = run.checkpoint_path(0.01, "")
    trainer.save(good, CheckpointMeta(10, 1, 0.0, 0))
    run.commit_checkpoint(good, CheckpointMeta(10, 1, 0.0, 0))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(training, "atomic_write_json", boom)
    with pytest.raises(OSError):
        trainer.save(run.checkpoint_path(0.02, ""), CheckpointMeta(20, 2, 0.0, 0))
    assert run.latest_checkpoint() == good
    assert sorted(p.name for p in run.checkpoints.iterdir()) == [good.name, "latest.json"]
    assert oct(good.stat().st_mode & 0o777) != oct(0o700)  # a plain folder, not mkdtemp's 0700


def test_sample_cli_deterministic_and_prefix_stable(tmp_path):
    out = tmp_path / "run"
    flags = ["--preset", "quick", "--max-res", "8", *TINY_FLAGS, "--default-batch", "8"]
    flags += ["--stabilize-kimg", "0.008", "--fade-kimg", "0.016", "--kimg", "0.024"]
    flags += ["--random-data", "--no-progress", "--out", str(out)]
    assert train_cli.main(flags) == 0
    paths = [tmp_path / f"s{i}.npz" for i in range(3)]
    for p, n in zip(paths, (5, 5, 3)):
        assert (
            sample_cli.main(["--run", str(out), "--n", str(n), "--seed", "7", "--out", str(p)]) == 0
        )
    (a, sa, meta), (b, _, _), (c, _, _) = (load_samples(p) for p in paths)
    assert a.shape == (5, 8, 8, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:3], c)  # image i depends on (seed, i) only
    assert list(sa) == [7 * 10**6 + i for i in range(5)] and meta["framework"] == "tf"
    assert (
        sample_cli.main(["--run", str(out), "--n", "2", "--seed", "8", "--out", str(paths[2])]) == 0
    )
    assert not np.array_equal(load_samples(paths[2])[0], a[:2])


def test_non_finite_step_is_skipped_and_leaves_every_weight():
    cfg = tiny_cfg(max_res=8)
    trainer = ProGANTrainer(cfg, 3)
    st = cfg.schedule().state(0)
    trainer.set_stage(st)
    before = [v.numpy().copy() for v in trainer.D.trainable_variables]
    randoms = progan_randoms(cfg, st)
    randoms["z_d"] = np.full_like(randoms["z_d"], np.nan)
    u8, _ = RandomSource(3).batch(st.res, 0, st.batch)
    out = trainer.step(u8, None, randoms)
    assert out["skipped"] == 1.0
    for b, v in zip(before, trainer.D.trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())
    assert int(trainer.opt_d.iterations.numpy()) == 0


def test_exploding_loss_is_skipped_like_a_nonfinite_one():
    cfg = tiny_cfg(max_res=8, max_abs_loss=1e-6)
    trainer = ProGANTrainer(cfg, 3)
    before = [v.numpy().copy() for v in trainer.G.trainable_variables]
    out = _step(trainer, cfg, cfg.schedule().state(0))
    assert out["skipped"] == 1.0 and np.isfinite(out["loss_d"])
    for b, v in zip(before, trainer.G.trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())


def test_ablation_switches_and_conditioning_step():
    cfg = tiny_cfg(
        max_res=8,
        conditional=True,
        mbstd_group=0,
        pixelnorm=False,
        equalized_lr=False,
        spectral_norm_d=True,
        ema=False,
        normalize_latents=False,
        stabilize_kimg=0.008,
        fade_kimg=0.008,
    )
    trainer = ProGANTrainer(cfg, 1, num_classes=3)
    assert trainer.G_ema is None
    st = cfg.schedule().state(12)  # the fade to 8x8
    assert st.fading and st.res == 8
    u8 = np.random.default_rng(0).integers(0, 256, (st.batch, 8, 8, 1), dtype=np.uint8)
    trainer.set_stage(st)
    w0 = trainer.G.blocks[1].conv0.weight.numpy().copy()
    out = trainer.step(u8, np.arange(st.batch) % 3, progan_randoms(cfg, st))
    assert np.isfinite(out["loss_d"]) and np.isfinite(out["loss_g"]) and not out["skipped"]
    assert not np.allclose(w0, trainer.G.blocks[1].conv0.weight.numpy())
    assert trainer.D(u8.astype(np.float32), level=1).shape == (st.batch, 4)


def test_dry_run_and_help(capsys):
    assert train_cli.main(["--preset", "cifar10", "--dry-run"]) == 0
    text = capsys.readouterr().out
    cfg = json.loads(text[: text.index("\n}") + 2])
    assert cfg["gp_gamma"] == 750.0 and cfg["latent_dim"] == 128
    assert "fade" in text and " 32 " in text and "total: 20000 kimg" in text
    with pytest.raises(SystemExit):
        train_cli.main(["--help"])


def test_bench_smoke(capsys):
    from progan_tf import bench

    argv = ["--preset", "quick", *TINY_FLAGS, "--max-res", "8", "--res", "4"]
    assert bench.main([*argv, "--steps", "1", "--warmup", "0"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "img/s" in line]
    assert len(rows) == 1 and rows[0].split()[0] == "4"
    with pytest.raises(UserError, match="--profile is PyTorch's"):
        bench.main([*argv, "--steps", "1", "--profile", "2"])


def test_reset_zeroes_moments_and_iterations_but_keeps_the_learning_rate():
    cfg = tiny_cfg(max_res=8)
    trainer = ProGANTrainer(cfg, 3)
    _step(trainer, cfg, cfg.schedule().state(0))
    momentum = [v for v in trainer.opt_d.variables if "momentum" in v.path][0]
    assert momentum.numpy().any() and int(trainer.opt_d.iterations.numpy()) == 1
    trainer.reset_optimizers()
    assert not momentum.numpy().any() and int(trainer.opt_d.iterations.numpy()) == 0
    assert float(trainer.opt_d.learning_rate.numpy()) == pytest.approx(cfg.lr)


def test_ema_decay_per_step_without_retracing():
    """The EMA runs after the D step from the G weights the step started with, with the
    decay of cfg.ema_beta_at for the step's position; a changing decay never retraces."""
    cfg = tiny_cfg(max_res=8, ema_rampup=0.05)
    trainer = ProGANTrainer(cfg, 3)
    sched = cfg.schedule()
    betas = []
    for nimg in (0, 8, 160):
        st = sched.state(nimg)
        w = [v.numpy().copy() for v in trainer.G.trainable_variables]
        e = [v.numpy().copy() for v in trainer.G_ema.trainable_variables]
        _step(trainer, cfg, st)
        b = cfg.ema_beta_at(nimg, st.batch)
        betas.append(b)
        for w0, e0, v in zip(w, e, trainer.G_ema.trainable_variables):
            np.testing.assert_allclose(v.numpy(), w0 + (e0 - w0) * b, rtol=1e-5, atol=1e-7)
    assert len(set(betas)) == 3
    assert len(trainer._steps) == 1  # one trace for every decay
