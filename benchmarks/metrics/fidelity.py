"""Feature extraction through torch-fidelity 0.4's networks, batched, with a progress bar.

torch-fidelity's ``FeatureExtractorInceptionV3`` ("inception-v3-compat", the TF FID Inception
ported bit-exactly, with TF1-style bilinear resize to 299x299) and ``FeatureExtractorVGG16``
(torchvision VGG16, resized to 224x224) are used as they are; this module only feeds them
uint8 NCHW batches from memory and caches the reference set's features on disk, keyed by the
reference identity, the extractor, its layers and the weights' hash.
"""

from __future__ import annotations

import numpy as np

from benchmarks.metrics.base import EvalContext, ReferenceSet, to_rgb
from benchmarks.metrics.weights import WeightSpec, resolve_weights

_EXTRACTORS: dict[tuple, object] = {}  # built networks, reused within a process


def torch_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def build_extractor(spec: WeightSpec, layers: tuple[str, ...], weights_path: str, device: str):
    key = (spec.extractor, layers, weights_path, device)
    if key not in _EXTRACTORS:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

        cls = {"inception-v3-compat": FeatureExtractorInceptionV3, "vgg16": FeatureExtractorVGG16}
        fe = cls[spec.extractor](
            spec.extractor, list(layers), feature_extractor_weights_path=weights_path
        )
        _EXTRACTORS[key] = fe.to(device).eval()
    return _EXTRACTORS[key]


def extract_features(
    images_u8: np.ndarray,
    extractor,
    layers: tuple[str, ...],
    device: str,
    batch: int = 64,
    progress: bool = True,
    desc: str = "features",
) -> dict[str, np.ndarray]:
    """Run ``extractor`` over uint8 NHWC images; returns ``{layer: float32 (N, D)}``."""
    import torch
    from tqdm import tqdm

    images = to_rgb(images_u8)
    outs: dict[str, list[np.ndarray]] = {k: [] for k in layers}
    with (
        torch.no_grad(),
        tqdm(total=len(images), desc=desc, unit="img", disable=not progress, leave=False) as bar,
    ):
        for s in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[s : s + batch].transpose(0, 3, 1, 2)))
            feats = extractor(x.to(device))
            for name, f in zip(layers, feats):
                outs[name].append(f.detach().cpu().numpy().astype(np.float32))
            bar.update(len(x))
    return {k: np.concatenate(v) for k, v in outs.items()}


def features_for(
    ctx: EvalContext,
    spec: WeightSpec,
    weights_flag: str | None,
    layers: tuple[str, ...],
    images: np.ndarray | None = None,
    reference: tuple[ReferenceSet, int] | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """Features of generated ``images`` (memoised per evaluation) or of the first ``n`` images of
    a reference set (cached on disk). Returns (features, protocol note on the extractor)."""
    path, wnote = resolve_weights(spec, weights_flag)
    device = torch_device(ctx.options.device)
    extractor = build_extractor(spec, layers, str(path), device)
    note = {
        "extractor": spec.extractor,
        "layers": list(layers),
        "weights": wnote,
        "torch_fidelity": _tf_version(),
    }
    if reference is None:
        key = ("gen", spec.extractor, layers, wnote["sha256_16"], len(images))
        if key not in ctx.memo:
            ctx.memo[key] = extract_features(
                images,
                extractor,
                layers,
                device,
                ctx.options.batch,
                ctx.progress,
                f"{spec.extractor} (samples)",
            )
        return ctx.memo[key], note
    ref, n = reference
    real, ref_id = ref.subset(n)
    cache_key = {
        "reference": ref_id,
        "extractor": spec.extractor,
        "layers": list(layers),
        "weights_sha256_16": wnote["sha256_16"],
    }
    feats, hit = ctx.cache.arrays(
        "features",
        cache_key,
        lambda: extract_features(
            real,
            extractor,
            layers,
            device,
            ctx.options.batch,
            ctx.progress,
            f"{spec.extractor} (reference)",
        ),
    )
    return feats, {**note, "reference": ref_id, "reference_cached": hit}


def _tf_version() -> str:
    from gancore.hardware import package_version

    return package_version("torch-fidelity") or "unknown"
