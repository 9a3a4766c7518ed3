"""PyTorch DCGAN / SN-DCGAN: shapes, init, spectral norm, training step, resume, NaN guard."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gancore.rundir import RunDir
from vanilla_gan import torch_nets
from vanilla_gan.loop import TrainingDiverged, run_training
from vanilla_gan.torch_loop import TorchTrainer, load_checkpoint


@pytest.mark.parametrize("model", ["dcgan", "sndcgan"])
@pytest.mark.parametrize("res", [32, 64])
def test_shapes_and_range(make_config, model, res):
    cfg = make_config(model, res=res)
    torch.manual_seed(0)
    G, D = torch_nets.build_models(cfg, 3)
    x = G(torch.randn(5, cfg.z_dim))
    assert x.shape == (5, 3, res, res)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    assert D(x).shape == (5,)


def test_init_scheme(make_config):
    """Radford et al.: conv / dense weights N(0, 0.02), BN scale N(1, 0.02), biases 0."""
    cfg = make_config("dcgan", width=32, res=64)
    torch.manual_seed(0)
    G, _ = torch_nets.build_models(cfg, 3)
    w = torch.cat(
        [
            m.weight.flatten()
            for m in G.modules()
            if isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.Conv2d))
        ]
    )
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    g = torch.cat([m.weight for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(g.mean().item() - 1.0) < 0.01


def _sn_modules(model):
    return [m for m in model.modules() if hasattr(m, "parametrizations")]


def _matrix(m) -> np.ndarray:
    w = m.weight.detach().numpy()  # the normalised weight W / sigma (eval: frozen u, v)
    if isinstance(m, torch.nn.ConvTranspose2d):
        w = np.transpose(w, (1, 0, 2, 3))
    return w.reshape(w.shape[0], -1)


def test_spectral_norm_keeps_sigma_near_one(make_config, array_source):
    cfg = make_config("sndcgan", sn_g=True)
    trainer = TorchTrainer(cfg, 3, device="cpu")
    src = array_source(32)
    rng = np.random.default_rng(0)
    for t in range(4):
        trainer.step(
            src.batch(32, 8 * t, 8)[0][None],
            rng.standard_normal((1, 8, cfg.z_dim), dtype=np.float32),
        )
    trainer.D.eval()
    trainer.G.eval()
    mods = _sn_modules(trainer.D) + _sn_modules(trainer.G)
    assert len(mods) == 8 + 5  # every D layer (7 convs + dense), every G layer
    for m in mods:
        sigma = np.linalg.svd(_matrix(m), compute_uv=False)[0]
        assert abs(sigma - 1.0) < 0.1, (m, sigma)  # one power iteration per step lags a little
    # And without SN the raw weights are far from sigma 1 (the check can fail).
    raw = mods[0].parametrizations.weight.original.detach().numpy()
    assert np.linalg.svd(raw.reshape(raw.shape[0], -1), compute_uv=False)[0] < 0.9


@pytest.mark.parametrize("model", ["dcgan", "sndcgan"])
def test_one_step_changes_params_finite_losses(make_config, array_source, model):
    # (Not hinge here: with every logit inside the margins, hinge's gradient on D's output
    # bias is exactly -1 + 1 = 0, so that one tensor rightly stays put.)
    cfg = make_config(model, ema_beta=0.9, label_smoothing=0.1)
    trainer = TorchTrainer(cfg, 3, device="cpu")
    before_g = [p.detach().clone() for p in trainer.G.parameters()]
    before_d = [p.detach().clone() for p in trainer.D.parameters()]
    before_e = [p.detach().clone() for p in trainer.G_ema.parameters()]
    z = np.random.default_rng(0).standard_normal((1, 8, cfg.z_dim), dtype=np.float32)
    trainer.step(array_source(32).batch(32, 0, 8)[0][None], z)
    loss_d, loss_g = trainer.pop_losses()
    assert np.isfinite(loss_d) and np.isfinite(loss_g)
    for before, model_ in ((before_g, trainer.G), (before_d, trainer.D), (before_e, trainer.G_ema)):
        after = list(model_.parameters())
        assert all(not torch.equal(a, b) for a, b in zip(after, before))


def _run(cfg, path, source, resume=False):
    run = RunDir(path)
    if not resume:
        run.create({"test": True})
    trainer = TorchTrainer(cfg, 3, device="cpu")
    run_training(cfg, run, trainer, source, resume=resume, progress=False)
    return trainer


def test_resume_is_exact(make_config, array_source, tmp_path):
    src = array_source(32)
    full = _run(
        make_config("sndcgan", kimg=0.048, deterministic=True, ema_beta=0.5, loss="hinge"),
        tmp_path / "a",
        src,
    )
    _run(
        make_config("sndcgan", kimg=0.024, deterministic=True, ema_beta=0.5, loss="hinge"),
        tmp_path / "b",
        src,
    )
    resumed = _run(
        make_config("sndcgan", kimg=0.048, deterministic=True, ema_beta=0.5, loss="hinge"),
        tmp_path / "b",
        src,
        resume=True,
    )
    for name in ("G", "D", "G_ema"):
        sa, sb = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (name, k)
    assert (
        full.opt_d.state_dict()["state"][0]["step"]
        == resumed.opt_d.state_dict()["state"][0]["step"]
    )
    kimgs = [r["kimg"] for r in RunDir(tmp_path / "b").read_log()]
    assert kimgs == sorted(kimgs) and kimgs[-1] == 0.048


def test_nan_stops_run_and_keeps_last_checkpoint(make_config, array_source, tmp_path):
    cfg = make_config("dcgan", kimg=0.064, debug_nan_at_kimg=0.024)
    run = RunDir(tmp_path / "run")
    run.create({"test": True})
    with pytest.raises(TrainingDiverged, match="non-finite"):
        run_training(cfg, run, TorchTrainer(cfg, 3, device="cpu"), array_source(32), progress=False)
    status = run.status()
    assert status["state"] == "failed" and "non-finite" in status["error"]
    latest = json.loads((run.checkpoints / "latest.json").read_text())["latest"]
    assert latest["kimg"] == pytest.approx(0.016)
    ckpt = load_checkpoint(run.latest_checkpoint())
    assert all(torch.isfinite(v).all() for v in ckpt["G"].values() if v.is_floating_point())


def test_ctrl_c_writes_checkpoint_then_resume_finishes(make_config, array_source, tmp_path):
    import os
    import signal

    class InterruptingSource(array_source):
        def batch(self, res, start, count):
            if start == 8:  # Ctrl-C during step 1: honoured at the end of that step
                os.kill(os.getpid(), signal.SIGINT)
            return super().batch(res, start, count)

    cfg = make_config("dcgan", kimg=0.040, snapshot_kimg=1.0, tick_kimg=1.0)
    run = RunDir(tmp_path / "run")
    run.create({"test": True})
    with pytest.raises(KeyboardInterrupt):
        run_training(
            cfg, run, TorchTrainer(cfg, 3, device="cpu"), InterruptingSource(32), progress=False
        )
    status = run.status()
    assert (
        status["state"] == "failed" and status.get("interrupted") and "--resume" in status["error"]
    )
    assert json.loads((run.checkpoints / "latest.json").read_text())["latest"]["kimg"] == 0.016
    state = run_training(
        cfg, run, TorchTrainer(cfg, 3, device="cpu"), array_source(32), resume=True, progress=False
    )
    assert state["nimg"] == 40 and run.status()["state"] == "finished"
