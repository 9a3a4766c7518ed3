"""Keras / TF DCGAN / SN-DCGAN: shapes, spectral norm, the training step (the loop contract is
tested for every trainer in tests/gancore/test_loop_contract.py)."""

from __future__ import annotations

import json

import numpy as np  # noqa: E402
import pytest  # noqa: E402

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
try:  # one thread: far faster than oversubscribing a small shared CPU (must precede TF init)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
except RuntimeError:
    pass

from vanilla_gan import tf_nets  # noqa: E402
from vanilla_gan.tf_training import TFTrainer, resolve_jit_compile  # noqa: E402


@pytest.mark.parametrize("model", ["dcgan", "sndcgan"])
@pytest.mark.parametrize("res", [32, 64])
def test_shapes_and_range(make_config, model, res):
    cfg = make_config(model, framework="tf", res=res)
    G, D = tf_nets.build_models(cfg, 3)
    x = np.asarray(G(np.random.default_rng(0).standard_normal((5, cfg.z_dim), dtype=np.float32)))
    assert x.shape == (5, res, res, 3)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    assert np.asarray(D(x)).shape == (5,)


def test_keras_spectral_norm_is_a_reparametrisation(make_config):
    """Unlike keras.layers.SpectralNormalization (3.15), training never overwrites the stored
    kernel, and the gradient flows through sigma (it differs from the one with sigma frozen)."""
    cfg = make_config("sndcgan", framework="tf")
    _, D = tf_nets.build_models(cfg, 3)
    layer = next(lyr for lyr in D.layers if isinstance(lyr, tf_nets.TorchStyle))
    x = tf.random.normal((4, 32, 32, 3))
    before = layer.kernel.numpy().copy()
    layer(x, training=True)
    assert np.array_equal(layer.kernel.numpy(), before)
    kernel = layer.kernel.value
    w = layer.weight_matrix(kernel)
    sigma = tf.tensordot(layer.sn_u.value, tf.linalg.matvec(w, layer.sn_v.value), 1)
    with tf.GradientTape(persistent=True) as tape:
        y = tf.reduce_sum(layer(x, training=False) ** 2)
        y_frozen = tf.reduce_sum(
            (tf.nn.conv2d(x, kernel / tf.stop_gradient(sigma), 1, "SAME") + layer.bias) ** 2
        )
    np.testing.assert_allclose(y.numpy(), y_frozen.numpy(), rtol=1e-5)  # same forward
    g, g_frozen = tape.gradient(y, kernel).numpy(), tape.gradient(y_frozen, kernel).numpy()
    assert np.abs(g - g_frozen).max() > 1e-3 * np.abs(g).max()


def test_training_steps_change_params_and_keep_sigma_near_one(make_config, array_source):
    """One step changes every trainable tensor of G, D and EMA G with finite losses; after a
    few steps each normalised weight has largest singular value ~1 (independent numpy SVD)."""
    cfg = make_config("sndcgan", framework="tf", sn_g=True, ema_beta=0.9, label_smoothing=0.1)
    trainer = TFTrainer(cfg, 3)
    models = (trainer.G, trainer.D, trainer.G_ema)
    before = [[v.numpy().copy() for v in m.trainable_variables] for m in models]
    src = array_source(32)
    rng = np.random.default_rng(0)
    for t in range(4):
        z = rng.standard_normal((1, 8, cfg.z_dim), dtype=np.float32)
        stats = trainer.step(src.batch(32, 8 * t, 8)[0], None, {"z": z})
        if t == 0:
            assert (
                np.isfinite(stats["loss_d"])
                and np.isfinite(stats["loss_g"])
                and not stats["skipped"]
            )
            for m, old in zip(models, before):
                assert all(
                    not np.array_equal(v.numpy(), o) for v, o in zip(m.trainable_variables, old)
                )
    layers = [
        lyr
        for m in (trainer.D, trainer.G)
        for lyr in m.layers
        if isinstance(lyr, tf_nets.TorchStyle)
    ]
    assert len(layers) == 8 + 5
    for lyr in layers:
        w = lyr.weight_matrix(lyr.effective_kernel(training=False)).numpy()
        sigma = np.linalg.svd(w, compute_uv=False)[0]
        assert abs(sigma - 1.0) < 0.1, (lyr.name, sigma)


def test_skipped_step_leaves_weights_and_batchnorm_statistics(make_config, array_source):
    cfg = make_config("dcgan", framework="tf", jit_compile=False)
    trainer = TFTrainer(cfg, 3)
    z = np.random.default_rng(0).standard_normal((1, 8, cfg.z_dim), dtype=np.float32)
    trainer.step(array_source(32).batch(32, 0, 8)[0], None, {"z": z})
    state = [v for m in (trainer.G, trainer.D) for v in m.weights]
    before = [v.numpy().copy() for v in state]
    stats = trainer.step(array_source(32).batch(32, 8, 8)[0], None, {"z": np.full_like(z, np.nan)})
    assert stats["skipped"] == 1.0
    for v, b in zip(state, before):
        np.testing.assert_array_equal(v.numpy(), b, err_msg=v.path)
    assert trainer.state_is_finite()


