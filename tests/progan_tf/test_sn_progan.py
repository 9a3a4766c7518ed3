"""SN-ProGAN in TensorFlow and against PyTorch: the Keras spectral norm keeps each weight's top
singular value at ~1 (NumPy SVD), follows torch's algorithm step for step (same weights and
u, v -> same outputs, same vectors after a training forward, same one-step updates for the new
loss switches), and the loss options match hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from progan_common.config import PRESETS
from tests.progan_tf.pgtf_helpers import tiny_cfg

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")

from progan_tf import convert  # noqa: E402
from progan_tf.loss import d_loss, g_loss  # noqa: E402
from progan_tf.networks import Discriminator, Generator, named_layers  # noqa: E402
from progan_torch import networks as tn  # noqa: E402
from tests.progan_tf.test_parity import _step_both, nchw, nhwc  # noqa: E402

SN = {k: PRESETS["sn-progan-quick"][k] for k in ("spectral_norm_g", "spectral_norm_d",
      "equalized_lr", "loss", "label_smoothing", "lr", "beta1", "beta2")}  # fmt: skip


def sn_cfg(**over):
    return tiny_cfg(**{**SN, "gp_lambda": 0.0, "drift": 0.0, **over})


def _vectors(model) -> dict[str, np.ndarray]:
    return {k: v for k, v in convert.keras_state_dict(model).items() if k.endswith(("_u", "_v"))}


def test_top_singular_value_stays_at_one_through_training():
    from gancore.latents import RandomSource
    from progan_tf.training import ProGANTrainer
    from tests.train_helpers import progan_randoms

    cfg = sn_cfg(stabilize_kimg=0.024, fade_kimg=0.024)  # 3 steps per phase
    tr = ProGANTrainer(cfg, 3, 0)
    source, sched = RandomSource(3, seed=1), cfg.schedule()
    for i in range(24):
        st = sched.state(i * cfg.default_batch)
        tr.set_stage(st)
        u8, _ = source.batch(st.res, st.nimg, st.batch)
        assert tr.step(u8, None, progan_randoms(cfg, st))["skipped"] == 0
    assert st.res == cfg.max_res
    for net in (tr.G, tr.D):
        for name, layer in named_layers(net).items():
            w = layer.torch_matrix(layer.weight).numpy().astype(np.float64)
            u, v = layer.sn_u.numpy().astype(np.float64), layer.sn_v.numpy().astype(np.float64)
            top = np.linalg.svd(w / (u @ w @ v), compute_uv=False)[0]
            assert 1 - 1e-5 <= top <= 1.01, (net.name, name, top)


@pytest.fixture(scope="module")
def pair():
    cfg = sn_cfg()
    torch.manual_seed(0)
    tg, td = tn.Generator(cfg, 3, 2), tn.Discriminator(cfg, 3, 2)
    kg, kd = Generator(cfg, 3, 2), Discriminator(cfg, 3, 2)
    for t, k in ((tg, kg), (td, kd)):
        convert.load_state_dict(k, t.state_dict())
        back = convert.torch_state_dict(k)
        assert set(back) == set(t.state_dict())
        for key, value in t.state_dict().items():
            np.testing.assert_array_equal(back[key].numpy(), value.numpy(), err_msg=key)
    return cfg, tg, td, kg, kd


def test_same_weights_same_outputs_and_power_iterations(pair):
    cfg, tg, td, kg, kd = pair
    rng = np.random.default_rng(1)
    z = rng.standard_normal((8, cfg.latent_dim)).astype(np.float32)
    y = np.arange(8) % 2
    onehot = np.eye(2, dtype=np.float32)[y]
    for level in range(kg.num_levels):
        for alpha in (0.5, 1.0):
            res, fading = 4 * 2**level, alpha < 1 and level > 0
            x = rng.uniform(-1, 1, (8, res, res, 3)).astype(np.float32)
            for training in (False, True):  # eval: stored u, v; training: one iteration each
                tg.train(training)
                td.train(training)
                with torch.no_grad():
                    g_ref = nhwc(tg(torch.from_numpy(z), torch.from_numpy(y), level, fading, alpha))
                    d_ref = td(nchw(x), level, fading, alpha).numpy()
                g_out = kg(z, onehot, level=level, fading=fading, alpha=alpha, training=training)
                d_out = kd(x, level=level, fading=fading, alpha=alpha, training=training)
                msg = f"level {level} alpha {alpha} training {training}"
                np.testing.assert_allclose(g_out.numpy(), g_ref, atol=1e-4, err_msg=msg)
                np.testing.assert_allclose(d_out.numpy(), d_ref, atol=1e-4, err_msg=msg)
                for t, k in ((tg, kg), (td, kd)):
                    ref = {
                        n: v.numpy() for n, v in t.state_dict().items() if n.endswith(("_u", "_v"))
                    }
                    for n, v in _vectors(k).items():
                        np.testing.assert_allclose(v, ref[n], atol=1e-5, err_msg=f"{n} {msg}")
    tg.train()
    td.train()


@pytest.mark.parametrize(
    "over,level,alpha,conditional",
    [
        ({}, 1, 0.5, False),  # the SN-ProGAN switches: non-saturating, smoothing 0.1
        ({"loss": "hinge", "label_smoothing": 0.0}, 2, 1.0, True),
        ({"loss": "wgan-gp", "label_smoothing": 0.0, "spectral_norm_g": False, "gp_lambda": 10.0,
          "drift": 0.001, "equalized_lr": True, "lr": 1e-3, "beta1": 0.0, "beta2": 0.99},
         1, 0.5, False),  # SN on D only, with the penalty
    ],
    ids=["nonsaturating", "hinge", "sn-d-wgan-gp"],
)  # fmt: skip
def test_one_training_step_matches(over, level, alpha, conditional):
    """As tests/progan_tf/test_parity.py::test_one_training_step_matches (moves in units of lr;
    tolerances explained there), plus the power-iteration vectors after the step."""
    cfg = sn_cfg(mbstd_group=4, **over)
    models, trainer, before, t_out, k_out = _step_both(cfg, level, alpha, conditional)
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        np.testing.assert_allclose(k_out[key], t_out[key], rtol=1e-4, atol=1e-5, err_msg=key)
    assert (k_out["gp"] is None) == (t_out["gp"] is None) == (cfg.gp_lambda == 0)
    for name in ("G", "D", "G_ema"):
        after_k = convert.keras_state_dict(getattr(trainer, name))
        after_t = {k: v.numpy() for k, v in getattr(models, name).state_dict().items()}
        vec = [k for k in after_t if k.endswith(("_u", "_v"))]
        for k in vec:
            np.testing.assert_allclose(after_k[k], after_t[k], atol=1e-5, err_msg=k)
        keys = [k for k in before[name] if k not in ("level", "alpha", *vec)]
        dk = np.concatenate([(after_k[k] - before[name][k]).ravel() for k in keys]) / cfg.lr
        dt = np.concatenate([(after_t[k] - before[name][k]).ravel() for k in keys]) / cfg.lr
        if name == "G_ema":
            np.testing.assert_allclose(dk, dt, atol=1e-3)
            continue
        assert np.mean(np.abs(dt) > 0.1) > 0.3, f"{name}: the step moved almost nothing"
        d = np.abs(dk - dt)
        assert d.max() < 1e-2, f"{name}: max |delta_tf - delta_torch| = {d.max():.3g} lr"
        assert np.mean(d < 1e-3) >= 0.999, f"{name}: only {np.mean(d < 1e-3):.4f} within 1e-3 lr"


class LinearCritic:
    """D(x) = x . W: a score column and one label logit; accepts the network call's keywords."""

    def __init__(self, w: np.ndarray) -> None:
        self.w = tf.constant(w, tf.float32)

    def __call__(self, x, level=None, fading=None, alpha=None, training=False, chunks=1):
        return tf.reshape(x, [x.shape[0], -1]) @ self.w


