"""Domain-feature distances (fd/kid/prc_domain): the torch-fidelity extractor contract, agreement
with ``torch_fidelity.calculate_metrics`` on the registered extractor, the two exact Frechet
routes, self-distance, skips, and the CIFAR-10 classifier on the real data (needs_data)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks.evaluate import dataset_reference, evaluate_images
from benchmarks.metrics import cifar_classifier, digit_classifier
from gancore.errors import UserError

os.environ["GANBENCH_OFFLINE"] = "1"  # never download in tests

# The modes test's shorter digit recipe (same accuracy bar); every test here that trains it
# uses the session's private cache, so it is trained once per test session.
FAST_DIGITS = {**digit_classifier.RECIPE, "image_budget": 6000}
SMALL = {"kid_subsets": 10, "progress": False}


@pytest.fixture
def fast_digits(monkeypatch):
    monkeypatch.setattr(digit_classifier, "RECIPE", FAST_DIGITS)


@pytest.fixture(scope="module")
def digits():
    """The 1,797 grey 32x32 scikit-learn digits (fixed order) and the 10k stacked triples."""

    grey = dataset_reference("digits", None, "train", 32)
    stacked = dataset_reference("stacked-digits", None, "train", 32)
    return grey.subset(len(grey))[0], stacked.subset(len(stacked))[0]


def _random_weights(kind: str) -> dict[str, np.ndarray]:
    """Randomly initialised weights of the real architectures (the contract, not the values)."""
    import torch

    torch.manual_seed(0)
    if kind == "digits":
        net = digit_classifier.build_net()
        return {k: v.numpy() for k, v in net.state_dict().items()}
    net = cifar_classifier.build_net()
    arrays = {k: v.numpy() for k, v in net.state_dict().items()}
    arrays.update(
        input_mean=np.array([125.0, 123.0, 114.0], np.float32),
        input_std=np.array([63.0, 62.0, 66.0], np.float32),
    )
    return arrays


def test_extractors_follow_the_torch_fidelity_contract(digits):
    import torch
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from benchmarks.metrics import domain_features as dfe

    grey, stacked = digits
    for name, cls in ((dfe.DIGITS, dfe.DigitFeatures), (dfe.CIFAR10CLS, dfe.CifarFeatures)):
        assert FEATURE_EXTRACTORS_REGISTRY[name] is cls
        assert set(cls.get_provided_features_list()) == {"penultimate", "logits"}
        assert cls.get_default_feature_layer_for_metric("fid") == "penultimate"
        assert cls.get_default_feature_layer_for_metric("isc") == "logits"
        assert cls.get_dummy_input_for_compile().dtype == torch.uint8
    dfe.register()  # idempotent (a second import or call must not raise "already registered")

    fe = dfe.DigitFeatures(dfe.DIGITS, ["logits", "penultimate"], _random_weights("digits"))
    x = torch.from_numpy(np.ascontiguousarray(stacked[:5].transpose(0, 3, 1, 2)))
    logits, pen = fe(x)
    assert pen.shape == (5, 3 * 1024) and logits.shape == (5, 30) and pen.dtype == torch.float32
    # Per-channel application: the stacked features are the three grey digits' features.
    per_channel = [fe(x[:, c : c + 1])[1] for c in range(3)]
    assert torch.equal(pen, torch.cat(per_channel, dim=1))
    assert fe(torch.from_numpy(grey[:4, None, :, :, 0]))[1].shape == (4, 1024)
    with pytest.raises(ValueError, match="uint8"):
        fe(x.float())
    with pytest.raises(ValueError, match="32x32"):
        fe(torch.zeros((1, 3, 64, 64), dtype=torch.uint8))

    fc = dfe.CifarFeatures(dfe.CIFAR10CLS, ["penultimate"], _random_weights("cifar"))
    (pen,) = fc(x)
    assert pen.shape == (5, cifar_classifier.FEATURE_DIM)
    with pytest.raises(ValueError, match="Bx3x32x32"):
        fc(x[:, :1])


def test_frechet_routes_agree_with_torch_fidelity():
    """Covariance route (with a cached square root) and the sample-space route give the value
    of torch-fidelity's own ``fid_statistics_to_metric`` (eigenvalues of S1 S2), for N > d
    and for N <= d (singular covariances)."""
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    from benchmarks.metrics.domain import fd_statistics, frechet_distance_sample_space
    from benchmarks.metrics.inception import frechet_distance

    rng = np.random.default_rng(3)
    for n1, n2, d in ((400, 300, 12), (20, 30, 48)):
        f1 = rng.normal(size=(n1, d)) * rng.uniform(0.5, 2, d)
        f2 = rng.normal(size=(n2, d)) @ rng.normal(size=(d, d)) * 0.3 + 0.2
        s1, s2 = fd_statistics(f1), fd_statistics(f2)
        ref = fid_statistics_to_metric(s1, s2, verbose=False)["frechet_inception_distance"]
        cov = frechet_distance(s1["mu"], s1["sigma"], s2["mu"], s2["sigma"], s1["sqrt_sigma"])
        assert cov == pytest.approx(ref, rel=1e-7)
        assert frechet_distance_sample_space(f1, f2) == pytest.approx(ref, rel=1e-7)
        assert frechet_distance_sample_space(f2, f1) == pytest.approx(ref, rel=1e-7)
    same = rng.normal(size=(50, 8))
    assert abs(frechet_distance_sample_space(same, same)) < 1e-9


def _session_digit_weights() -> str:
    """The FAST digit classifier's weights file in the session's metric cache (the .npz that
    torch-fidelity's extractor reads by path)."""
    import json

    from gancore.paths import cache_root

    for meta in sorted((cache_root() / "metrics").glob("digit-classifier-*.json")):
        key = json.loads(meta.read_text())["key"]
        if key["base"] == "digits" and key["recipe"] == FAST_DIGITS:
            return str(meta.with_suffix(".npz"))
    raise AssertionError("the digit classifier was not cached")


@pytest.mark.filterwarnings("ignore:FD with")
@pytest.mark.parametrize("n", [300, 1100])  # sample-space route (N <= 1024) and covariance route
def test_equals_torch_fidelity_calculate_metrics(digits, fast_digits, n):
    """Our fd/kid/prc_domain on grey digits equal torch-fidelity's ``calculate_metrics`` run on
    the registered ``ganbench-digits`` extractor with the cached weights file."""
    import torch
    import torch_fidelity

    from benchmarks.metrics import domain_features as dfe

    grey, _ = digits
    gen = np.clip(grey[-n:].astype(np.int16) + 40, 0, 255).astype(np.uint8)  # brighter digits
    out = evaluate_images(
        gen, "digits", metrics="fd_domain,kid_domain,prc_domain", domain_n=n, **SMALL
    )
    proto = out["protocol"]["fd_domain"]
    assert proto["feature_dim"] == 1024 and proto["n"] == n
    assert proto["route"].startswith("sample space" if n <= 1024 else "covariance")
    weights = _session_digit_weights()

    class Images(torch.utils.data.Dataset):
        def __init__(self, a):
            self.a = a

        def __len__(self):
            return len(self.a)

        def __getitem__(self, i):
            return torch.from_numpy(np.ascontiguousarray(self.a[i].transpose(2, 0, 1)))

    ref, _ = dataset_reference("digits", None, "train", 32).subset(n)
    tf = torch_fidelity.calculate_metrics(
        input1=Images(gen),
        input2=Images(ref),
        feature_extractor=dfe.DIGITS,
        feature_extractor_weights_path=str(weights),
        fid=True,
        kid=True,
        prc=True,
        kid_subsets=10,
        kid_subset_size=min(1000, n),
        cuda=False,
        save_cpu_ram=True,
        cache=False,
        verbose=False,
    )
    label = f"digits_{n}" if n % 1000 else f"digits_{n // 1000}k"
    assert out[f"fd_{label}"] == pytest.approx(tf["frechet_inception_distance"], rel=1e-5)
    assert out[f"kid_{label}_mean"] == pytest.approx(
        tf["kernel_inception_distance_mean"], rel=1e-4, abs=1e-7
    )
    assert out[f"precision_{label}"] == pytest.approx(tf["precision"], abs=1e-6)
    assert out[f"recall_{label}"] == pytest.approx(tf["recall"], abs=1e-6)
    assert out[f"fd_{label}"] > 0


@pytest.mark.filterwarnings("ignore:FD with")
def test_a_set_against_itself(digits, fast_digits):
    """FD 0, precision = recall = 1, and KID equal to the closed form of its unbiased estimator
    on identical sets, (2/m)(mean off-diagonal k - mean diagonal k) <= 0 (k the cubic kernel)."""
    from benchmarks.evaluate import EvalOptions
    from benchmarks.metrics.base import EvalContext, MetricCache, reference_from_array
    from benchmarks.metrics.domain import domain_features, get_extractor

    _, stacked = digits
    real = stacked[:400]
    out = evaluate_images(
        real, "stacked-digits", reference=real, metrics="fd_domain,kid_domain,prc_domain", **SMALL
    )
    assert abs(out["fd_digits_400"]) < 1e-6 * out["protocol"]["fd_domain"]["feature_dim"]
    assert out["precision_digits_400"] == 1.0 and out["recall_digits_400"] == 1.0
    ctx = EvalContext(
        real, reference_from_array(real), EvalOptions(), MetricCache(None), "stacked-digits"
    )
    f = domain_features(get_extractor(ctx), real, progress=False).astype(np.float64)
    k = (f @ f.T / f.shape[1] + 1.0) ** 3
    m = len(f)
    closed = 2.0 / m * ((k.sum() - np.trace(k)) / (m * (m - 1)) - np.trace(k) / m)
    assert closed < 0 and out["kid_digits_400_mean"] == pytest.approx(closed, rel=1e-3)
    proto = out["protocol"]["kid_domain"]
    assert proto["classifier_heldout_accuracy"] >= 0.95 and proto["extractor"] == "digits"
    assert proto["feature_dim"] == 3072 and len(proto["weights_sha256_16"]) == 16


def test_data_sets_without_a_domain_classifier_are_skipped(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    out = evaluate_images(
        imgs,
        "celeba",
        reference=imgs,
        metrics="fd_domain,kid_domain,prc_domain",
        cache_dir=str(tmp_path),
        progress=False,
    )
    assert set(out["skipped"]) == {"fd_domain", "kid_domain", "prc_domain"}
    assert "no domain classifier for 'celeba'" in out["skipped"]["fd_domain"]
    assert not [k for k in out if k.startswith(("fd_", "kid_", "precision_"))]


def test_cifar_without_train_data_is_skipped_not_zero(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    out = evaluate_images(
        imgs,
        "cifar10-cars",
        reference=imgs,
        data_root=str(tmp_path / "nowhere"),
        metrics="fd_domain,prc_domain",
        cache_dir=str(tmp_path),
        progress=False,
    )
    reason = out["skipped"]["fd_domain"]
    assert "CIFAR-10 train split" in reason and "--data-root" in reason
    assert not [k for k in out if "cifar10cls" in k]


def test_wrong_resolution_is_a_user_error(fast_digits):
    imgs = np.zeros((8, 16, 16, 3), np.uint8)
    with pytest.raises(UserError, match="32x32"):
        evaluate_images(imgs, "stacked-digits", reference=imgs, metrics="fd_domain", **SMALL)


@pytest.mark.needs_data
def test_cifar10_classifier_path(real_data, monkeypatch):
    """A short recipe (2 epochs on 10k images: about a minute on 2 cores) through the whole
    path: train-split classifier, test-split accuracy, cached weights, cifar10-cars keys, a
    real-vs-real floor below a degraded set. The full recipe's accuracy is in the README."""
    fast = {**cifar_classifier.RECIPE, "epochs": 2, "train_n": 10000}
    monkeypatch.setattr(cifar_classifier, "RECIPE", fast)
    root = str(real_data / "cifar10-jpg.tar.gz")

    test = dataset_reference("cifar10-cars", root, "test", 32)
    real, _ = test.subset(1000)
    kw = dict(
        data_root=root,
        metrics="fd_domain,kid_domain,prc_domain",
        domain_n=1000,
        **SMALL,
    )
    floor = evaluate_images(real, "cifar10-cars", **kw)
    assert "fd_domain" in floor["protocol"], floor["skipped"]  # say why it was skipped
    proto = floor["protocol"]["fd_domain"]
    assert proto["extractor"] == "cifar10cls" and proto["feature_dim"] == 128
    assert proto["classifier_heldout_accuracy"] > 0.4 and proto["classifier_n_heldout"] == 10000
    assert proto["classifier_cached"] is False and proto["reference_split"] == "train"
    noisy = np.clip(real + np.random.default_rng(0).normal(0, 40, real.shape), 0, 255)
    worse = evaluate_images(noisy.astype(np.uint8), "cifar10-cars", **kw)
    assert worse["protocol"]["fd_domain"]["classifier_cached"] is True
    assert worse["fd_cifar10cls_1k"] > 2 * floor["fd_cifar10cls_1k"] > 0
    assert worse["kid_cifar10cls_1k_mean"] > floor["kid_cifar10cls_1k_mean"]
    assert worse["precision_cifar10cls_1k"] < floor["precision_cifar10cls_1k"]


@pytest.mark.filterwarnings("ignore:FD with")
def test_real_vs_real_floor_through_the_cli(tmp_path, fast_digits):
    """The evaluate CLI's --real-vs-real path: disjoint halves of stacked-digits, same N on
    both sides, N and the reference split recorded."""
    import json

    from benchmarks.evaluate import main
    from gancore.errors import run_cli

    out = tmp_path / "floor.json"
    argv = [
        "--real-vs-real",
        "--split-a",
        "train",
        "--split-b",
        "train",
        "--dataset",
        "stacked-digits",
        "--metrics",
        "fd_domain,kid_domain,prc_domain",
        "--domain-n",
        "300",
        "--kid-subsets",
        "2",
        "--out",
        str(out),
        "--quiet",
    ]
    assert run_cli(main, argv) == 0
    res = json.loads(out.read_text())
    assert res["fd_digits_300"] > 0 and 0 < res["recall_digits_300"] <= 1
    proto = res["protocol"]["fd_domain"]
    assert proto["n"] == 300 and proto["reference"]["part"] == "first half"
    assert proto["reference_split"] == "train" and proto["reference"]["n"] == 300
    assert res["evaluation"]["samples"]["part"] == "second half"
