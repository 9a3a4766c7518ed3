"""Same layers, same init scheme, same parameter count; torch -> Keras conversion is exact."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("tensorflow")

from vanilla_gan import tf_nets, torch_nets  # noqa: E402
from vanilla_gan.convert import copy_torch_to_keras  # noqa: E402


@pytest.mark.parametrize(
    "model,res,sn_g",
    [("dcgan", 32, False), ("dcgan", 64, True), ("sndcgan", 32, True), ("sndcgan", 64, False)],
)
@pytest.mark.parametrize("gemm", [False, True], ids=["framework-convs", "gemm-paths"])
def test_conversion_gives_same_outputs(make_config, monkeypatch, model, res, sn_g, gemm):
    """gemm-paths: every layer the tiny models have at the 4x4 end on the matrix-multiply
    paths in both frameworks (vanilla_gan/torch_gemm.py, tf_gemm.py; threshold lowered)."""
    from vanilla_gan import arch

    if gemm:
        monkeypatch.setattr(arch, "GEMM_MIN_CHANNELS", 1)
    cfg = make_config(model, res=res, sn_g=sn_g, cpu_gemm_convs=gemm)
    torch.manual_seed(1)
    G, D = torch_nets.build_models(cfg, 3)
    # Training-mode forwards move SN u, v and (momentum 1: the last batch's statistics, so
    # eval outputs keep a healthy scale) BN running stats away from their init.
    bns = [
        m
        for m in [*G.modules(), *D.modules()]
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    for m in bns:
        m.momentum = 1.0
    with torch.no_grad():
        for _ in range(3):
            D(G(torch.randn(8, cfg.z_dim)))
    G.eval()
    D.eval()
    kG, kD = tf_nets.build_models(cfg, 3, gemm=gemm)
    paths = {
        lyr.fast_path for lyr in [*kG.layers, *kD.layers] if isinstance(lyr, tf_nets.TorchStyle)
    }
    # SN-DCGAN at 64x64 has no 4x4 end (its bottom is 8x8), DCGAN's G and D have dense ends
    expected = {None}
    if gemm and (model, res) != ("sndcgan", 64):
        expected |= {"gemm", "dense"} if model == "dcgan" else {"gemm"}
    assert paths == expected
    assert torch_nets.count_params(G) == tf_nets.count_params(kG)
    assert torch_nets.count_params(D) == tf_nets.count_params(kD)
    copy_torch_to_keras(G, kG)
    copy_torch_to_keras(D, kD)
    z = np.random.default_rng(0).standard_normal((6, cfg.z_dim)).astype(np.float32)
    with torch.no_grad():
        x_t = G(torch.from_numpy(z)).numpy()
        d_t = D(torch.from_numpy(x_t)).numpy()
    x_k = np.asarray(kG(z, training=False))
    d_k = np.asarray(kD(np.transpose(x_t, (0, 2, 3, 1)), training=False))
    assert x_t.std() > 0.01 and np.abs(d_t).max() > 1e-4  # not trivially zero
    assert np.abs(np.transpose(x_t, (0, 2, 3, 1)) - x_k).max() < 1e-4
    assert np.abs(d_t - d_k).max() < 1e-4


def test_same_init_scheme_in_both_frameworks(make_config):
    """Conv / dense weights N(0, 0.02), BN scale N(1, 0.02), zero biases, in both."""
    cfg = make_config("sndcgan", width=16)
    torch.manual_seed(0)
    G, D = torch_nets.build_models(cfg, 3)
    kG, kD = tf_nets.build_models(cfg, 3)
    t_w = np.concatenate(
        [
            m.weight.detach().numpy().ravel()
            for m in G.modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d))
        ]
    )
    k_w = np.concatenate(
        [lyr.kernel.numpy().ravel() for lyr in kG.layers if isinstance(lyr, tf_nets.TorchStyle)]
    )
    assert t_w.size == k_w.size
    for w in (t_w, k_w):
        assert abs(w.std() - 0.02) < 0.001 and abs(w.mean()) < 0.001
    k_bn = np.concatenate([lyr.gamma.numpy() for lyr in kG.layers if hasattr(lyr, "gamma")])
    assert abs(k_bn.mean() - 1.0) < 0.01 and abs(k_bn.std() - 0.02) < 0.005


def _batchnorms(G, D, kG, kD):
    t = [
        m
        for m in [*G.modules(), *D.modules()]
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d)
    ]
    k = [lyr for lyr in [*kG.layers, *kD.layers] if isinstance(lyr, tf_nets.TorchBatchNorm)]
    assert len(t) == len(k) > 0
    return t, k


@pytest.mark.parametrize("fused", [False, True], ids=["op-by-op", "fused"])
@pytest.mark.parametrize("model", ["dcgan", "sndcgan"])  # sndcgan: a BN on G's dense output
def test_training_mode_batchnorm_is_torch(make_config, model, fused):
    """A training-mode forward of converted networks: same outputs, and the same running
    statistics afterwards (momentum 0.1, the variance's batch term unbiased, as torch), so
    eval-mode outputs agree after training too; the fused kernel and the op-by-op form give
    D the same gradients."""
    tf = pytest.importorskip("tensorflow")
    cfg = make_config(model, res=32)
    torch.manual_seed(2)
    G, D = torch_nets.build_models(cfg, 3)
    kG, kD = tf_nets.build_models(cfg, 3, fused_bn=fused)
    copy_torch_to_keras(G, kG)
    copy_torch_to_keras(D, kD)
    z = np.random.default_rng(3).standard_normal((8, cfg.z_dim)).astype(np.float32)
    x_t = G(torch.from_numpy(z))
    d_t = D(x_t).detach().numpy()
    x_k = kG(z, training=True)
    d_k = kD(x_k, training=True).numpy()
    x_t = x_t.detach().numpy().transpose(0, 2, 3, 1)
    assert np.abs(x_t - x_k.numpy()).max() < 1e-4 and np.abs(d_t - d_k).max() < 1e-4
    t_bn, k_bn = _batchnorms(G, D, kG, kD)
    for t, k in zip(t_bn, k_bn):
        np.testing.assert_allclose(k.moving_mean.numpy(), t.running_mean.numpy(), atol=1e-5)
        np.testing.assert_allclose(k.moving_variance.numpy(), t.running_var.numpy(), rtol=1e-4)
    G.eval()
    with torch.no_grad():
        e_t = G(torch.from_numpy(z)).numpy().transpose(0, 2, 3, 1)
    assert np.abs(e_t - kG(z, training=False).numpy()).max() < 1e-4
    # gradients: the fused kernel's registered gradient against the op-by-op form's
    kD2 = tf_nets.build_models(cfg, 3, fused_bn=not fused)[1]
    kD2.set_weights(kD.get_weights())
    grads = []
    for net in (kD, kD2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(net(x_t, training=True)))
        grads.append(tape.gradient(loss, net.trainable_variables))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5)
