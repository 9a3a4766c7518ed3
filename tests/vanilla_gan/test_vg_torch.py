"""PyTorch DCGAN / SN-DCGAN: shapes, init, spectral norm, the training step, sampling modes
(the loop contract -- resume, non-finite policy, Ctrl-C -- is tested for every trainer in
tests/gancore/test_loop_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vanilla_gan import torch_nets
from vanilla_gan.torch_training import TorchTrainer, generate


def _z(cfg, seed: int = 0) -> dict:
    return {
        "z": np.random.default_rng(seed).standard_normal(
            (1, cfg.batch, cfg.z_dim), dtype=np.float32
        )
    }


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


@pytest.mark.parametrize("model", ["dcgan", "sndcgan"])
def test_activations_run_in_place_with_the_same_gradients(make_config, model):
    """ReLU / LeakyReLU overwrite their input, as pytorch/examples' DCGAN (whose loop the
    bench's torch-ref imitates); the gradients equal those of copying activations."""
    cfg = make_config(model, res=32)
    grads = []
    for inplace in (True, False):
        torch.manual_seed(0)
        G, D = torch_nets.build_models(cfg, 3)
        acts = [
            m
            for m in (*G.modules(), *D.modules())
            if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU))
        ]
        assert acts and all(m.inplace for m in acts)
        for m in acts:
            m.inplace = inplace
        D(G(torch.randn(4, cfg.z_dim, generator=torch.Generator().manual_seed(1)))).sum().backward()
        grads.append([p.grad for p in (*G.parameters(), *D.parameters())])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


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
    trainer = TorchTrainer(cfg, 3)
    src = array_source(32)
    for t in range(4):
        trainer.step(src.batch(32, 8 * t, 8)[0], None, _z(cfg, t))
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
    trainer = TorchTrainer(cfg, 3)
    before_g = [p.detach().clone() for p in trainer.G.parameters()]
    before_d = [p.detach().clone() for p in trainer.D.parameters()]
    before_e = [p.detach().clone() for p in trainer.G_ema.parameters()]
    stats = trainer.step(array_source(32).batch(32, 0, 8)[0], None, _z(cfg))
    assert np.isfinite(stats["loss_d"]) and np.isfinite(stats["loss_g"]) and not stats["skipped"]
    for before, model_ in ((before_g, trainer.G), (before_d, trainer.D), (before_e, trainer.G_ema)):
        after = list(model_.parameters())
        assert all(not torch.equal(a, b) for a, b in zip(after, before))


def test_skipped_step_leaves_weights_and_batchnorm_statistics(make_config, array_source):
    """A step with non-finite latents is skipped whole: no weight moves and BatchNorm's running
    statistics (updated by the forward passes themselves) are restored."""
    cfg = make_config("dcgan")
    trainer = TorchTrainer(cfg, 3)
    trainer.step(array_source(32).batch(32, 0, 8)[0], None, _z(cfg))
    before = {k: v.clone() for m in (trainer.G, trainer.D) for k, v in m.state_dict().items()}
    z = _z(cfg)
    z["z"][:] = np.nan
    stats = trainer.step(array_source(32).batch(32, 8, 8)[0], None, z)
    assert stats["skipped"] == 1.0
    after = {k: v for m in (trainer.G, trainer.D) for k, v in m.state_dict().items()}
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert trainer.state_is_finite()


def test_diverging_losses_are_skipped(make_config, array_source):
    """--lr 1e6 would blow the weights up; the magnitude guard skips every exploding step."""
    cfg = make_config("dcgan", lr_d=1e6, lr_g=1e6, max_abs_loss=1e3)
    trainer = TorchTrainer(cfg, 3)
    skipped = [
        trainer.step(array_source(32).batch(32, 8 * t, 8)[0], None, _z(cfg, t))["skipped"]
        for t in range(6)
    ]
    assert skipped[0] == 0.0 and all(skipped[2:]), skipped
    assert trainer.state_is_finite()
    assert max(p.abs().max().item() for p in trainer.G.parameters()) < 1e8


def test_sampling_with_batch_statistics_leaves_the_running_ones(make_config, array_source):
    cfg = make_config("dcgan")
    trainer = TorchTrainer(cfg, 3)
    for t in range(3):
        trainer.step(array_source(32).batch(32, 8 * t, 8)[0], None, _z(cfg, t))
    z = np.random.default_rng(5).standard_normal((16, cfg.z_dim), dtype=np.float32)
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    running = generate(trainer.G, z, torch.device("cpu"), bn_mode="running")
    batch = generate(trainer.G, z, torch.device("cpu"), bn_mode="batch")
    assert running.shape == batch.shape == (16, 32, 32, 3)
    assert not np.array_equal(running, batch)  # the two modes really differ
    for k, v in trainer.G.state_dict().items():
        assert torch.equal(v, before[k]), k
    np.testing.assert_array_equal(running, generate(trainer.G, z, torch.device("cpu")))


def test_ema_rampup_sets_the_decay_of_each_step(make_config, array_source):
    """With --ema-rampup the averaged G moves by the step's own decay (a function of the
    image position the loop passes in set_stage), not by the fixed --ema-beta."""
    from gancore.train.stages import ConstantStages

    cfg = make_config("dcgan", ema_beta=0.999, ema_rampup=0.05)
    trainer = TorchTrainer(cfg, 3)
    src = array_source(32)
    trainer.set_stage(ConstantStages(cfg.res, cfg.batch).state(0))
    trainer.step(src.batch(32, 0, 8)[0], None, _z(cfg))
    # at image 0 the half-life is 0: the average is a copy of G
    for e, p in zip(trainer.G_ema.parameters(), trainer.G.parameters()):
        torch.testing.assert_close(e, p, rtol=0, atol=1e-7)
    nimg = 1600
    beta = cfg.ema_beta_at(nimg)
    assert 0.5 < beta < cfg.ema_beta  # ramping: well below the ceiling, well above a copy
    ema_before = [p.detach().clone() for p in trainer.G_ema.parameters()]
    trainer.set_stage(ConstantStages(cfg.res, cfg.batch).state(nimg))
    trainer.step(src.batch(32, 8, 8)[0], None, _z(cfg, 1))
    for e, old, p in zip(trainer.G_ema.parameters(), ema_before, trainer.G.parameters()):
        torch.testing.assert_close(e, p + (old - p) * beta, rtol=1e-5, atol=1e-6)
