"""vanilla_gan.tf_gemm: the matrix-multiply paths compute TensorFlow's convolutions (values and
gradients, eagerly and in a graph), and a TFTrainer uses them only in a plain fp32 graph."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

tf = pytest.importorskip("tensorflow")

from tests.vanilla_gan.vg_helpers import step_both  # noqa: E402
from vanilla_gan import arch, tf_gemm, tf_nets  # noqa: E402
from vanilla_gan.tf_training import TFTrainer  # noqa: E402


def _close(a, b, tol: float = 1e-5) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    err = np.abs(a - b).max() / np.abs(b).max()
    assert err < tol, f"relative error {err:.2e}"


def _check(fn, ref, x, kernel, graph: bool) -> None:
    def run(f):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = f(x, kernel)
            loss = tf.reduce_sum(y * tf.sin(y))  # a non-constant output gradient
        return (y, *tape.gradient(loss, [x, kernel]))

    if graph:
        run = tf.function(run)
    for got, want in zip(run(fn), run(ref)):
        _close(got, want)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("side", [4, 8])
def test_gemm_conv_is_tf_conv(graph, side):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((3, side, side, 5)), tf.float32)
    k = tf.constant(rng.standard_normal((4, 4, 5, 7)), tf.float32)
    _check(tf_gemm.conv_gemm, lambda a, b: tf.nn.conv2d(a, b, 2, "SAME"), x, k, graph)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("side", [2, 4])
def test_gemm_conv_transpose_is_tf_conv_transpose(graph, side):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((3, side, side, 7)), tf.float32)
    k = tf.constant(rng.standard_normal((4, 4, 5, 7)), tf.float32)  # (kh, kw, out, in)

    def ref(a, b):
        return tf.nn.conv2d_transpose(a, b, [3, 2 * side, 2 * side, 5], 2, "SAME")

    _check(tf_gemm.conv_transpose_gemm, ref, x, k, graph)


def test_dense_paths_are_valid_convolutions():
    rng = np.random.default_rng(2)
    x = tf.constant(rng.standard_normal((3, 4, 4, 6)), tf.float32)
    k = tf.constant(rng.standard_normal((4, 4, 6, 2)), tf.float32)
    _check(tf_gemm.conv_dense, lambda a, b: tf.nn.conv2d(a, b, 1, "VALID"), x, k, False)
    z = tf.constant(rng.standard_normal((3, 1, 1, 6)), tf.float32)
    kt = tf.constant(rng.standard_normal((4, 4, 5, 6)), tf.float32)

    def ref(a, b):
        return tf.nn.conv2d_transpose(a, b, [3, 4, 4, 5], 1, "VALID")

    _check(tf_gemm.conv_transpose_dense, ref, z, kt, False)


def test_the_paths_are_really_taken(make_config, monkeypatch):
    """Guards the parity tests (which would pass on tf.nn's convolutions too): with the GEMM
    paths on, a model's forward calls each of tf_gemm's four functions."""
    monkeypatch.setattr(arch, "GEMM_MIN_CHANNELS", 1)
    calls: list[str] = []
    for name in ("conv_gemm", "conv_transpose_gemm", "conv_dense", "conv_transpose_dense"):
        fn = getattr(tf_gemm, name)
        monkeypatch.setattr(tf_gemm, name, lambda *a, _f=fn, _n=name: calls.append(_n) or _f(*a))
    G, D = tf_nets.build_models(make_config("dcgan", res=32), 3, gemm=True)
    D(G(np.zeros((2, G.input_shape[-1]), np.float32), training=True), training=True)
    assert sorted(set(calls)) == sorted(
        ["conv_gemm", "conv_transpose_gemm", "conv_dense", "conv_transpose_dense"]
    )


def _paths(model) -> set:
    return {lyr.fast_path for lyr in model.layers if isinstance(lyr, tf_nets.TorchStyle)}


@pytest.mark.parametrize(
    "jit, amp, on", [(False, "off", True), (True, "off", False), (False, "bf16", False)]
)
def test_trainer_uses_the_paths_only_in_a_plain_fp32_graph(make_config, jit, amp, on):
    cfg = make_config("dcgan", framework="tf", res=32, jit_compile=jit, amp=amp)
    tr = TFTrainer(cfg, 3)
    assert ("dense" in _paths(tr.G)) is on and ("dense" in _paths(tr.D)) is on
    off = TFTrainer(make_config("dcgan", framework="tf", res=32, cpu_gemm_convs=False), 3)
    assert _paths(off.G) | _paths(off.D) == {None}


def test_a_training_step_is_unchanged(make_config, monkeypatch):
    """Plain graph, tiny DCGAN with every 4x4-end layer on the GEMM path (threshold lowered)
    against TensorFlow's convolutions: same losses and weights after two steps."""
    monkeypatch.setattr(arch, "GEMM_MIN_CHANNELS", 1)
    kw = dict(framework="tf", res=32, jit_compile=False)
    on = TFTrainer(make_config("dcgan", **kw), 3)
    off = TFTrainer(make_config("dcgan", cpu_gemm_convs=False, **kw), 3)
    assert _paths(on.G) | _paths(on.D) == {None, "dense", "gemm"}
    step_both(on, off)
    for p, q in zip(on.G.weights + on.D.weights, off.G.weights + off.D.weights):
        if np.abs(q.numpy()).max() > 0:
            _close(p.numpy(), q.numpy(), 1e-4)
