"""A small CIFAR-10 classifier the project trains itself, for the ``cifar10cls`` feature distances.

No pre-trained network can be downloaded on this project's machines, so the learned features
for CIFAR-10 come from a classifier trained here: on the CIFAR-10 **train** split (all 10
classes, 50,000 images), held out on the **test** split (10,000), cached by a hash of the
training data and this recipe. It is sized to train in a few minutes on a 2-core CPU:

- a frozen 2x2 "whitening" stem: the 12-d patch covariance of the training images, filters
  = its eigenvectors scaled by 1/sqrt(eigenvalue), with both signs (24 channels). Decorrelated
  inputs let plain SGD converge in a few epochs (the trick of the fast CIFAR-10 training
  literature, e.g. Page's DAWNBench ResNet and Jordan's "airbench");
- three blocks ``conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU`` of widths
  (32, 64, 128) (31 -> 15 -> 7 -> 3 pixels), a global max pool (the 128-d **penultimate** layer
  the distances use) and a linear layer to the 10 logits;
- SGD with Nesterov momentum, label smoothing, a triangular learning-rate schedule, random
  flips and 2-pixel translations, bfloat16 autocast where the CPU supports it natively.

Accuracy is measured on the test split exactly as features are computed later (float32, no
test-time augmentation) and recorded with the weights; it is never a reason to refuse the
metric (the distances stay comparable between models at one extractor whatever it is), but a
classifier below ``MIN_ACCURACY`` is refused as broken.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.metrics.base import MetricCache, MetricSkipped, array_fingerprint
from gancore.errors import UserError

RECIPE = {
    "version": 1,
    "arch": "whiten2x2-24, [conv-pool-bn-gelu-conv-bn-gelu] x (32, 64, 128), maxpool, fc10",
    "widths": [32, 64, 128],
    "epochs": 8,
    "batch": 512,
    "lr": 0.4,
    "momentum": 0.9,
    "weight_decay": 5e-4,  # on conv / linear weights only, not BN parameters
    "label_smoothing": 0.2,
    "warmup_frac": 0.2,  # linear warm-up over the first 20% of steps, then linear decay to 0
    "logit_scale": 0.125,  # a fixed temperature on the logits: keeps early SGD steps stable
    "translate_px": 2,
    "whiten_eps": 5e-4,
    "train_n": None,  # None: the whole train split (tests use a subset)
    "seed": 0,
}
# Chance is 10%; anything this low means a broken training run, not a weak feature extractor.
MIN_ACCURACY = 0.4
FEATURE_DIM = RECIPE["widths"][-1]
CIFAR10_SETS = ("cifar10", "cifar10-cars")  # and any "cifar10:<classes>" subset


def is_cifar10(dataset: str | None) -> bool:
    return bool(dataset) and (dataset in CIFAR10_SETS or str(dataset).startswith("cifar10:"))


def build_net(
    widths: list[int] | tuple[int, ...] = tuple(RECIPE["widths"]),
    logit_scale: float = RECIPE["logit_scale"],
):
    """The classifier; ``net.features(x)`` is the penultimate layer, ``net(x)`` the logits."""
    import torch.nn as nn

    class CifarNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 24, 2, bias=True)  # weight frozen: set by whitening
            layers: list[nn.Module] = []
            cin = 24
            for cout in widths:
                layers += [
                    nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                    nn.MaxPool2d(2),
                    nn.BatchNorm2d(cout),
                    nn.GELU(),
                    nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.GELU(),
                ]
                cin = cout
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(cin, 10, bias=False)
            self.logit_scale = float(logit_scale)

        def features(self, x):
            return self.body(nn.functional.gelu(self.stem(x))).amax(dim=(2, 3))

        def forward(self, x):
            return self.head(self.features(x)) * self.logit_scale

    return CifarNet()


def normalise(x_u8, mean, std):
    """uint8 NCHW -> float32 NCHW standardised per channel with the training set's statistics."""
    import torch

    x = x_u8.to(torch.float32)
    return ((x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)).contiguous(
        memory_format=torch.channels_last
    )


