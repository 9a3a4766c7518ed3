"""Mode coverage on real stacked-digits images, so the project's classifier is exercised."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.evaluate import evaluate_images
from benchmarks.metrics import digit_classifier
from benchmarks.metrics.modes import mode_distance, mode_statistics

# A shorter recipe keeps the test at a few seconds; the accuracy bar is unchanged.
FAST = {**digit_classifier.RECIPE, "image_budget": 6000}


@pytest.fixture(scope="module")
def cache(_private_cache):
    """The session's cache, so stacked-digits (0.5 GB) is not prepared a second time (CI
    machines can have little free space in /tmp). Digit classifiers that earlier tests cached
    there are removed, so the first evaluation below trains one and the second reuses it."""
    for entry in (_private_cache / "metrics").glob("digit-classifier-*"):
        entry.unlink()
    return str(_private_cache)


@pytest.fixture(scope="module")
def stacked():
    from datasets import prepare

    ds = prepare("stacked-digits", max_res=32)
    return np.asarray(ds.array(32)), np.asarray(ds.labels)


def test_collapsed_and_uniform_generators(stacked, cache, monkeypatch):
    monkeypatch.setattr(digit_classifier, "RECIPE", FAST)
    images, labels = stacked
    _, first = np.unique(labels, return_index=True)
    ten = np.sort(first)[:10]  # 10 images with 10 different digit triples
    collapsed = np.repeat(images[ten], 100, axis=0)  # a generator that only makes those 10
    out = evaluate_images(
        collapsed, "stacked-digits", metrics="modes", progress=False, cache_dir=cache
    )
    assert out["modes_covered_1k"] == 10
    assert out["kl_modes_1k"] == pytest.approx(np.log(1000 / 10), abs=1e-9)
    proto = out["protocol"]["modes"]
    assert proto["classifier_heldout_accuracy"] >= 0.95 and proto["classifier_cached"] is False
    assert sorted(m for m, _ in proto["top_modes"]) == sorted(labels[ten].tolist())

    uniform = evaluate_images(
        images[:5000], "stacked-digits", metrics="modes", progress=False, cache_dir=cache
    )
    assert uniform["protocol"]["modes"]["classifier_cached"] is True
    assert uniform["modes_covered_5k"] >= 985  # 1000 * (1 - e^-5) = 993 expected
    assert uniform["kl_modes_5k"] < 0.15  # sampling alone gives ~999 / (2 * 5000) = 0.1


def test_mode_statistics_closed_forms():
    covered, kl = mode_distance(mode_statistics(np.arange(1000)))
    assert covered == 1000 and abs(kl) < 1e-12
    covered, kl = mode_distance(mode_statistics(np.array([5] * 7)))
    assert covered == 1 and kl == pytest.approx(np.log(1000))


def test_low_accuracy_is_refused(stacked, cache, monkeypatch):
    from gancore.errors import UserError

    monkeypatch.setattr(digit_classifier, "MIN_ACCURACY", {"digits": 1.01})
    monkeypatch.setattr(digit_classifier, "RECIPE", FAST)
    with pytest.raises(UserError, match="held-out accuracy"):
        evaluate_images(
            stacked[0][:10], "stacked-digits", metrics="modes", progress=False, cache_dir=cache
        )  # the cached classifier, checked against a raised bar


def test_other_data_sets_are_skipped(tmp_path):
    out = evaluate_images(
        np.zeros((4, 32, 32, 3), np.uint8),
        "x",
        reference=np.zeros((4, 32, 32, 3), np.uint8),
        metrics="modes",
        progress=False,
        cache_dir=str(tmp_path),
    )
    assert "stacked" in out["skipped"]["modes"]


def test_shared_pass_gives_the_classifier_own_digits(stacked, cache, monkeypatch):
    """Mode coverage reads the logits of the pass FD shares; they are the classifier's own."""
    from benchmarks.evaluate import EvalOptions
    from benchmarks.metrics.base import EvalContext, MetricCache
    from benchmarks.metrics.domain import generated_outputs, get_extractor
    from benchmarks.metrics.domain_features import LOGITS
    from benchmarks.metrics.modes import modes_from_digits, modes_from_logits

    monkeypatch.setattr(digit_classifier, "RECIPE", FAST)
    images = stacked[0][:600]
    ctx = EvalContext(
        images, None, EvalOptions(), MetricCache(cache), "stacked-digits", progress=False
    )
    ext = get_extractor(ctx)
    shared = modes_from_logits(generated_outputs(ctx, ext, 600)[LOGITS])
    base, split = "digits", "train"
    net, _ = digit_classifier.get_classifier(
        base, *digit_classifier.load_digits(base, None, split, cache), ctx.cache, {"split": split}
    )
    planes = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(-1, 32, 32)
    own = modes_from_digits(digit_classifier.predict(net, planes).reshape(-1, 3))
    assert len(np.unique(own)) > 100  # the check means something: many different modes
    np.testing.assert_array_equal(shared, own)
    # a later, smaller request is served from the same pass
    assert generated_outputs(ctx, ext, 100)[LOGITS].shape == (100, 30)
