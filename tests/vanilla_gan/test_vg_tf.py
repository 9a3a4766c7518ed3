"""Keras / TF DCGAN / SN-DCGAN: shapes, spectral norm, training step, resume, NaN guard."""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
try:  # one thread: far faster than oversubscribing a small shared CPU (must precede TF init)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
except RuntimeError:
    pass

from gancore.rundir import RunDir  # noqa: E402
from vanilla_gan import tf_nets  # noqa: E402
from vanilla_gan.loop import TrainingDiverged, run_training  # noqa: E402
from vanilla_gan.tf_loop import TFTrainer, load_checkpoint  # noqa: E402


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
    trainer = TFTrainer(cfg, 3, device="cpu")
    models = (trainer.G, trainer.D, trainer.G_ema)
    before = [[v.numpy().copy() for v in m.trainable_variables] for m in models]
    src = array_source(32)
    rng = np.random.default_rng(0)
    for t in range(4):
        trainer.step(
            src.batch(32, 8 * t, 8)[0][None],
            rng.standard_normal((1, 8, cfg.z_dim), dtype=np.float32),
        )
        if t == 0:
            loss_d, loss_g = trainer.pop_losses()
            assert np.isfinite(loss_d) and np.isfinite(loss_g)
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


def test_resume_is_exact(make_config, array_source, tmp_path):
    """2N steps == N steps, checkpoint, load into a trainer in a *different* state, N steps."""
    src = array_source(32)
    kw = dict(framework="tf", deterministic=True, ema_beta=0.5, loss="hinge")
    full_cfg = make_config("sndcgan", kimg=0.032, **kw)
    run_a, run_b = RunDir(tmp_path / "a"), RunDir(tmp_path / "b")
    run_a.create({})
    run_b.create({})
    trainer = TFTrainer(full_cfg, 3, device="cpu")
    run_training(full_cfg, run_a, trainer, src, progress=False)
    expected = [[v.numpy().copy() for v in vs] for vs in trainer._groups().values()]
    half = TFTrainer(make_config("sndcgan", kimg=0.016, **kw), 3, device="cpu")
    run_training(half.cfg, run_b, half, src, progress=False)
    # `trainer` now holds the end state of run a: resuming must overwrite all of it.
    run_training(full_cfg, run_b, trainer, src, resume=True, progress=False)
    for want, vs in zip(expected, trainer._groups().values()):
        for w, v in zip(want, vs):
            assert np.array_equal(w, v.numpy()), v.path


def test_nan_stops_run_and_keeps_last_checkpoint(make_config, array_source, tmp_path):
    cfg = make_config("dcgan", framework="tf", kimg=0.064, debug_nan_at_kimg=0.024)
    run = RunDir(tmp_path / "run")
    run.create({"test": True})
    with pytest.raises(TrainingDiverged):
        run_training(cfg, run, TFTrainer(cfg, 3, device="cpu"), array_source(32), progress=False)
    assert run.status()["state"] == "failed"
    data = load_checkpoint(run.latest_checkpoint())
    assert json.loads(str(data["meta"]))["nimg"] == 16
    assert all(np.isfinite(v).all() for k, v in data.items() if k != "meta")
