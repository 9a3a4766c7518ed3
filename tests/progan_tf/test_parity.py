"""progan_tf vs progan_torch: same weights + same inputs -> same numbers.

Both frameworks are imported in this one test process (allowed in tests only).
Tolerances: forward passes agree to 1e-4 absolute (float32; the only differences
are summation orders inside convs/matmuls, oneDNN/Eigen vs torch's kernels, ~1e-6
relative). For one training step see :func:`test_one_training_step_matches`.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.progan_tf.pgtf_helpers import tiny_cfg

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")

from progan_tf import convert, layers, loss  # noqa: E402
from progan_tf.networks import Discriminator, Generator, param_counts  # noqa: E402
from progan_torch import layers as tl  # noqa: E402
from progan_torch import networks as tn  # noqa: E402

ALPHAS = (0.0, 0.5, 1.0)


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))


def nhwc(x: torch.Tensor) -> np.ndarray:
    return np.transpose(x.detach().numpy(), (0, 2, 3, 1))


@pytest.fixture(scope="module")
def pair():
    """Torch and Keras G and D (3 image channels, 4 classes) with the torch weights copied over."""
    cfg = tiny_cfg()
    torch.manual_seed(0)
    tg, td = tn.Generator(cfg, 3, 4), tn.Discriminator(cfg, 3, 4)
    kg, kd = Generator(cfg, 3, 4), Discriminator(cfg, 3, 4)
    convert.load_state_dict(kg, tg.state_dict())
    convert.load_state_dict(kd, td.state_dict())
    return cfg, tg, td, kg, kd


def _torch_counts(module) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, p in module.named_parameters():
        key = name.rsplit(".", 1)[0]
        out[key] = out.get(key, 0) + p.numel()
    return out


def test_parameter_counts_layer_by_layer(pair):
    _, tg, td, kg, kd = pair
    assert param_counts(kg) == _torch_counts(tg)
    assert param_counts(kd) == _torch_counts(td)


def test_state_dict_round_trip(pair):
    _, tg, td, kg, kd = pair
    for t, k in ((tg, kg), (td, kd)):
        back = convert.torch_state_dict(k)
        ref = t.state_dict()
        assert set(back) == set(ref)
        for name, v in ref.items():
            np.testing.assert_array_equal(back[name].numpy(), v.numpy(), err_msg=name)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_generators_agree_every_level(pair, alpha):
    cfg, tg, _, kg, _ = pair
    z = np.random.default_rng(1).standard_normal((8, cfg.latent_dim)).astype(np.float32)
    y = np.arange(8) % 4
    kg.alpha.assign(alpha)
    for level in range(kg.num_levels):
        with torch.no_grad():
            ref = nhwc(tg(torch.from_numpy(z), torch.from_numpy(y), level, alpha < 1, alpha))
        out = kg(z, np.eye(4, dtype=np.float32)[y], level=level, fading=alpha < 1).numpy()
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-4, err_msg=f"level {level} alpha {alpha}")


@pytest.mark.parametrize("alpha", ALPHAS)
def test_discriminators_agree_every_level(pair, alpha):
    cfg, _, td, _, kd = pair
    kd.alpha.assign(alpha)
    for level in range(kd.num_levels):
        res = 4 * 2**level
        x = np.random.default_rng(level).uniform(-1, 1, (8, res, res, 3)).astype(np.float32)
        with torch.no_grad():
            ref = td(nchw(x), level, alpha < 1, alpha).numpy()
        out = kd(x, level=level, fading=alpha < 1).numpy()
        assert out.shape == ref.shape == (8, 5)
        np.testing.assert_allclose(out, ref, atol=1e-4, err_msg=f"level {level} alpha {alpha}")


def test_building_blocks_agree():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 8, 8, 5)).astype(np.float32)
    # equalised conv and dense: same raw weights, same run-time scale
    tconv = tl.EqualizedConv2d(5, 7, 3)
    kconv = layers.EqualizedConv2d(5, 7, 3)
    kconv.weight.assign(np.transpose(tconv.weight.detach().numpy(), (2, 3, 1, 0)))
    with torch.no_grad():
        tconv.bias.normal_()
    kconv.bias.assign(tconv.bias.detach().numpy())
    assert kconv.scale == pytest.approx(tconv.scale)
    np.testing.assert_allclose(kconv(x).numpy(), nhwc(tconv(nchw(x))), atol=1e-5)
    tlin, klin = tl.EqualizedLinear(5, 3, gain=1.0), layers.EqualizedLinear(5, 3, gain=1.0)
    klin.weight.assign(tlin.weight.detach().numpy().T)
    v = x[:, 0, 0, :]
    np.testing.assert_allclose(
        klin(v).numpy(), tlin(torch.from_numpy(v)).detach().numpy(), atol=1e-6
    )
    # pixel norm, minibatch stddev (batch 6, group 4 -> 3: the ragged rule), fades
    np.testing.assert_allclose(
        layers.pixel_norm(x).numpy(), nhwc(tl.pixel_norm(nchw(x))), atol=1e-6
    )
    for group in (4, 2, 6):
        np.testing.assert_allclose(
            layers.minibatch_stddev(x, group).numpy(),
            nhwc(tl.minibatch_stddev(nchw(x), group)),
            atol=1e-6,
        )
    from progan_torch.training import fade_reals as t_fade

    np.testing.assert_allclose(
        loss.fade_reals(tf.constant(x), 0.3).numpy(),
        nhwc(t_fade(nchw(x), 2, torch.tensor(0.3))),
        atol=1e-6,
    )


def test_gradient_penalty_and_ema_agree(pair):
    cfg, _, td, _, kd = pair
    from progan_torch.loss import gradient_penalty as t_gp

    kd.alpha.assign(0.5)
    x = np.random.default_rng(9).uniform(-1, 1, (8, 8, 8, 3)).astype(np.float32)
    gp_k, n_k = loss.gradient_penalty(
        lambda m: kd(m, level=1, fading=True, alpha=0.5), tf.constant(x), 2.0, 10.0
    )
    gp_t, n_t = t_gp(lambda m: td(m, 1, True, 0.5), nchw(x), 2.0, 10.0)
    np.testing.assert_allclose(n_k.numpy(), n_t.detach().numpy(), rtol=1e-4)
    np.testing.assert_allclose(gp_k.numpy(), gp_t.detach().numpy(), rtol=1e-4, atol=1e-6)
    # EMA: torch lerp_(ema, w, 1 - beta) vs ours w + (ema - w) * beta
    from gancore.tf_utils import ema_update

    a, b = Generator(cfg, 3, 4), Generator(cfg, 3, 4)
    wa = [torch.from_numpy(v.numpy()) for v in a.trainable_variables]
    tb = [torch.from_numpy(v.numpy()) for v in b.trainable_variables]
    assert any(not torch.equal(x, y) for x, y in zip(wa, tb))  # different starting points
    torch._foreach_lerp_(tb, wa, 1.0 - 0.9)
    ema_update(b.trainable_variables, a.trainable_variables, 0.9)
    for v, t in zip(b.trainable_variables, tb):
        np.testing.assert_allclose(v.numpy(), t.numpy(), atol=1e-6)


def _step_both(cfg, level: int, alpha: float, conditional: bool):
    """One training step in each framework from identical weights, data and randoms."""
    from gancore.train.stages import Stage
    from progan_tf.training import ProGANTrainer as TFTrainer
    from progan_torch.training import ProGANTrainer as TorchTrainer
    from tests.train_helpers import progan_randoms

    classes = 4 if conditional else 0
    tt = TorchTrainer(cfg, 3, classes, channels_last=False)
    kt = TFTrainer(cfg, 3, classes)
    for name in ("G", "D", "G_ema"):
        convert.load_state_dict(getattr(kt, name), getattr(tt.m, name).state_dict())
    before = {n: convert.keras_state_dict(getattr(kt, n)) for n in ("G", "D", "G_ema")}
    res, n = 4 * 2**level, 8
    st = Stage(123, res, level, "fade" if alpha < 1 else "stabilize", alpha, n, cfg.lr, 0, 0, None)
    reals = np.random.default_rng(2).integers(0, 256, (n, res, res, 3), dtype=np.uint8)
    labels = np.arange(n) % classes if classes else None
    randoms = progan_randoms(cfg, st)
    tt.set_stage(st)
    kt.set_stage(st)
    t_out = tt.step(reals, labels, randoms)
    k_out = kt.step(reals, labels, randoms)
    return tt.m, kt, before, t_out, k_out


@pytest.mark.parametrize("level,alpha,conditional", [(1, 0.5, False), (2, 1.0, True)])
def test_one_training_step_matches(level, alpha, conditional):
    """One D step + EMA + G step from the same weights/batch/latents moves both alike.

    Tolerance, and why. Both frameworks run the official TF1 Adam (Keras' Adam; torch:
    ``gancore.torch_utils.TF1Adam``). Its first step (beta1 = 0, bias-corrected) is
    ``lr * g / (|g| + eps / 0.1)``, i.e. ``~ lr * sign(g)`` for every weight: an error in ``g``
    never shows up as a proportional error in the weights, so we compare the *moves*
    ``delta = w_after - w_before`` in units of ``lr``. Gradients agree to ~1e-6 relative
    (float32 summation order in convs differs between oneDNN/Eigen and torch), so the moves
    agree to ~1e-5 lr except where ``|g|`` is near eps (1e-7 after the bias correction),
    where the relative gradient error becomes a move error: measured max 1.2e-3 lr, 99.99 %
    of the weights within 1e-3 lr. The losses agree to 1e-4 relative.
    """
    cfg = tiny_cfg(mbstd_group=4)
    models, trainer, before, t_out, k_out = _step_both(cfg, level, alpha, conditional)
    np.testing.assert_allclose(k_out["loss_d"], t_out["loss_d"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(k_out["loss_g"], t_out["loss_g"], rtol=1e-4, atol=1e-5)
    lr = cfg.lr
    for name in ("G", "D", "G_ema"):
        after_k = convert.keras_state_dict(getattr(trainer, name))
        after_t = {k: v.numpy() for k, v in getattr(models, name).state_dict().items()}
        keys = [k for k in before[name] if k not in ("level", "alpha")]
        dk = np.concatenate([(after_k[k] - before[name][k]).ravel() for k in keys]) / lr
        dt = np.concatenate([(after_t[k] - before[name][k]).ravel() for k in keys]) / lr
        if name == "G_ema":  # G_ema == G before the step, so the EMA (before G moves) is a no-op
            np.testing.assert_allclose(dk, dt, atol=1e-3)
            continue
        moved = np.abs(dt) > 0.1
        assert moved.mean() > 0.3, f"{name}: the step moved almost nothing"
        d = np.abs(dk - dt)
        assert d.max() < 1e-2, f"{name}: max |delta_tf - delta_torch| = {d.max():.3g} lr"
        assert np.mean(d < 1e-3) >= 0.999, f"{name}: only {np.mean(d < 1e-3):.4f} within 1e-3 lr"


def test_runs_convert_both_ways_and_sample_identically(tmp_path):
    """A progan_torch run -> `progan_tf.convert torch-to-tf` -> `progan_tf.sample` gives the
    images progan_torch's sampler makes from the same latents (uint8, +-1), and the TF run
    converts back to a torch run whose G_ema is bit-identical."""
    from gancore.errors import run_cli
    from gancore.samples import load_samples
    from progan_tf import sample as tf_sample
    from progan_torch import sample as torch_sample
    from progan_torch.train import main as torch_train

    run = tmp_path / "torch"
    argv = ["--preset", "quick", "--random-data", "--max-res", "8", "--latent-dim", "8"]
    argv += ["--fmap-base", "64", "--fmap-max", "16", "--stabilize-kimg", "0.016", "--fade-kimg"]
    argv += ["0.032", "--kimg", "0.040", "--default-batch", "8", "--no-progress"]
    argv += ["--out", str(run)]  # the last step (at 32 images) is mid-fade, alpha 0.5
    assert run_cli(torch_train, argv) == 0
    tf_run, back = tmp_path / "tf", tmp_path / "back"
    assert convert.main(["torch-to-tf", "--run", str(run), "--out", str(tf_run)]) == 0
    assert (
        tf_sample.main(
            ["--run", str(tf_run), "--n", "6", "--seed", "4", "--out", str(tmp_path / "k.npz")]
        )
        == 0
    )
    assert (
        torch_sample.main(
            ["--run", str(run), "--n", "6", "--seed", "4", "--out", str(tmp_path / "t.npz")]
        )
        == 0
    )
    k, _, meta = load_samples(tmp_path / "k.npz")
    t, _, _ = load_samples(tmp_path / "t.npz")
    assert meta["res"] == 8 and 0 < meta["alpha"] < 1
    assert np.abs(k.astype(int) - t.astype(int)).max() <= 1
    assert convert.main(["tf-to-torch", "--run", str(tf_run), "--out", str(back)]) == 0
    from gancore.rundir import RunDir

    a = torch.load(RunDir(run).latest_checkpoint(), weights_only=True)
    b = torch.load(RunDir(back).latest_checkpoint(), weights_only=True)
    for key, v in a["G_ema"].items():
        assert torch.equal(b["G_ema"][key], v), key
    assert (
        torch_sample.main(["--run", str(back), "--n", "2", "--out", str(tmp_path / "b.npz")]) == 0
    )
    # a sampler pointed at the other framework's run names the right command
    from gancore.errors import UserError

    with pytest.raises(UserError, match="progan_tf.sample"):
        torch_sample.main(["--run", str(tf_run), "--n", "2", "--out", str(tmp_path / "x.npz")])


def test_the_twins_share_one_loss_and_network_call_api():
    """Same function names and signatures in progan_torch.loss and progan_tf.loss, and the same
    stage arguments (level, fading, alpha) in both frameworks' network calls."""
    import inspect

    from progan_torch import loss as tloss

    for name in ("d_loss", "g_loss", "gradient_penalty", "d_adversarial", "g_adversarial"):
        t, k = inspect.signature(getattr(tloss, name)), inspect.signature(getattr(loss, name))
        tparams = list(t.parameters.values())
        assert [p.name for p in tparams] == list(k.parameters), name
        assert [p.default for p in tparams] == [p.default for p in k.parameters.values()], name
    for tnet, knet in (
        (tn.Generator.forward, Generator.call),
        (tn.Discriminator.forward, Discriminator.call),
    ):
        tp = [p for p in inspect.signature(tnet).parameters if p != "self"]
        kp = [p for p in inspect.signature(knet).parameters if p not in ("self", "training")]
        assert tp == kp, (tp, kp)
