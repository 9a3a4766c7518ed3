"""Source families on small synthetic copies of their real layouts (plus optional real data)."""

from __future__ import annotations

import gzip
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import prepare, prepare_report
from datasets.sources.cifar import CLASSES
from gancore.errors import UserError


def _cifar_batches(folder: Path, per_batch: int = 30, seed: int = 0) -> dict[str, tuple]:
    """Official-format batches (protocol-2 pickles of {data, labels}) with random pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    made = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        (folder / name).write_bytes(
            pickle.dumps(
                {b"batch_label": name.encode(), b"data": data, b"labels": labels}, protocol=2
            )
        )
        made[name] = (data, np.array(labels))
    return made


def test_cifar_official_batches_folder_and_tarball(tmp_path: Path) -> None:
    made = _cifar_batches(tmp_path / "root" / "cifar-10-batches-py")
    ds = prepare("cifar10-cars", data_root=tmp_path / "root", cache_dir=tmp_path / "c")
    data = np.concatenate([made[f"data_batch_{i}"][0] for i in range(1, 6)])
    labels = np.concatenate([made[f"data_batch_{i}"][1] for i in range(1, 6)])
    cars = data[labels == 1].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert ds.count == len(cars) and np.array_equal(np.asarray(ds.array(32)), cars)
    assert (ds.labels == 0).all() and ds.manifest["labels"]["names"] == ["automobile"]
    # the same batches inside a tarball (any name: detected by its members)
    arc = tmp_path / "copy.tar.gz"
    with tarfile.open(arc, "w:gz") as tar:
        tar.add(tmp_path / "root" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    two = prepare("cifar10:truck,automobile", data_root=arc, cache_dir=tmp_path / "c", split="test")
    t_data, t_lab = made["test_batch"]
    keep = np.isin(t_lab, [1, 9])
    assert two.name == "cifar10:automobile,truck" and two.count == keep.sum()
    assert np.array_equal(two.labels, (t_lab[keep] == 9).astype(np.int64))


def test_the_space_check_expects_only_the_chosen_classes(tmp_path: Path, monkeypatch) -> None:
    """The official batches announce 10,000 images each; a class subset keeps its share, and
    the free-space check asks for that share, not for every image of the batches."""
    import collections

    import datasets.build as build

    _cifar_batches(tmp_path / "root" / "cifar-10-batches-py")
    # train split: 5 batches x 10,000 images, 4..32 px, 3 channels
    full = 50_000 * 3 * (32**2 + 16**2 + 8**2 + 4**2)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(build.shutil, "disk_usage", lambda _p: usage(10 * full, 0, full // 2))
    with pytest.raises(UserError, match=r"needs about 0\.2 GB for 50000 images"):
        prepare("cifar10", data_root=tmp_path / "root", cache_dir=tmp_path / "c")
    ds = prepare("cifar10-cars", data_root=tmp_path / "root", cache_dir=tmp_path / "c")
    assert ds.count > 0


def test_cifar_unknown_class_and_missing_batch(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown CIFAR-10 class 'cars'"):
        prepare("cifar10:cars", data_root=tmp_path, cache_dir=tmp_path / "c")
    _cifar_batches(tmp_path / "b")
    (tmp_path / "b" / "data_batch_3").unlink()
    with pytest.raises(UserError, match="lacks data_batch_3"):
        prepare("cifar10", data_root=tmp_path / "b", cache_dir=tmp_path / "c")


def test_cifar_image_tree_folder_and_tar(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    for split, n in (("train", 4), ("test", 2)):
        for k, cls in enumerate(CLASSES):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (32, 32), (k * 20, i * 10, 7)).save(d / f"{i:04d}.jpg", quality=95)
    ds = prepare("cifar10-cars", data_root=root, cache_dir=tmp_path / "c")
    assert ds.count == 4 and ds.manifest["split"] == "train"
    full = prepare("cifar10", data_root=root, cache_dir=tmp_path / "c", split="test")
    assert full.count == 20 and sorted(set(full.labels.tolist())) == list(range(10))
    arc = tmp_path / "tree.tar.gz"
    with tarfile.open(arc, "w:gz") as tar:
        for split in ("test", "train"):  # member order must not matter
            tar.add(root / split, arcname=split)
    from_tar = prepare("cifar10-cars", data_root=arc, cache_dir=tmp_path / "c")
    assert np.array_equal(np.asarray(from_tar.array(32)), np.asarray(ds.array(32)))
    with pytest.raises(UserError, match="32x32"):
        prepare("cifar10-cars", data_root=root, cache_dir=tmp_path / "c", max_res=64)


def _idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = (0x800 + arr.ndim).to_bytes(4, "big") + b"".join(
        d.to_bytes(4, "big") for d in arr.shape
    )
    raw = header + arr.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


def _mnist_test_split(folder: Path, n: int = 40, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    _idx(folder / "t10k-images-idx3-ubyte", images, gz)
    _idx(folder / "t10k-labels-idx1-ubyte", labels, gz)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_falls_back_to_the_split_present(tmp_path: Path, capsys, gz: bool) -> None:
    images, labels = _mnist_test_split(tmp_path / "m", gz=gz)
    rep = prepare_report("mnist", data_root=tmp_path / "m", cache_dir=tmp_path / "c")
    ds = rep["dataset"]
    assert ds.count == 40 and ds.channels == 1 and ds.manifest["split"] == "test"
    assert "using the test split" in capsys.readouterr().err
    assert any("test split" in n for n in ds.manifest["notes"])
    ref = np.asarray(Image.fromarray(images[5]).resize((32, 32), Image.BICUBIC))
    assert np.array_equal(ds.array(32)[5, ..., 0], ref) and np.array_equal(ds.labels, labels)


def test_stacked_mnist_count_seed_labels(tmp_path: Path) -> None:
    images, labels = _mnist_test_split(tmp_path / "m")
    ds = prepare(
        "stacked-mnist", data_root=tmp_path / "m", cache_dir=tmp_path / "c", count=64, seed=2
    )
    assert (ds.count, ds.channels) == (64, 3) and ds.manifest["options"] == {"count": 64, "seed": 2}
    digits32 = np.stack(
        [np.asarray(Image.fromarray(d).resize((32, 32), Image.BICUBIC)) for d in images]
    )
    img, lab = np.asarray(ds.array(32))[0], ds.labels[0]
    found = [labels[np.where((digits32 == img[..., c]).all(axis=(1, 2)))[0][0]] for c in range(3)]
    assert lab == 100 * found[0] + 10 * found[1] + found[2]


def test_mnist_truncated_idx_is_a_clear_error(tmp_path: Path) -> None:
    _mnist_test_split(tmp_path / "m", gz=False)
    f = tmp_path / "m" / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(UserError, match="truncated"):
        prepare("mnist", data_root=tmp_path / "m", cache_dir=tmp_path / "c", split="test")


def test_celeba_centre_square(tmp_path: Path) -> None:
    src = tmp_path / "img_align_celeba"
    src.mkdir()
    arr = np.zeros((218, 178, 3), dtype=np.uint8)
    arr[20:198] = 200  # the centred 178x178 square is bright, the 20-pixel bands dark
    Image.fromarray(arr).save(src / "000001.png")
    ds = prepare("celeba", data_root=src, cache_dir=tmp_path / "c", max_res=64)
    assert ds.count == 1 and (np.asarray(ds.array(64)) == 200).all()


# ------------------------------------------------------------------ real data (optional)
@pytest.mark.needs_data
def test_real_cifar10_cars_has_5000_train_images(real_data: Path) -> None:
    ds = prepare("cifar10-cars", data_root=real_data / "cifar10-jpg.tar.gz")
    assert ds.count == 5000 and ds.manifest["skipped_count"] == 0
    assert ds.array(32).shape == (5000, 32, 32, 3)


@pytest.mark.needs_data
def test_real_stacked_mnist_from_t10k(real_data: Path) -> None:
    ds = prepare("stacked-mnist", data_root=real_data / "mnist", count=2000)
    assert ds.count == 2000 and ds.manifest["split"] == "test"
    assert len(np.unique(ds.labels)) > 800  # 2000 draws cover most of the 1000 modes
    mn = prepare("mnist", data_root=real_data / "mnist", split="test")
    assert mn.count == 10000 and np.bincount(mn.labels).min() > 800
