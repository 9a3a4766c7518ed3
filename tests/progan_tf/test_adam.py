"""Both frameworks follow the official optimiser (TF1's AdamOptimizer, transcribed in
``tests/progan_common/official_adam.py``): Keras 3's Adam directly, and the two ProGAN trainers
with ``--no-reset-optimizer`` move a block that joins after N steps by the same amount."""

from __future__ import annotations

import numpy as np
import pytest

from tests.progan_common.official_adam import TF1Adam as RefAdam
from tests.progan_common.official_adam import first_move_in_lr
from tests.progan_tf.pgtf_helpers import tiny_cfg

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from progan_tf.training import make_optimizer  # noqa: E402

JOIN = 30


@pytest.mark.parametrize("betas", [(0.0, 0.99), (0.5, 0.999)])
def test_keras_adam_is_the_tf1_optimiser(betas):
    """One iteration counter per optimiser, epsilon on sqrt(v): Keras' Adam == TF1's, also for a
    variable that gets its first gradient at step JOIN (its first move uses t = JOIN + 1)."""
    cfg = tiny_cfg(lr=1e-3, beta1=betas[0], beta2=betas[1])
    rng = np.random.default_rng(0)
    init = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    ref = {k: v.copy() for k, v in init.items()}
    variables = {k: keras.Variable(v, dtype="float64") for k, v in init.items()}
    # Keras keeps the learning rate in a float32 variable: the reference uses that value
    lr32 = float(np.float32(cfg.lr))
    opt, official = make_optimizer(cfg), RefAdam(lr32, *betas, cfg.adam_eps)
    opt.build(list(variables.values()))
    for step in range(JOIN + 5):
        grads = {
            "a": rng.standard_normal((3, 4)) * 10.0 ** rng.uniform(-6, 0, (3, 4)),
            "b": rng.standard_normal(5) if step >= JOIN else None,
        }
        live = [k for k in variables if grads[k] is not None]
        b_before = variables["b"].numpy().copy()
        opt.apply([tf.constant(grads[k]) for k in live], [variables[k] for k in live])
        official.apply(ref, grads)
        # Keras rounds beta to float32 before its powers: ~1e-6 relative per step, so compare
        # to 1e-4 lr (a different counter or epsilon placement moves weights by ~lr)
        for k in variables:
            np.testing.assert_allclose(variables[k].numpy(), ref[k], rtol=0, atol=1e-4 * lr32)
        if step == JOIN:
            move = np.abs(b_before - variables["b"].numpy()) / lr32
            expect = first_move_in_lr(JOIN + 1, *betas, grads["b"], cfg.adam_eps)
            np.testing.assert_allclose(move, expect, rtol=1e-5)
    assert int(opt.iterations.numpy()) == JOIN + 5 == official.t