def _whitening_filters(x_u8, mean, std, eps: float, seed: int):
    """2x2x3 patch PCA-whitening filters (12 eigenvectors, both signs): (24, 3, 2, 2)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    sample = x_u8[torch.randperm(len(x_u8), generator=g)[:5000]]
    patches = normalise(sample, mean, std).unfold(2, 2, 1).unfold(3, 2, 1)  # N,3,31,31,2,2
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12).double()
    cov = torch.cov(patches.T)
    eigval, eigvec = torch.linalg.eigh(cov)
    filters = (eigvec / torch.sqrt(eigval + eps)).T.reshape(12, 3, 2, 2)
    return torch.cat([filters, -filters]).float()


def _augment(x_u8, s: int, g):
    """Random horizontal flip per image; translation by up to ``s`` px (reflect padding), one
    shift per chunk of 32 images (per-image gathers cost as much as a training step on CPU)."""
    import torch
    import torch.nn.functional as F

    flip = torch.rand(len(x_u8), generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x_u8.flip(3), x_u8)
    padded = F.pad(x, (s, s, s, s), mode="reflect") if s else x
    out = torch.empty_like(x)
    for b in range(0, len(x), 32):
        dy, dx = (int(v) for v in torch.randint(0, 2 * s + 1, (2,), generator=g))
        out[b : b + 32] = padded[b : b + 32, :, dy : dy + 32, dx : dx + 32]
    return out


def bf16_available() -> bool:
    """bfloat16 autocast only where oneDNN has native kernels (AVX512-BF16 / AMX); elsewhere it
    is emulated and slower than float32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def train_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    recipe: dict = RECIPE,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Train on uint8 NHWC ``x_train``; returns the state dict, input statistics and accuracy."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    t0 = time.perf_counter()
    torch.manual_seed(recipe["seed"])
    g = torch.Generator().manual_seed(recipe["seed"])
    if recipe.get("train_n"):  # a random subset: prepared splits are sorted by class
        perm = np.random.default_rng([recipe["seed"], 7]).permutation(len(x_train))
        keep = np.sort(perm[: recipe["train_n"]])
        x_train, y_train = x_train[keep], y_train[keep]
    xtr = torch.from_numpy(np.ascontiguousarray(np.asarray(x_train).transpose(0, 3, 1, 2)))
    ytr = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    mean = xtr.float().mean(dim=(0, 2, 3))
    std = xtr.float().std(dim=(0, 2, 3))
    net = build_net(recipe["widths"], recipe["logit_scale"])
    net.stem.weight.data = _whitening_filters(xtr, mean, std, recipe["whiten_eps"], recipe["seed"])
    net.stem.weight.requires_grad_(False)
    net = net.to(memory_format=torch.channels_last)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(
        [
            {"params": [p for p in params if p.ndim > 1], "weight_decay": recipe["weight_decay"]},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
        ],
        lr=recipe["lr"],
        momentum=recipe["momentum"],
        nesterov=True,
    )
    steps_per_epoch = len(xtr) // recipe["batch"]  # drop the last partial batch (BN statistics)
    total = steps_per_epoch * recipe["epochs"]
    warm = max(1.0, recipe["warmup_frac"] * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min((i + 1) / warm, max(0.0, (total - i) / max(1.0, total - warm)))
    )
    bf16 = bf16_available()
    net.train()
    with tqdm(total=total, desc="cifar10 classifier", disable=not progress, leave=False) as bar:
        for _ in range(recipe["epochs"]):
            perm = torch.randperm(len(xtr), generator=g)
            for i in range(steps_per_epoch):
                idx = perm[i * recipe["batch"] : (i + 1) * recipe["batch"]]
                x = normalise(_augment(xtr[idx], recipe["translate_px"], g), mean, std)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    logits = net(x)
                loss = F.cross_entropy(
                    logits.float(), ytr[idx], label_smoothing=recipe["label_smoothing"]
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
    train_seconds = time.perf_counter() - t0
    net.eval()
    pred = predict(net, x_test, mean, std)
    out = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    out.update(
        input_mean=mean.numpy(),
        input_std=std.numpy(),
        accuracy=np.float64(np.mean(pred == np.asarray(y_test))),
        n_test=np.int64(len(x_test)),
        n_train=np.int64(len(xtr)),
        epochs=np.int64(recipe["epochs"]),
        bf16=np.bool_(bf16),
        train_seconds=np.float64(train_seconds),
    )
    return out


def predict(net, images_u8: np.ndarray, mean, std, batch: int = 1000) -> np.ndarray:
    """Class of each uint8 NHWC image, float32, no test-time augmentation (as features are)."""
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(images_u8), batch):
            x = torch.from_numpy(
                np.ascontiguousarray(images_u8[s : s + batch].transpose(0, 3, 1, 2))
            )
            out.append(net(normalise(x, mean, std)).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def prepared_split(data_root: str | None, split: str, cache_dir: str | None = None):
    """The prepared CIFAR-10 ``split`` (all 10 classes); :class:`MetricSkipped` if unavailable."""
    from datasets import prepare

    role = "learns from" if split == "train" else "is held out on"
    try:
        ds = prepare("cifar10", data_root=data_root, cache_dir=cache_dir, max_res=32, split=split)
    except UserError as exc:
        raise MetricSkipped(
            f"the cifar10cls classifier {role} the CIFAR-10 {split} split, which is not "
            f"available here ({exc}); pass --data-root with the full CIFAR-10"
        ) from exc
    if ds.labels is None or ds.count < 1000:
        raise MetricSkipped(
            f"the CIFAR-10 {split} split at {data_root} has {ds.count} images"
            f"{' and no labels' if ds.labels is None else ''}; the cifar10cls classifier needs "
            "the full labelled split"
        )
    return ds


def _content_id(ds) -> str:
    """The prepared split's content: the sha256 of its 32x32 array and labels (manifest)."""
    images = str(ds.manifest.get("arrays", {}).get("32", {}).get("sha256", ""))[:16]
    labels = str(ds.manifest.get("labels", {}).get("sha256", ""))[:16]
    if images and labels:
        return f"{images}-{labels}"
    return f"{array_fingerprint(np.asarray(ds.array(32)))}-{array_fingerprint(ds.labels)}"


def get_classifier(
    data_root: str | None, cache: MetricCache, progress: bool = False
) -> tuple[dict[str, np.ndarray], dict]:
    """The trained weights (from cache or trained now, a few minutes) and the protocol note."""
    cache_dir = str(cache.root)
    train = prepared_split(data_root, "train", cache_dir)
    test = prepared_split(data_root, "test", cache_dir)
    key = {"recipe": RECIPE, "train": _content_id(train), "test": _content_id(test)}

    def fit() -> dict[str, np.ndarray]:
        x_train, y_train = np.asarray(train.array(32)), np.asarray(train.labels)
        x_test, y_test = np.asarray(test.array(32)), np.asarray(test.labels)
        return train_classifier(x_train, y_train, x_test, y_test, RECIPE, progress)

    arrays, hit = cache.arrays("cifar10-classifier", key, fit)
    acc = float(arrays["accuracy"])
    note = {
        "classifier": RECIPE["arch"],
        "classifier_data": {
            "dataset": "cifar10",
            "train": "train",
            "heldout": "test",
            "train_sha256": key["train"],
            "test_sha256": key["test"],
        },
        "classifier_heldout_accuracy": acc,
        "classifier_n_heldout": int(arrays["n_test"]),
        "classifier_n_train": int(arrays["n_train"]),
        "classifier_epochs": int(arrays["epochs"]),
        "classifier_bf16_training": bool(arrays["bf16"]),
        "classifier_train_seconds": float(arrays["train_seconds"]),
        "classifier_cached": hit,
    }
    if acc < MIN_ACCURACY:
        raise UserError(
            f"the CIFAR-10 classifier reached only {acc:.2%} test accuracy (needs >= "
            f"{MIN_ACCURACY:.0%}); its training failed. Check the CIFAR-10 data or delete "
            f"the cache entry under {cache.root / 'metrics'} to retrain."
        )
    return arrays, note
