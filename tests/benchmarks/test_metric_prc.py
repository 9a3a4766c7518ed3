"""Precision/recall: agreement with torch-fidelity's own ``prc`` on a random VGG16."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ["GANBENCH_OFFLINE"] = "1"  # never download in tests


@pytest.mark.slow  # 48 VGG16 passes at 224x224: seconds on an idle CPU, a minute or more when shared
def test_prc_agrees_with_torch_fidelity(tmp_path):
    import torch
    import torch_fidelity
    import torchvision
    from test_metric_fid import _dataset

    from benchmarks.evaluate import evaluate_images

    torch.manual_seed(0)
    weights = tmp_path / "vgg16-random.pth"
    torch.save(torchvision.models.vgg16().state_dict(), weights)
    rng = np.random.default_rng(0)
    gen = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    real = np.clip(rng.normal(128, 30, (12, 16, 16, 3)), 0, 255).astype(np.uint8)
    ours = evaluate_images(
        gen,
        "random",
        reference=real,
        metrics="prc",
        progress=False,
        vgg_weights=str(weights),
        prc_n=12,
        device="cpu",
        cache_dir=str(tmp_path),
    )
    theirs = torch_fidelity.calculate_metrics(
        input1=_dataset(gen),
        input2=_dataset(real),
        cuda=False,
        prc=True,
        feature_extractor="vgg16",
        feature_extractor_weights_path=str(weights),
        cache=False,
        verbose=False,
        save_cpu_ram=True,
    )
    assert ours["precision_12"] == pytest.approx(theirs["precision"], abs=1e-6)
    assert ours["recall_12"] == pytest.approx(theirs["recall"], abs=1e-6)
    assert ours["protocol"]["prc"]["extractor"] == "vgg16"