def test_block_joining_without_reset_moves_alike_in_both_frameworks():
    """--no-reset-optimizer, 200 steps at 4x4, then the 8x8 block joins. Official (TF1 / Keras /
    TF1Adam): its first move is sqrt(1 - 0.99**201) / (1 - 0) * |g| / (0.1 |g| + eps) lr, i.e.
    9.31 lr wherever |g| >> 1e-6 (torch's own Adam would give 1 lr)."""
    torch = pytest.importorskip("torch")
    from gancore.latents import RandomSource
    from gancore.train.stages import Stage
    from progan_tf import convert
    from progan_tf.training import ProGANTrainer as TFTrainer
    from progan_torch.training import ProGANTrainer as TorchTrainer
    from tests.train_helpers import progan_randoms

    n_steps, batch = 200, 4
    cfg = tiny_cfg(reset_optimizer=False, default_batch=batch, ema=False)
    torch.set_num_threads(1)
    tt, kt = TorchTrainer(cfg, 3, 0, channels_last=False), TFTrainer(cfg, 3, 0)
    for name in ("G", "D"):
        convert.load_state_dict(getattr(kt, name), getattr(tt.m, name).state_dict())
    source = RandomSource(3, seed=1)

    def step(nimg, level):
        res = 4 * 2**level
        st = Stage(nimg, res, level, "stabilize", 1.0, batch, cfg.lr, 0, 0, None)
        reals, _ = source.batch(res, nimg, batch)
        randoms = progan_randoms(cfg, st)
        for trainer in (tt, kt):
            trainer.set_stage(st)
            assert trainer.step(reals, None, randoms)["skipped"] == 0

    for i in range(n_steps):
        step(i * batch, 0)
    new = {"G": ("blocks.1.", "torgb.1."), "D": ("blocks.1.", "fromrgb.1.")}
    before = {n: convert.keras_state_dict(getattr(kt, n)) for n in ("G", "D")}
    before_t = {
        n: {k: v.numpy().copy() for k, v in getattr(tt.m, n).state_dict().items()} for n in before
    }
    for n in before:  # the joining block has not moved and agrees between frameworks
        for k, v in before[n].items():
            if k.startswith(new[n]):
                np.testing.assert_array_equal(v, before_t[n][k])
    step(n_steps * batch, 1)
    t = n_steps + 1
    official = np.sqrt(1 - cfg.beta2**t) / np.sqrt(1 - cfg.beta2)
    assert official == pytest.approx(9.313, abs=1e-3)
    for n in ("G", "D"):
        after_k = convert.keras_state_dict(getattr(kt, n))
        after_t = {k: v.numpy() for k, v in getattr(tt.m, n).state_dict().items()}
        keys = [k for k in before[n] if k.startswith(new[n])]
        dk = np.concatenate([np.abs(after_k[k] - before[n][k]).ravel() for k in keys]) / cfg.lr
        dt = np.concatenate([np.abs(after_t[k] - before_t[n][k]).ravel() for k in keys]) / cfg.lr
        # the hand computation bounds every move and is met wherever |g| >> eps
        assert dk.max() <= official * (1 + 1e-4) and dt.max() <= official * (1 + 1e-4)
        assert np.median(dt) == pytest.approx(official, rel=1e-3), n
        assert np.mean(np.abs(dt / official - 1) < 1e-3) > 0.9, n
        # both frameworks: the same moves
        d = np.abs(dk - dt)
        assert np.mean(d < 1e-2) >= 0.999 and d.max() < 0.5, (n, d.max())


def test_fused_update_equals_keras_own_adam():
    """``gancore.tf_utils.TF1Adam`` runs TF1's fused ResourceApplyAdam kernel; Keras' Adam
    (the same formulas, op by op) moves float32 variables alike, inside a tf.function too."""
    from gancore.tf_utils import TF1Adam

    rng = np.random.default_rng(1)
    init = [rng.standard_normal((4, 3, 2)).astype("float32"), rng.standard_normal(6)]
    runs = []
    for cls in (keras.optimizers.Adam, TF1Adam):
        variables = [keras.Variable(v.astype("float32")) for v in init]
        opt = cls(1e-3, beta_1=0.0, beta_2=0.99, epsilon=1e-8)
        opt.build(variables)

        step = _apply_step(opt, variables)
        grads = np.random.default_rng(2)
        for i in range(12):
            g = [grads.standard_normal(v.shape).astype("float32") for v in init]
            step(tf.constant(g[0]), tf.constant(g[1]), i >= 5)
        runs.append([v.numpy() for v in variables] + [int(opt.iterations.numpy())])
        graph = step.get_concrete_function(tf.constant(g[0]), tf.constant(g[1]), True).graph
        fused = _op_types(graph) & {"ResourceApplyAdam"}
        assert bool(fused) == (cls is TF1Adam)  # the fused kernel runs, and only in TF1Adam
    assert runs[0][2] == runs[1][2] == 12
    for a, b in zip(runs[0][:2], runs[1][:2]):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
    assert not np.allclose(runs[1][1], init[1])  # the late variable moved


def _apply_step(opt, variables):
    """A tf.function applying (g0, g1) to both variables, or g0 to the first alone."""

    @tf.function
    def step(g0, g1, both):
        if both:
            opt.apply([g0, g1], variables)
        else:
            opt.apply([g0], variables[:1])

    return step


def _op_types(graph) -> set[str]:
    """Operation types in a traced graph, its function bodies included (cond branches)."""
    graph_def = graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for fn in graph_def.library.function:  # the branches' bodies
        types |= {node.op for node in fn.node_def}
    return types