@pytest.mark.parametrize("loss", ["wgan-gp", "nonsaturating", "hinge"])
def test_losses_against_hand_computation(loss):
    rng = np.random.default_rng(1)
    reals = rng.normal(0, 0.3, (6, 2, 2, 1)).astype(np.float32)
    fakes = rng.normal(0, 0.3, (6, 2, 2, 1)).astype(np.float32)
    u = rng.uniform(0, 1, 6).astype(np.float32)
    wmat = rng.standard_normal((4, 2)).astype(np.float32)
    D, w = LinearCritic(wmat), wmat[:, 0].astype(np.float64)
    s = 0.1 if loss == "nonsaturating" else 0.0
    cfg = tiny_cfg(
        max_res=32, loss=loss, label_smoothing=s, gp_lambda=3.0, gp_gamma=2.0, drift=0.01
    )
    r, f = reals.reshape(6, -1) @ w, fakes.reshape(6, -1) @ w
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    bce = lambda p, t: -(t * np.log(p) + (1 - t) * np.log(1 - p))  # noqa: E731
    adv, g_adv = {
        "wgan-gp": (f - r, -f),
        "hinge": (np.maximum(0, 1 - r) + np.maximum(0, 1 + f), -f),
        "nonsaturating": (bce(sig(r), 1 - s) + bce(sig(f), 0.0), -np.log(sig(f))),
    }[loss]
    target = 2.0 * 32 / 2  # the official target at 2x2 of a 32x32 model: gamma * 16
    gp = 3.0 / target**2 * (np.linalg.norm(w) - target) ** 2
    got, stats = d_loss(D, reals, fakes, None, u, cfg, 0, False, 1.0)
    assert float(got) == pytest.approx(np.mean(adv + gp + 0.01 * r**2), rel=2e-5)
    assert float(stats["gp"]) == pytest.approx(gp, rel=2e-5)
    assert float(g_loss(D, fakes, None, cfg, 0, False, 1.0)) == pytest.approx(
        np.mean(g_adv), rel=2e-5
    )
