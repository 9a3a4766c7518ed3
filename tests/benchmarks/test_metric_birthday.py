"""Birthday paradox: planted duplicates are found, shown and counted; none -> no estimate."""

from __future__ import annotations

import numpy as np

from benchmarks.evaluate import evaluate_images
from benchmarks.metrics.birthday import support_estimate


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


def test_planted_duplicates_are_found(tmp_path):
    real = _images(200, 0)
    gen = _images(200, 1)
    gen[150] = gen[7]  # two exact copies: the closest pairs
    gen[120] = np.clip(gen[30].astype(int) + 1, 0, 255)
    out = evaluate_images(
        gen,
        "random",
        reference=real,
        metrics="birthday",
        progress=False,
        birthday_s=200,
        artifact_dir=str(tmp_path),
        cache_dir=str(tmp_path),
    )
    pairs = out["protocol"]["birthday"]["closest_pairs"]
    assert pairs[0][:2] == [7, 150] and pairs[0][2] < 1e-3  # exact copy (float rounding only)
    assert pairs[1][:2] == [30, 120]
    assert out["birthday_dup_pairs_s200"] == 2
    assert out["birthday_support_s200"] == 200 * 199 / 2 / 2
    png = tmp_path / "birthday_pairs_s200.png"
    assert png.is_file() and out["protocol"]["birthday"]["pairs_png"] == str(png)
    clean = evaluate_images(
        _images(200, 2),
        "random",
        reference=real,
        metrics="birthday",
        progress=False,
        birthday_s=200,
        cache_dir=str(tmp_path),
    )
    assert clean["birthday_dup_pairs_s200"] == 0 and clean["birthday_support_s200"] is None


def test_support_estimate_rule():
    assert support_estimate([1, 1], 100) == 100 * 99 / 2
    assert support_estimate([0, 0], 100) is None
