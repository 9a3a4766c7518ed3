"""progan_tf training loop, CLIs, checkpoints and resume on tiny networks (CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.progan_tf.pgtf_helpers import tiny_cfg

tf = pytest.importorskip("tensorflow")

from gancore.rundir import RunDir  # noqa: E402
from gancore.samples import load_samples  # noqa: E402
from progan_tf import checkpoint as ckpt_mod  # noqa: E402
from progan_tf import sample as sample_cli  # noqa: E402
from progan_tf import train as train_cli  # noqa: E402
from progan_tf.networks import build_networks, named_layers  # noqa: E402
from progan_tf.training import RandomSource, Trainer, step_randoms  # noqa: E402

TINY_FLAGS = ["--latent-dim", "8", "--fmap-base", "64", "--fmap-max", "16", "--seed", "3"]


def test_one_step_per_phase_4_to_32_via_cli(tmp_path, capsys):
    """Every phase from 4x4 to 32x32 runs (batch 4: one or two steps each) and trains every block."""
    out = tmp_path / "run"
    flags = [
        "--preset",
        "quick",
        "--max-res",
        "32",
        *TINY_FLAGS,
        "--default-batch",
        "4",
        "--stabilize-kimg",
        "0.004",
        "--fade-kimg",
        "0.008",
        "--kimg",
        "0.040",
        "--tick-kimg",
        "0.004",
        "--snapshot-kimg",
        "1",
        "--random-data",
        "--out",
        str(out),
    ]
    assert train_cli.main(flags) == 0
    bar = capsys.readouterr().err  # the progress bar: resolution, phase, alpha, losses, img/s
    assert "32px stabilize a=1.00 kimg=0.0" in bar and "img/s" in bar
    run = RunDir(out)
    assert run.status()["state"] == "finished"
    log = run.read_log()
    seen = {(r["phase"], r["res"]) for r in log}
    assert {("fade", 8), ("stabilize", 8), ("fade", 16), ("fade", 32), ("stabilize", 32)} <= seen
    for key in (
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
        "skipped_steps",
    ):
        assert key in log[-1]
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in log)
    names = sorted(p.name for p in run.samples.iterdir())
    assert (
        "final.png" in names
        and "phase-05-fade-32.png" in names
        and "phase-00-stabilize-4.png" in names
    )
    # every block of G and D moved away from its (seeded, reproducible) initial value
    cfg = tiny_cfg(max_res=32)
    g0, d0, _ = build_networks(cfg, 3)
    trainer = Trainer(cfg, 3)
    ckpt_mod.load_checkpoint(run.latest_checkpoint(), trainer)
    for fresh, trained in ((g0, trainer.G), (d0, trainer.D)):
        a, b = named_layers(fresh), named_layers(trained)
        for name in a:
            assert not np.allclose(a[name].weight.numpy(), b[name].weight.numpy()), name
    assert int(trainer.G.level.numpy()) == 3 and int(trainer.nimg.numpy()) == 40


def _resume_cfg(kimg: float):
    return tiny_cfg(
        max_res=8,
        stabilize_kimg=0.016,
        fade_kimg=0.032,
        kimg=kimg,
        snapshot_kimg=0.032,
        tick_kimg=0.016,
    )


def test_resume_mid_fade_equals_uninterrupted(tmp_path):
    tf.config.experimental.enable_op_determinism()
    source = RandomSource(channels=3, seed=1)
    full = RunDir(tmp_path / "full")
    full.create({})
    a = train_cli.train(_resume_cfg(0.048), full, source)["trainer"]
    part = RunDir(tmp_path / "part")
    part.create({})
    train_cli.train(_resume_cfg(0.032), part, source)
    entry = part.checkpoint_entries()[-1]
    assert entry["kimg"] == pytest.approx(0.032)
    state = _resume_cfg(0.048).schedule().state(32)
    assert state.phase == "fade" and 0 < state.alpha < 1  # the checkpoint is mid-fade
    b = train_cli.train(_resume_cfg(0.048), part, source, resume=True)["trainer"]
    for name in ("G", "D", "G_ema"):
        for va, vb in zip(getattr(a, name).weights, getattr(b, name).weights):
            np.testing.assert_allclose(
                va.numpy(), vb.numpy(), atol=1e-6, err_msg=f"{name} {va.path}"
            )
    for va, vb in zip(a.opt_d.variables, b.opt_d.variables):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), atol=1e-6, err_msg=va.path)
    assert [r["kimg"] for r in part.read_log()] == [r["kimg"] for r in full.read_log()]


def test_failed_checkpoint_write_keeps_the_last_good_one(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run")
    run.create({})
    trainer = Trainer(tiny_cfg(max_res=8), 3)
    good = ckpt_mod.save_checkpoint(run, trainer, 0.01, {"img_channels": 3, "num_classes": 0})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod, "atomic_write_json", boom)
    with pytest.raises(OSError):
        ckpt_mod.save_checkpoint(run, trainer, 0.02, {})
    assert run.latest_checkpoint() == good
    assert sorted(p.name for p in run.checkpoints.iterdir()) == [good.name, "latest.json"]


def test_sample_cli_deterministic_and_prefix_stable(tmp_path):
    out = tmp_path / "run"
    flags = [
        "--preset",
        "quick",
        "--max-res",
        "8",
        *TINY_FLAGS,
        "--default-batch",
        "8",
        "--stabilize-kimg",
        "0.008",
        "--fade-kimg",
        "0.016",
        "--kimg",
        "0.024",
        "--random-data",
        "--no-progress",
        "--out",
        str(out),
    ]
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


def test_non_finite_step_is_skipped_and_counted(tmp_path):
    cfg = tiny_cfg(max_res=8, max_bad_steps=2)
    trainer = Trainer(cfg, 3)
    before = [v.numpy().copy() for v in trainer.D.trainable_variables]
    reals = np.full((8, 4, 4, 3), np.nan, dtype=np.float32)
    z_d, z_g, u = step_randoms(cfg, 0, 8)
    out = trainer.train_step(reals, None, z_d, z_g, u, 0, False)
    assert out["bad_d"] == 1.0
    for b, v in zip(before, trainer.D.trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())
    assert int(trainer.opt_d.iterations.numpy()) == 0

    class NaNSource(RandomSource):
        def batch(self, res, start, count):
            return np.zeros((count, res, res, 3), np.uint8), None

    run = RunDir(tmp_path / "run")
    run.create({})
    import progan_tf.training as training

    monkey = training.to_float_images
    try:
        training.to_float_images = lambda x: np.full(x.shape, np.nan, np.float32)
        with pytest.raises(Exception, match="consecutive minibatches"):
            train_cli.train(cfg, run, NaNSource())
    finally:
        training.to_float_images = monkey


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
    )
    trainer = Trainer(cfg, 1, num_classes=3)
    assert trainer.G_ema is None
    labels = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    reals = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 1)).astype(np.float32)
    z_d, z_g, u = step_randoms(cfg, 0, 8)
    w0 = trainer.G.blocks[1].conv0.weight.numpy().copy()
    out = trainer.train_step(reals, labels, z_d, z_g, u, 1, True)
    assert np.isfinite(out["loss_d"]) and np.isfinite(out["loss_g"])
    assert not np.allclose(w0, trainer.G.blocks[1].conv0.weight.numpy())
    assert trainer.D(reals, level=1).shape == (8, 4)


def test_dry_run_and_help(capsys):
    assert train_cli.main(["--preset", "cifar10", "--dry-run"]) == 0
    text = capsys.readouterr().out
    cfg = json.loads(text[: text.index("\n}") + 2])
    assert cfg["gp_gamma"] == 750.0 and cfg["latent_dim"] == 128
    assert "fade" in text and " 32 " in text and "total: 20000 kimg" in text  # gancore phase table
    with pytest.raises(SystemExit):
        train_cli.main(["--help"])


def test_bench_smoke(capsys):
    from progan_tf import bench

    assert (
        bench.main(
            [
                "--preset",
                "quick",
                *TINY_FLAGS,
                "--max-res",
                "8",
                "--res",
                "4",
                "--steps",
                "1",
                "--warmup",
                "0",
            ]
        )
        == 0
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if "img/s" in line]
    assert len(rows) == 1 and rows[0].split()[0] == "4"


def test_adam_reset_exactly_when_the_official_key_changes():
    """Moments and iteration count are zeroed at the start and end of every fade, never else."""
    cfg = tiny_cfg(max_res=8, stabilize_kimg=0.016, fade_kimg=0.016)
    trainer = Trainer(cfg, 3)
    sched = cfg.schedule()

    def dirty() -> None:
        for v in trainer.opt_d.variables:
            if "learning_rate" not in v.path:
                v.assign(tf.ones(v.shape, v.dtype))

    def is_reset() -> bool:
        return int(trainer.opt_d.iterations.numpy()) == 0

    resets = []
    for nimg in range(0, 64, 8):  # stab 0..16, fade 16..32 (alpha > 0 from 24), stab 8 after
        dirty()
        assert trainer.set_schedule_state(sched.state(nimg)) == is_reset()
        resets.append(is_reset())
    expected = [
        sched.state(n).optimizer_key != sched.state(n - 8).optimizer_key if n else False
        for n in range(0, 64, 8)
    ]
    assert resets == expected and sum(resets) == 2
    momentum = [v for v in trainer.opt_d.variables if "momentum" in v.path][0]
    dirty()
    trainer.reset_optimizers()
    assert not momentum.numpy().any()
    assert float(trainer.opt_d.learning_rate.numpy()) == pytest.approx(cfg.lr)  # lr kept


def test_ema_decay_per_step():
    """The EMA runs after the D step from the G weights the step started with; a per-step
    decay (``ema_beta``, from cfg.ema_beta_at) overrides cfg.ema_beta without a retrace."""
    cfg = tiny_cfg(max_res=8)
    trainer = Trainer(cfg, 3)
    reals = np.random.default_rng(0).uniform(-1, 1, (8, 4, 4, 3)).astype(np.float32)
    for step, beta in enumerate((None, 0.25, 0.9)):
        z_d, z_g, u = step_randoms(cfg, 8 * step, 8)
        w = [v.numpy().copy() for v in trainer.G.trainable_variables]
        e = [v.numpy().copy() for v in trainer.G_ema.trainable_variables]
        trainer.train_step(reals, None, z_d, z_g, u, 0, False, ema_beta=beta)
        b = cfg.ema_beta if beta is None else beta
        for w0, e0, v in zip(w, e, trainer.G_ema.trainable_variables):
            np.testing.assert_allclose(v.numpy(), w0 + (e0 - w0) * b, rtol=1e-5, atol=1e-7)
    assert len(trainer._steps) == 1  # one trace for every decay