def test_ema_rampup_sets_the_decay_of_each_step_without_retracing(make_config, array_source):
    """TF takes the step's decay as a tensor: the averaged G moves by cfg.ema_beta_at(nimg) and
    a changing decay does not trace the step again."""
    from gancore.train.stages import ConstantStages

    cfg = make_config("dcgan", framework="tf", ema_beta=0.999, ema_rampup=0.05)
    trainer = TFTrainer(cfg, 3)
    src, stages = array_source(32), ConstantStages(cfg.res, cfg.batch)
    rng = np.random.default_rng(0)

    def step(nimg):
        trainer.set_stage(stages.state(nimg))
        z = rng.standard_normal((1, 8, cfg.z_dim), dtype=np.float32)
        assert not trainer.step(src.batch(32, nimg % 32, 8)[0], None, {"z": z})["skipped"]

    step(0)
    for e, v in zip(trainer.G_ema.trainable_variables, trainer.G.trainable_variables):
        np.testing.assert_allclose(e.numpy(), v.numpy(), rtol=0, atol=1e-7)  # a copy at image 0
    for nimg in (800, 1600):
        beta = cfg.ema_beta_at(nimg)
        assert 0.5 < beta < cfg.ema_beta
        old = [v.numpy().copy() for v in trainer.G_ema.trainable_variables]
        step(nimg)
        for e, o, v in zip(trainer.G_ema.trainable_variables, old, trainer.G.trainable_variables):
            w = v.numpy()
            np.testing.assert_allclose(e.numpy(), w + (o - w) * beta, rtol=1e-5, atol=1e-6)
    assert trainer._step_fn.experimental_get_tracing_count() == 1


def test_jit_compile_unset_means_xla_on_a_gpu_and_the_plain_graph_on_a_cpu(make_config):
    """--jit-compile given wins; unset, XLA on a GPU and the plain graph on a CPU (faster
    there in fp32 and bf16 alike), whatever the precision."""
    assert resolve_jit_compile(None, gpu=False) is False
    assert resolve_jit_compile(None, gpu=True) is True
    for flag in (True, False):
        for gpu in (True, False):
            assert resolve_jit_compile(flag, gpu=gpu) is flag
    try:
        chosen = {
            (amp, flag): TFTrainer(
                make_config("dcgan", framework="tf", amp=amp, jit_compile=flag, device="cpu"), 3
            ).jit_compile
            for amp, flag in (("off", None), ("bf16", None), ("off", True), ("bf16", True))
        }
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert chosen == {
        ("off", None): False,
        ("bf16", None): False,
        ("off", True): True,
        ("bf16", True): True,
    }


@pytest.mark.parametrize(
    "model, amp, jit",
    [("dcgan", "off", False), ("dcgan", "off", True), ("sndcgan", "bf16", None)],
)
def test_batchnorm_form_follows_xla_and_the_step_trains(make_config, array_source, model, amp, jit):
    """The fused BatchNorm kernel runs exactly when the step is not XLA-compiled (bf16 on a
    CPU: the plain graph), and a training step through either form, in float32 and bf16
    (sndcgan: a BN on a dense output), is finite and moves the running statistics."""
    try:
        cfg = make_config(model, framework="tf", amp=amp, jit_compile=jit, device="cpu")
        trainer = TFTrainer(cfg, 3)
        bns = [
            lyr
            for net in (trainer.G, trainer.D)
            for lyr in net.layers
            if isinstance(lyr, tf_nets.TorchBatchNorm)
        ]
        assert bns and all(lyr.fused is (not trainer.jit_compile) for lyr in bns)
        before = [lyr.moving_variance.numpy().copy() for lyr in bns]
        src = array_source(32)
        z = np.random.default_rng(0).standard_normal((1, 8, cfg.z_dim), dtype=np.float32)
        stats = trainer.step(src.batch(32, 0, 8)[0], None, {"z": z})
        assert (
            not stats["skipped"] and np.isfinite(stats["loss_d"]) and np.isfinite(stats["loss_g"])
        )
        for lyr, old in zip(bns, before):
            assert np.all(np.isfinite(lyr.moving_variance.numpy()))
            assert not np.allclose(lyr.moving_variance.numpy(), old)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bench_tf_xla_and_tf_graph_variants(tmp_path, capsys):
    """bench's tf-xla / tf-graph force XLA on / off whatever --jit-compile says, tf-graph-opbn
    is the plain graph with the op-by-op BatchNorm; each row records what the trainer used, and
    the pairs' ratios are printed."""
    from vanilla_gan import bench

    out = tmp_path / "bench.json"
    args = ["--models", "dcgan", "--frameworks", "tf-xla,tf-graph,tf-graph-opbn", "--width", "8"]
    args += ["--steps", "1", "--warmup", "0", "--threads", "1", "--no-jit-compile"]
    assert bench.main([*args, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [(r["framework"], r["jit_compile"], r["fused_bn"]) for r in rows] == [
        ("tf-xla", True, False),
        ("tf-graph", False, True),
        ("tf-graph-opbn", False, False),
    ]
    printed = capsys.readouterr().out
    assert "dcgan: tf-graph/tf-xla = " in printed
    assert "dcgan: tf-graph/tf-graph-opbn = " in printed


def test_fused_bn_given_overrides_the_default_form(make_config):
    """TFTrainer(fused_bn=...) picks BatchNorm's form whatever the compilation (for the bench's
    variants that measure it); the layers really take it."""
    for jit, fused in ((False, False), (True, True)):
        trainer = TFTrainer(make_config("dcgan", framework="tf", jit_compile=jit), 3, fused)
        bns = [
            lyr
            for net in (trainer.G, trainer.D)
            for lyr in net.layers
            if isinstance(lyr, tf_nets.TorchBatchNorm)
        ]
        assert trainer.fused_bn is fused and bns and all(lyr.fused is fused for lyr in bns)
