"""The project's trained classifiers as torch-fidelity feature extractors.

torch-fidelity 0.4 computes FID / KID / precision-recall on any network registered with
``torch_fidelity.register_feature_extractor(name, cls)`` (the registry that holds
inception-v3-compat, vgg16, clip, dinov2). Importing this module registers two:

- ``ganbench-digits``: the digit classifier of :mod:`benchmarks.metrics.digit_classifier`
  applied to **each colour channel** of a 32x32 image; the per-channel vectors are
  concatenated (channel order), so a stacked RGB sample gives 3 x 1024 = 3072 features and a
  grey digit 1024. The layer is the classifier's penultimate one: the flattened 64 x 4 x 4
  output of its last conv block (after ReLU and max-pool), the input of its final linear layer.
  Cross-channel covariances are kept, so a generator whose channels are correlated (not
  independent digits) is seen by FD / KID.
- ``ganbench-cifar10cls``: the CIFAR-10 classifier of :mod:`benchmarks.metrics.cifar_classifier`;
  penultimate layer = the global max pool of its last block, 128 features.

Both also provide ``logits`` (10 per channel / 10). Inputs follow torch-fidelity's contract:
uint8 NCHW tensors in [0, 255], here 32x32 (the classifiers' resolution). Weights are not
downloadable: pass the arrays the project trained and cached, as ``feature_extractor_weights``
(a dict of arrays) or ``feature_extractor_weights_path`` (the cache's ``.npz``), which is how
``torch_fidelity.calculate_metrics(feature_extractor="ganbench-digits", ...)`` reaches them.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.helpers import vassert

DIGITS = "ganbench-digits"
CIFAR10CLS = "ganbench-cifar10cls"
PENULTIMATE, LOGITS = "penultimate", "logits"
INPUT_RES = 32


def _load_arrays(weights: dict | None, path: str | None) -> dict[str, np.ndarray]:
    if weights is not None:
        return dict(weights)
    vassert(path is not None, "these extractors need the project's trained weights (no download)")
    with np.load(path, allow_pickle=False) as data:  # never unpickle: cache files are plain arrays
        return {k: data[k] for k in data.files}


def weights_sha256(arrays: dict[str, np.ndarray], names) -> str:
    """Content hash (16 hex) of the named arrays: identifies the weights in protocols and keys."""
    h = hashlib.sha256()
    for name in sorted(names):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}{a.shape}{a.dtype}".encode())
        h.update(a.data)
    return h.hexdigest()[:16]


def _check_input(x: torch.Tensor, channels: tuple[int, ...]) -> None:
    vassert(
        torch.is_tensor(x) and x.dtype == torch.uint8,
        "Expecting image as torch.Tensor with dtype=torch.uint8",
    )
    vassert(
        x.dim() == 4 and x.shape[1] in channels and x.shape[2:] == (INPUT_RES, INPUT_RES),
        f"Input is not Bx{'|'.join(map(str, channels))}x{INPUT_RES}x{INPUT_RES}: {tuple(x.shape)}",
    )


class _ClassifierFeatures(FeatureExtractorBase):
    """What both extractors share: the torch-fidelity contract around a trained classifier."""

    def __init__(self, name, features_list, net, arrays, **kwargs):
        super().__init__(name, features_list)
        state = {k: torch.from_numpy(np.asarray(arrays[k])) for k in net.state_dict()}
        net.load_state_dict(state)
        self.net = net
        self.weights_sha256_16 = weights_sha256(arrays, state)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list():
        return PENULTIMATE, LOGITS

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        # logits for the Inception-score analogue (class posteriors); penultimate otherwise,
        # as FID uses Inception's pool3 rather than its logits.
        return {"isc": LOGITS, "fid": PENULTIMATE, "kid": PENULTIMATE, "prc": PENULTIMATE}[metric]

    @staticmethod
    def can_be_compiled():
        return False  # a few MFLOP per image: compilation costs more than it saves

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros((1, 3, INPUT_RES, INPUT_RES), dtype=torch.uint8)

    def _select(self, feats: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(feats[name].to(torch.float32) for name in self.features_list)


class DigitFeatures(_ClassifierFeatures):
    """The digit classifier per channel, features concatenated in channel order."""

    def __init__(
        self,
        name,
        features_list,
        feature_extractor_weights=None,
        feature_extractor_weights_path=None,
        **kwargs,
    ):
        from benchmarks.metrics.digit_classifier import build_net

        arrays = _load_arrays(feature_extractor_weights, feature_extractor_weights_path)
        super().__init__(name, features_list, build_net(), arrays)

    def forward(self, x):
        _check_input(x, (1, 3))
        b, c = x.shape[:2]
        # The classifier's own input scaling (digit_classifier._to_input): [0, 255] -> [-1, 1].
        digits = x.reshape(b * c, 1, INPUT_RES, INPUT_RES).to(torch.float32) / 127.5 - 1.0
        body, head = self.net[:-2], self.net[-1]  # [-2] is Dropout (identity in eval mode)
        pen = body(digits)
        feats = {PENULTIMATE: pen.reshape(b, -1), LOGITS: head(pen).reshape(b, -1)}
        return self._select(feats)


class CifarFeatures(_ClassifierFeatures):
    """The CIFAR-10 classifier: penultimate = global max pool of the last block."""

    def __init__(
        self,
        name,
        features_list,
        feature_extractor_weights=None,
        feature_extractor_weights_path=None,
        **kwargs,
    ):
        from benchmarks.metrics.cifar_classifier import build_net

        arrays = _load_arrays(feature_extractor_weights, feature_extractor_weights_path)
        super().__init__(name, features_list, build_net(), arrays)
        # Input standardisation uses the training set's statistics, stored with the weights.
        self.register_buffer("mean", torch.from_numpy(np.asarray(arrays["input_mean"])))
        self.register_buffer("std", torch.from_numpy(np.asarray(arrays["input_std"])))
        self.weights_sha256_16 = weights_sha256(
            arrays, [*self.net.state_dict(), "input_mean", "input_std"]
        )

    def forward(self, x):
        from benchmarks.metrics.cifar_classifier import normalise

        _check_input(x, (3,))
        pen = self.net.features(normalise(x, self.mean, self.std))
        feats = {PENULTIMATE: pen, LOGITS: self.net.head(pen) * self.net.logit_scale}
        return self._select(feats)


def register() -> None:
    """Add both extractors to torch-fidelity's registry (idempotent: safe on re-import)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    for name, cls in ((DIGITS, DigitFeatures), (CIFAR10CLS, CifarFeatures)):
        if name not in FEATURE_EXTRACTORS_REGISTRY:
            register_feature_extractor(name, cls)


register()
