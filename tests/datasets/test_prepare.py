"""Preparation and the cache contract: shapes, filters, manifest, reuse, atomicity."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import open_prepared, prepare, prepare_report
from datasets.cache import MANIFEST
from datasets.imageops import box_downsample, quantize
from gancore.errors import UserError
from tests.conftest import write_image_folder


def test_stacked_digits_contract(tmp_path: Path) -> None:
    ds = prepare("stacked-digits", cache_dir=tmp_path, count=500, seed=3)
    assert (ds.count, ds.channels, ds.resolutions) == (500, 3, [4, 8, 16, 32])
    for r in ds.resolutions:
        a = ds.array(r)
        assert isinstance(a, np.memmap) and a.dtype == np.uint8 and a.shape == (500, r, r, 3)
    labels = ds.labels
    assert labels.shape == (500,) and labels.min() >= 0 and labels.max() < 1000
    assert len(np.unique(labels)) > 300  # 500 draws from 1000 modes
    m = ds.manifest
    assert m["count"] == 500 and m["options"] == {"count": 500, "seed": 3}
    assert m["labels"]["num_classes"] == 1000 and set(m["arrays"]) == {"4", "8", "16", "32"}
    assert ds.verify() == []
    # same seed -> same set; other seed -> other set
    same = prepare("stacked-digits", cache_dir=tmp_path / "b", count=500, seed=3)
    other = prepare("stacked-digits", cache_dir=tmp_path / "b", count=500, seed=4)
    assert np.array_equal(np.asarray(same.array(32)), np.asarray(ds.array(32)))
    assert not np.array_equal(np.asarray(other.array(32)), np.asarray(ds.array(32)))


def test_stacked_label_matches_channels(tmp_path: Path) -> None:
    """Each channel of a stacked image is the digit its label names (via the plain digits set)."""
    digits = prepare("digits", cache_dir=tmp_path)
    stacked = prepare("stacked-digits", cache_dir=tmp_path, count=50)
    grey = np.asarray(digits.array(32))[..., 0].reshape(len(digits.labels), -1).astype(np.int32)
    for img, lab in zip(np.asarray(stacked.array(32))[:10], stacked.labels[:10]):
        for ch, digit in enumerate((lab // 100, lab // 10 % 10, lab % 10)):
            match = np.where((grey == img[..., ch].reshape(-1)).all(axis=1))[0]
            assert len(match) >= 1 and digits.labels[match[0]] == digit


def test_lower_resolutions_are_box_averages(tmp_path: Path) -> None:
    ds = prepare("stacked-digits", cache_dir=tmp_path, count=64)
    top = np.asarray(ds.array(32)).astype(np.float32)
    lvl16 = box_downsample(top)
    assert np.array_equal(quantize(lvl16), ds.array(16))
    assert np.array_equal(quantize(box_downsample(lvl16)), ds.array(8))


def test_second_request_is_instant_and_smaller_res_reuses(tmp_path: Path) -> None:
    first = prepare_report("stacked-digits", cache_dir=tmp_path, count=300)
    assert not first["reused"]
    t = time.perf_counter()
    again = prepare_report("stacked-digits", cache_dir=tmp_path, count=300)
    assert again["reused"] and time.perf_counter() - t < 2.0
    small = prepare_report("stacked-digits", cache_dir=tmp_path, count=300, max_res=16)
    assert small["reused"] and small["dataset"].resolutions == [4, 8, 16]
    assert small["dataset"].path == first["dataset"].path
    with pytest.raises(UserError, match="32x32"):
        prepare("stacked-digits", cache_dir=tmp_path, count=300, max_res=64)


def test_folder_lanczos_top_and_crop(tmp_path: Path) -> None:
    src = write_image_folder(tmp_path / "imgs", 6, size=40)
    Image.new("RGB", (60, 40), (10, 20, 30)).save(src / "wide.png")  # non-square
    ds = prepare(f"folder:{src}", cache_dir=tmp_path / "c", max_res=16)
    assert ds.count == 7 and ds.channels == 3 and ds.labels is None
    # sorted order: img_0000 ... img_0005, wide
    ref = np.asarray(
        Image.open(src / "img_0002.png").convert("RGB").resize((16, 16), Image.LANCZOS)
    )
    assert np.array_equal(ds.array(16)[2], ref)
    assert (ds.array(16)[6] == (10, 20, 30)).all()


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "I;16"])
def test_modes_converted_to_rgb(tmp_path: Path, mode: str) -> None:
    src = tmp_path / "m"
    src.mkdir()
    rgb = Image.new("RGB", (8, 8), (200, 100, 50))
    img = rgb.convert("P", palette=Image.ADAPTIVE) if mode == "P" else rgb.convert(mode)
    img.save(src / ("x.tif" if mode in ("CMYK", "I;16") else "x.png"))
    ds = prepare(f"folder:{src}", cache_dir=tmp_path / "c", max_res=8)
    out = ds.array(8)[0]
    assert out.shape == (8, 8, 3)
    if mode in ("RGBA", "P", "CMYK"):
        assert np.abs(out.astype(int) - (200, 100, 50)).max() <= 3
    elif mode == "I;16":  # PIL stores the 8-bit grey unscaled: read as 16-bit it is near 0
        assert out.max() <= 1
    else:  # grey: all channels equal
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    src = tmp_path / "exif"
    src.mkdir()
    arr = np.zeros((8, 16, 3), dtype=np.uint8)
    arr[:, :8] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(arr).save(src / "p.jpg", exif=exif, quality=100)
    ds = prepare(f"folder:{src}", cache_dir=tmp_path / "c", max_res=8)
    img = np.asarray(ds.array(8)[0]).astype(int)
    # upright, the photo is 8 wide x 16 tall with the white half on top; the centre crop
    # keeps rows 4..11: the upper 4 rows white, the lower 4 black
    assert img[:3].mean() > 200 and img[-3:].mean() < 50


def test_interrupted_prepare_leaves_nothing_complete(tmp_path: Path, monkeypatch) -> None:
    src = write_image_folder(tmp_path / "imgs", 8, size=8)
    import datasets.sources.folder as folder

    calls = {"n": 0}
    real = folder.open_image

    def flaky(path):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(folder, "open_image", flaky)
    cache = tmp_path / "c"
    with pytest.raises(KeyboardInterrupt):
        prepare(f"folder:{src}", cache_dir=cache, max_res=8)
    assert not [p for p in cache.iterdir() if (p / MANIFEST).exists()]
    monkeypatch.setattr(folder, "open_image", real)
    # a stale partial folder from a killed process is redone, not trusted
    ds = prepare(f"folder:{src}", cache_dir=cache, max_res=8)
    stale = ds.path.with_name(ds.path.name + ".partial")
    assert ds.count == 8 and not stale.exists()


def test_killed_process_partial_is_redone(tmp_path: Path) -> None:
    src = write_image_folder(tmp_path / "imgs", 4, size=8)
    ds = prepare(f"folder:{src}", cache_dir=tmp_path / "c", max_res=8)
    # simulate a kill -9 during a rebuild: a complete-looking name never appears without manifest
    final = ds.path
    final.rename(final.with_name(final.name + ".partial"))
    (final.with_name(final.name + ".partial") / MANIFEST).unlink()
    again = prepare_report(f"folder:{src}", cache_dir=tmp_path / "c", max_res=8)
    assert not again["reused"] and again["dataset"].count == 4


def test_manifest_is_json_and_info_opens_it(tmp_path: Path) -> None:
    ds = prepare("digits", cache_dir=tmp_path)
    m = json.loads((ds.path / MANIFEST).read_text())
    for key in (
        "source",
        "options",
        "split",
        "count",
        "channels",
        "labels",
        "resolutions",
        "arrays",
        "skipped",
        "format_version",
        "prepared_at",
        "prepare_seconds",
    ):
        assert key in m
    assert open_prepared(ds.path).count == 1797 and ds.channels == 1


def test_import_datasets_imports_no_framework() -> None:
    code = "import sys, datasets, datasets.stream; print('torch' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
