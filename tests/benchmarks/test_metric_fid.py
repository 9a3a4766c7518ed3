"""FID / KID / IS: closed forms, self-distance, and agreement with torch-fidelity itself using a
randomly initialised network of the real architecture (no weights are downloadable here)."""

from __future__ import annotations

import os
from unittest import mock

import numpy as np
import pytest
import scipy.linalg

from benchmarks.evaluate import evaluate_images
from benchmarks.metrics.inception import fid_statistics, frechet_distance
from gancore.errors import UserError

os.environ["GANBENCH_OFFLINE"] = "1"  # never download in tests


def test_fid_of_a_set_with_itself_is_zero():
    f = np.random.default_rng(0).normal(size=(300, 16))
    s = fid_statistics(f)
    assert abs(frechet_distance(s["mu"], s["sigma"], s["mu"], s["sigma"])) < 1e-9


def test_fid_matches_closed_form_on_diagonal_gaussians():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    v1, v2 = rng.uniform(0.5, 2.0, 8), rng.uniform(0.5, 2.0, 8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2.0 * np.sqrt(v1 * v2))
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(
        expected, rel=1e-10
    )
    # Full covariances: against scipy's matrix square root of S1 S2.
    a, b = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
    s1, s2 = a @ a.T + np.eye(8), b @ b.T + np.eye(8)
    tr = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    # Sampled features converge to the closed form (statistics stage included).
    x = rng.normal(size=(200_000, 8)) * np.sqrt(v1) + mu1
    y = rng.normal(size=(200_000, 8)) * np.sqrt(v2) + mu2
    sx, sy = fid_statistics(x), fid_statistics(y)
    closed = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2.0 * np.sqrt(v1 * v2))
    assert frechet_distance(sx["mu"], sx["sigma"], sy["mu"], sy["sigma"]) == pytest.approx(
        closed, abs=0.02
    )


def _random_weights(cls_path: str, ctor_args: tuple, path) -> str:
    """Save a randomly initialised (variance-preserving) network of the real architecture."""
    import importlib

    import torch

    module_name, cls_name = cls_path.rsplit(".", 1)
    mod = importlib.import_module(module_name)
    cls = getattr(mod, cls_name)
    torch.manual_seed(0)
    patches = [mock.patch.object(cls, "load_state_dict", lambda self, sd, *a, **k: None)]
    if hasattr(mod, "load_state_dict_from_url"):
        patches.append(mock.patch.object(mod, "load_state_dict_from_url", lambda *a, **k: {}))
    for p in patches:
        p.start()
    try:
        net = cls(*ctor_args)
    finally:
        for p in patches:
            p.stop()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return str(path)


def _dataset(images: np.ndarray):
    """The torch Dataset torch-fidelity wants: items are uint8 CHW tensors."""
    import torch

    class Images(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int):
            return self.x[i]

    return Images()


@pytest.fixture
def one_thread():
    """Inception on a shared, loaded 2-core CPU is several times faster on one thread."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> str:
    return _random_weights(
        "torch_fidelity.feature_extractor_inceptionv3.FeatureExtractorInceptionV3",
        ("inception-v3-compat", ["2048"]),
        tmp_path_factory.mktemp("w") / "inception-random.pth",
    )


def _sets(n: int = 16, res: int = 16):
    rng = np.random.default_rng(3)
    gen = rng.integers(0, 256, (n, res, res, 3), dtype=np.uint8)
    real = np.clip(rng.normal(128, 40, (n, res, res, 3)), 0, 255).astype(np.uint8)
    return gen, real


@pytest.mark.slow  # 64 InceptionV3 passes at 299x299: ~10 s on an idle 2-core CPU, minutes when shared
def test_fid_kid_is_agree_with_torch_fidelity(inception_weights, tmp_path, one_thread):
    import torch_fidelity

    gen, real = _sets()
    ours = evaluate_images(
        gen,
        "random",
        reference=real,
        metrics="fid,kid,isc",
        progress=False,
        inception_weights=inception_weights,
        inception_n=len(gen),
        kid_subset_size=len(gen),
        device="cpu",
        cache_dir=str(tmp_path),
    )
    theirs = torch_fidelity.calculate_metrics(
        input1=_dataset(gen),
        input2=_dataset(real),
        cuda=False,
        fid=True,
        kid=True,
        isc=True,
        feature_extractor_weights_path=inception_weights,
        kid_subset_size=len(gen),
        cache=False,
        verbose=False,
        save_cpu_ram=True,
        batch_size=64,
    )
    assert ours["skipped"] == {}
    assert ours["fid_16"] > 0
    assert ours["fid_16"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-3)
    assert ours["kid_16_mean"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-3)
    assert ours["is_16_mean"] == pytest.approx(theirs["inception_score_mean"], rel=1e-4)
    proto = ours["protocol"]["fid"]
    assert (
        proto["n"] == 16 and proto["weights"]["source"] == "flag" and proto["weights"]["sha256_16"]
    )
    assert "full-rank covariance" in proto["warnings"][0]  # N=16 < 2048: said, not hidden
    # Reference features were cached on disk; a second run reuses them and gives the same FID.
    again = evaluate_images(
        gen,
        "random",
        reference=real,
        metrics="fid",
        progress=False,
        inception_weights=inception_weights,
        inception_n=len(gen),
        device="cpu",
        cache_dir=str(tmp_path),
    )
    assert again["protocol"]["fid"]["reference_cached"] is True
    assert again["fid_16"] == pytest.approx(ours["fid_16"], rel=1e-9)


def test_missing_weights_offline_are_skipped_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no hub-cached weights
    monkeypatch.delenv("GANBENCH_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("GANBENCH_VGG16_WEIGHTS", raising=False)
    gen, real = _sets(16)
    with mock.patch(
        "benchmarks.metrics.weights.host_reachable", side_effect=AssertionError("no net")
    ):
        out = evaluate_images(
            gen,
            "random",
            reference=real,
            metrics="fid,kid,isc,prc",
            progress=False,
            cache_dir=str(tmp_path),
        )
    assert set(out["skipped"]) == {"fid", "kid", "isc", "prc"}
    assert (
        "GANBENCH_OFFLINE" in out["skipped"]["fid"]
        and "--inception-weights" in out["skipped"]["fid"]
    )
    assert not any(k.startswith(("fid", "kid", "is_", "precision")) for k in out)  # never a 0


def test_unreachable_host_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GANBENCH_OFFLINE")
    monkeypatch.delenv("GANBENCH_INCEPTION_WEIGHTS", raising=False)
    gen, real = _sets(8)
    with (
        mock.patch("benchmarks.metrics.weights.host_reachable", return_value=False),
        mock.patch("torch.hub.download_url_to_file", side_effect=AssertionError("downloaded")),
    ):
        out = evaluate_images(
            gen, "random", reference=real, metrics="fid", progress=False, cache_dir=str(tmp_path)
        )
    assert "unreachable" in out["skipped"]["fid"]


def test_bad_weights_path_is_a_user_error(tmp_path):
    gen, real = _sets(8)
    with pytest.raises(UserError, match="does not exist"):
        evaluate_images(
            gen,
            "random",
            reference=real,
            metrics="fid",
            progress=False,
            inception_weights=str(tmp_path / "nope.pth"),
            cache_dir=str(tmp_path),
        )
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="not a plain PyTorch state dict"):
        evaluate_images(
            gen,
            "random",
            reference=real,
            metrics="fid",
            progress=False,
            inception_weights=str(junk),
            cache_dir=str(tmp_path),
        )
