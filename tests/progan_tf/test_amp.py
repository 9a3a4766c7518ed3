"""Mixed precision (``--amp bf16``, Keras ``mixed_bfloat16``) follows the project's policy
(``gancore.torch_utils`` docstring): layers compute in bfloat16 with float32 variables; reals,
fakes handed to D, the penalty's mix, losses, norms, Adam and the EMA stay float32. One bf16
step on the CPU stays close to the float32 step from the same weights and inputs, with the
tolerances of ``tests/progan_torch/test_amp.py`` (measured here: losses within 0.1 %, scores
within 1e-3, 98-99 % of the moved weights keep their direction, mean move difference 0.02 lr).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.progan_tf.pgtf_helpers import tiny_cfg

tf = pytest.importorskip("tensorflow")

from gancore import tf_utils as tfu  # noqa: E402
from gancore.latents import RandomSource  # noqa: E402
from progan_tf import convert  # noqa: E402
from progan_tf.layers import pixel_norm  # noqa: E402
from progan_tf.training import ProGANTrainer  # noqa: E402
from tests.train_helpers import progan_randoms  # noqa: E402

STATS = ("loss_d", "loss_g", "d_real", "d_fake")


@pytest.fixture
def restore_policy():
    yield
    tfu.set_amp("off")


@pytest.mark.parametrize(
    "over",
    [{}, {"loss": "nonsaturating", "label_smoothing": 0.1, "spectral_norm_g": True,
          "spectral_norm_d": True}],
    ids=["wgan-gp", "sn-nonsaturating"],
)  # fmt: skip
def test_one_bf16_step_is_finite_and_close_to_float32(over, restore_policy):
    cfg = tiny_cfg(**over)
    results, start = {}, None
    for amp in ("off", "bf16"):
        c = dataclasses.replace(cfg, amp=amp)
        tr = ProGANTrainer(c, 3, 0)
        if start is None:
            start = {n: convert.keras_state_dict(getattr(tr, n)) for n in ("G", "D", "G_ema")}
        else:  # identical starting weights (and spectral-norm vectors)
            for n in ("G", "D", "G_ema"):
                convert.load_state_dict(getattr(tr, n), start[n])
        st = c.schedule().state(int(c.stabilize_kimg * 1000) + 4)  # mid-fade into 8x8
        tr.set_stage(st)
        u8, _ = RandomSource(3, seed=1).batch(st.res, st.nimg, st.batch)
        out = tr.step(u8, None, progan_randoms(c, st))
        moves = {}
        for n in ("G", "D"):
            after = convert.keras_state_dict(getattr(tr, n))
            keys = [k for k, v in start[n].items() if v.size > 1]
            moves[n] = np.concatenate([(after[k] - start[n][k]).ravel() for k in keys]) / c.lr
        results[amp] = (tr, out, moves)
    (_, ref, ref_moves), (tr, out, moves) = results["off"], results["bf16"]
    layer = tr.G.blocks[1].conv0
    assert layer.compute_dtype == "bfloat16" and layer.weight.dtype == "float32"
    assert out["skipped"] == 0 and all(np.isfinite(out[k]) for k in (*STATS, "gp", "grad_norm"))
    for k in STATS:
        assert abs(out[k] - ref[k]) <= 0.02 + 0.02 * abs(ref[k]), (k, out[k], ref[k])
    assert out["grad_norm"] == pytest.approx(ref["grad_norm"], rel=0.05)
    for n in ("G", "D"):
        a, b = ref_moves[n], moves[n]
        moved = np.abs(a) > 0.1
        assert np.mean(np.sign(a[moved]) == np.sign(b[moved])) >= 0.95, n
        assert np.mean(np.abs(a - b)) < 0.1, n
    variables = [v for m in tr.nets() for v in m.weights] + list(tr.opt_d.variables)
    assert all(v.dtype in ("float32", "int32", "int64") for v in variables)


def test_pixel_norm_statistic_is_float32():
    x = tf.random.stateless_normal((4, 8, 8, 16), seed=(1, 2))
    xb = tf.cast(x, tf.bfloat16)
    out = pixel_norm(xb)
    assert out.dtype == tf.bfloat16
    np.testing.assert_allclose(
        tf.cast(out, tf.float32).numpy(), pixel_norm(tf.cast(xb, tf.float32)).numpy(), rtol=8e-3
    )
