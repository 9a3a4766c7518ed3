"""NDB/K: a collapsed sample set is flagged, a fresh real sample passes."""

from __future__ import annotations

import numpy as np

from benchmarks.evaluate import evaluate_images
from benchmarks.metrics import ndb


def _mixture(n: int, seed: int, modes=range(10)) -> np.ndarray:
    """Images from 10 well-separated prototype images plus noise (a 10-mode 'data set')."""
    protos = np.random.default_rng(123).uniform(0, 255, (10, 4, 4, 3)).repeat(4, 1).repeat(4, 2)
    rng = np.random.default_rng(seed)
    which = rng.choice(list(modes), size=n)
    return np.clip(protos[which] + rng.normal(0, 10, (n, 16, 16, 3)), 0, 255).astype(np.uint8)


def test_collapsed_generator_is_flagged_and_fresh_real_passes(tmp_path):
    real = _mixture(3000, 0)
    fresh = _mixture(1000, 1)
    collapsed = _mixture(1000, 2, modes=[0, 1, 2])
    good = evaluate_images(
        fresh, "mix", reference=real, metrics="ndb", progress=False, cache_dir=str(tmp_path)
    )
    bad = evaluate_images(
        collapsed, "mix", reference=real, metrics="ndb", progress=False, cache_dir=str(tmp_path)
    )
    assert good["protocol"]["ndb"]["k"] == 10  # rule: clip(3000 // 500, 10, 100)
    assert good["ndb_k10"] <= 1 and good["ndb_js_k10"] < 0.01
    assert bad["ndb_k10"] >= 7  # the 7 missing modes' bins (and the over-full ones)
    assert bad["ndb_js_k10"] > 0.2
    assert bad["protocol"]["ndb"]["bins_cached"] is True  # bins reused from the first call


def test_z_test_and_js_basics():
    p = ndb.two_proportion_z(np.array([100, 100]), 200, np.array([100, 100]), 200)
    assert np.allclose(p, 1.0)
    p = ndb.two_proportion_z(np.array([150, 50]), 200, np.array([50, 150]), 200)
    assert np.all(p < 1e-10)
    assert ndb.js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == np.log(2)
    assert ndb.choose_k(1797) == 10 and ndb.choose_k(30000) == 60 and ndb.choose_k(10**6) == 100
