"""MirroredStrategy on two logical CPU devices equals one device with the whole batch.

Logical devices must be configured before TensorFlow initialises, so the check runs in
a subprocess. Minibatch stddev is disabled here: under MirroredStrategy each replica
computes it over its own slice (as the official multi-GPU code does per GPU), whereas
one device groups across the whole batch (sample i with i % (N/G)), so the two are
different functions of the batch by design; every other term is per-sample and the
gradients are summed across replicas, which is what this test pins down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, sys.argv[1] + "/tests/progan_tf")
    from pgtf_helpers import tiny_cfg
    from progan_tf.convert import keras_state_dict, load_state_dict
    from progan_tf.training import ProGANTrainer
    from gancore.train.stages import Stage
    from gancore.latents import step_randoms

    cfg = tiny_cfg(max_res=8, mbstd_group=0)
    one = ProGANTrainer(cfg, 3)
    two = ProGANTrainer(cfg, 3, strategy=tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    for name in ("G", "D", "G_ema"):
        load_state_dict(getattr(two, name), keras_state_dict(getattr(one, name)))
    before = keras_state_dict(one.D)
    reals = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
    st = Stage(0, 8, 1, "fade", 0.5, 8, cfg.lr, 1, 0, None)
    result = {}
    for step in range(1):
        randoms = dict(zip(("z_d", "z_g", "u"), step_randoms(cfg.seed, step * 8, 8, cfg.latent_dim)))
        for tag, tr in (("one", one), ("two", two)):
            tr.set_stage(st)
            result[f"{tag}{step}"] = tr.step(reals, None, randoms)
    diffs = {}
    for name in ("G", "D", "G_ema"):
        a, b = keras_state_dict(getattr(one, name)), keras_state_dict(getattr(two, name))
        d = np.concatenate([np.abs(a[k] - b[k]).ravel() for k in a])
        diffs[name] = [float(d.max()), float(np.mean(d > 1e-5))]
    moved = max(float(np.abs(keras_state_dict(one.D)[k] - before[k]).max()) for k in before)
    print("RESULT" + json.dumps({"losses": result, "diffs": diffs, "moved": moved,
                                 "replicas": two.replicas}))
""")


def test_mirrored_two_devices_equal_one_device_doubled_batch(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    res = json.loads(line[0][len("RESULT") :])
    assert res["replicas"] == 2
    for step in range(1):
        one, two = res["losses"][f"one{step}"], res["losses"][f"two{step}"]
        for key in ("loss_d", "loss_g"):
            assert abs(one[key] - two[key]) <= 1e-4 * max(1.0, abs(one[key])), (key, one, two)
    assert res["moved"] > 5e-4  # the Adam step moved D by ~lr
    # An Adam step of ~lr * sign(g): equal up to float summation order, except weights
    # whose gradient is at rounding-noise level (see test_parity for the same argument).
    for name, (worst, frac) in res["diffs"].items():
        assert worst < 2e-3, (name, worst)  # at most 2 lr apart (a sign at noise level)
        assert frac < 0.03, (name, frac)  # >= 97 % of weights within 0.01 lr
