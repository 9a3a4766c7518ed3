"""SN-ProGAN in PyTorch: spectral norm on every layer of G and D keeps each normalised weight's
top singular value at ~1 through training (checked with NumPy's SVD, independent of the power
iteration), the loss options against hand computations, and the switches' validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gancore.latents import RandomSource
from progan_common.config import PRESETS, ProGANConfig
from progan_torch.layers import _Equalized
from progan_torch.loss import d_loss, g_loss
from progan_torch.training import ProGANTrainer
from tests.progan_torch.conftest import make_tiny
from tests.train_helpers import progan_randoms

SN_SWITCHES = {
    k: PRESETS["sn-progan-quick"][k]
    for k in ("spectral_norm_g", "spectral_norm_d", "equalized_lr", "loss", "label_smoothing")
}


def sn_cfg(**over) -> ProGANConfig:
    return make_tiny(max_res=16, fmap_base=64, fmap_max=16, default_batch=8, lr=2e-4,
                     gp_lambda=0.0, drift=0.0, **{**SN_SWITCHES, **over})  # fmt: skip


def normalised_layers(module: torch.nn.Module) -> dict[str, _Equalized]:
    return {n: m for n, m in module.named_modules() if isinstance(m, _Equalized)}


def top_singular_values(module: torch.nn.Module) -> dict[str, float]:
    """sigma_max of W / (u . W v) with the stored u, v (the weight eval mode uses), by SVD."""
    out = {}
    for name, m in normalised_layers(module).items():
        p = m.parametrizations.weight
        w = p.original.detach().double().flatten(1).numpy()
        u, v = p[0]._u.double().numpy(), p[0]._v.double().numpy()
        out[name] = float(np.linalg.svd(w / (u @ w @ v), compute_uv=False)[0])
    return out


def test_every_layer_of_both_networks_is_normalised():
    tr = ProGANTrainer(sn_cfg(), 3, 0, channels_last=False)
    for net in (tr.m.G, tr.m.D, tr.m.G_ema):
        layers = normalised_layers(net)
        assert layers and all(m.spectral_norm and m.scale == 1.0 for m in layers.values())
    keys = tr.m.D.state_dict()
    assert "blocks.0.conv.parametrizations.weight.original" in keys
    assert "blocks.0.conv.parametrizations.weight.0._u" in keys
    assert "blocks.0.conv.weight" not in keys
    assert sn_cfg().model_name == "sn-progan"
    assert sn_cfg(spectral_norm_g=False).model_name == "progan"  # SN on D only: an ablation
    plain = ProGANTrainer(make_tiny(max_res=16), 3, 0, channels_last=False)
    assert not any(m.spectral_norm for m in normalised_layers(plain.m.G).values())


def test_top_singular_value_stays_at_one_through_training():
    """One power iteration per training forward keeps sigma's estimate tight: after 15 warm-up
    iterations the normalised weights start within 4 % of 1 (random matrices have close top
    singular values), and after 30 steps through every level within 1 %. The estimate
    u . W v never exceeds sigma_max, so the normalised value is never below 1."""
    cfg = sn_cfg()
    tr = ProGANTrainer(cfg, 3, 0, channels_last=False)
    init_u = {
        n: m.parametrizations.weight[0]._u.clone() for n, m in normalised_layers(tr.m.G_ema).items()
    }
    source, sched = RandomSource(3, seed=1), cfg.schedule()
    for i in range(30):
        st = sched.state(i * cfg.default_batch)
        tr.set_stage(st)
        u8, _ = source.batch(st.res, st.nimg, st.batch)
        assert tr.step(u8, None, progan_randoms(cfg, st))["skipped"] == 0
    assert st.res == cfg.max_res  # every level has been trained
    for net in ("G", "D"):
        values = top_singular_values(getattr(tr.m, net))
        assert all(1 - 1e-5 <= s <= 1.01 for s in values.values()), (net, values)
    # G_ema holds G's power-iteration vectors, copied at each EMA update (between the D step
    # and the G step, whose forward advances G's by one more iteration), never averaged
    for (name, a), b in zip(
        normalised_layers(tr.m.G).items(), normalised_layers(tr.m.G_ema).values()
    ):
        pa, pb = a.parametrizations.weight[0], b.parametrizations.weight[0]
        assert not torch.equal(pb._u, init_u[name]), name
        assert float(pa._u @ pb._u) > 0.999 and float(pa._v @ pb._v) > 0.999, name


def test_sampling_does_not_advance_the_power_iteration():
    cfg = sn_cfg(ema=False)  # samples come from G itself, which is in training mode
    tr = ProGANTrainer(cfg, 3, 0, channels_last=False)
    layer = next(iter(normalised_layers(tr.m.G).values())).parametrizations.weight[0]
    u = layer._u.clone()
    tr.generate(np.random.default_rng(0).standard_normal((4, cfg.latent_dim)).astype(np.float32))
    assert torch.equal(layer._u, u) and tr.m.G.training


class LinearCritic(torch.nn.Module):
    """D(x) = (x . w, x . w2): a score and one label logit; no stage logic."""

    def __init__(self, n: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(n, 2, generator=g)

    def forward(self, x, level=None, fading=None, alpha=None, chunks=1):
        return x.flatten(1) @ self.w


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


@pytest.mark.parametrize("loss", ["wgan-gp", "nonsaturating", "hinge"])
def test_losses_against_hand_computation(loss):
    rng = np.random.default_rng(1)
    reals, fakes = rng.normal(0, 0.3, (6, 1, 2, 2)), rng.normal(0, 0.3, (6, 1, 2, 2))
    u = rng.uniform(0, 1, 6)
    D = LinearCritic(4)
    w = D.w.double().numpy()[:, 0]
    reals, fakes = (
        reals.astype(np.float32).astype(np.float64),
        fakes.astype(np.float32).astype(np.float64),
    )
    s = 0.1 if loss == "nonsaturating" else 0.0
    cfg = make_tiny(loss=loss, label_smoothing=s, gp_lambda=3.0, gp_gamma=2.0, drift=0.01)
    r, f = reals.reshape(6, -1) @ w, fakes.reshape(6, -1) @ w
    if loss == "wgan-gp":
        adv, g_adv = f - r, -f
    elif loss == "hinge":
        adv, g_adv = np.maximum(0, 1 - r) + np.maximum(0, 1 + f), -f
    else:  # BCE(sigmoid(r), 1 - s) + BCE(sigmoid(f), 0); G: -log sigmoid(f)
        sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
        bce = lambda p, t: -(t * np.log(p) + (1 - t) * np.log(1 - p))  # noqa: E731
        adv, g_adv = bce(sig(r), 1 - s) + bce(sig(f), 0.0), -np.log(sig(f))
        np.testing.assert_allclose(g_adv, _softplus(-f), rtol=1e-12)
    # a linear critic's input gradient is w for every sample; at 2x2 of a 32x32 model the
    # official target is gamma * 16
    target = 2.0 * cfg.max_res / 2
    gp = 3.0 / target**2 * (np.linalg.norm(w) - target) ** 2
    expect = np.mean(adv + gp + 0.01 * r**2)
    t = lambda a: torch.from_numpy(a).float()  # noqa: E731
    got, stats = d_loss(D, t(reals), t(fakes), None, t(u), cfg, 0, False, 1.0)
    assert float(got) == pytest.approx(expect, rel=2e-5)
    assert float(stats["gp"]) == pytest.approx(gp, rel=2e-5)
    assert float(g_loss(D, t(fakes), None, cfg, 0, False, 1.0)) == pytest.approx(
        np.mean(g_adv), rel=2e-5
    )
    # AC-GAN term: softmax cross-entropy over the one label logit column is 0 (one class)
    labels = torch.zeros(6, dtype=torch.long)
    got_l, _ = d_loss(D, t(reals), t(fakes), labels, t(u), cfg, 0, False, 1.0)
    assert float(got_l) == pytest.approx(expect, rel=2e-5)


@pytest.mark.parametrize(
    "over, message",
    [
        ({"loss": "wgan"}, "loss must be one of"),
        ({"label_smoothing": 0.1}, "applies to --loss nonsaturating only"),
        ({"loss": "hinge", "label_smoothing": 0.1}, "applies to --loss nonsaturating only"),
        (
            {"loss": "nonsaturating", "label_smoothing": 0.6},
            r"label_smoothing must be in \[0, 0.5\)",
        ),
        ({"gp_resolution": "half"}, "gp_resolution must be full or native"),
        ({"max_res": 256, "fmap_base": 16}, "leaves 0 channels at 256x256"),
    ],
)
def test_switch_validation(over, message):
    with pytest.raises(ValueError, match=message):
        ProGANConfig(**over).validate()


def test_spectrally_normalised_networks_run_on_the_meta_device():
    """FLOP counting builds the networks on ``meta`` tensors, where autocast does not exist."""
    from progan_torch.networks import Discriminator, Generator

    cfg = sn_cfg()
    with torch.device("meta"):
        G, D = Generator(cfg, 3), Discriminator(cfg, 3)
        fakes = G(torch.randn(4, cfg.latent_dim), None, 1, True, torch.tensor(0.5))
        loss, _ = d_loss(D, torch.randn(4, 3, 8, 8), fakes, None, torch.rand(4), cfg, 1, True, 0.5)
    assert fakes.shape == (4, 3, 8, 8) and fakes.device.type == "meta" and loss.shape == ()
