"""Damaged caches and unlucky source files: one-line errors that say what to do, exit 2 in
the CLI, nothing deleted. Each row of a table is one input that used to end in a traceback."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datasets import prepare
from datasets.bench import main as bench_main
from datasets.cli import main as cli_main
from gancore.errors import UserError, run_cli
from tests.conftest import write_image_folder

ROOT = Path(__file__).resolve().parents[2]
COUNT = 40  # stacked-digits images: a cache of 4x4 ... 32x32 in well under a second


@pytest.fixture(scope="module")
def good_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One intact cache folder; every case damages its own copy."""
    cache = tmp_path_factory.mktemp("good")
    ds = prepare("stacked-digits", cache_dir=cache, count=COUNT)
    return ds.path


def _copy(good: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(cache root, the copied cache folder)."""
    root = tmp_path / "cache"
    folder = root / good.name
    shutil.copytree(good, folder)
    return root, folder


def _write_manifest(folder: Path, **changes) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    m.update(changes)
    (folder / "manifest.json").write_text(json.dumps(m))


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)


DAMAGES = [
    ("truncated array", lambda f: _truncate(f / "16x16.npy", 1000), "16x16.npy is truncated"),
    ("array of 0 bytes", lambda f: _truncate(f / "8x8.npy", 0), "8x8.npy is not a readable .npy"),
    ("deleted array", lambda f: (f / "32x32.npy").unlink(), "32x32.npy is missing"),
    (
        "truncated labels",
        lambda f: _truncate(f / "labels.npy", 100),
        "labels.npy is not a readable",
    ),
    ("deleted labels", lambda f: (f / "labels.npy").unlink(), "labels.npy is missing"),
    (
        "manifest not JSON",
        lambda f: (f / "manifest.json").write_text("{not json"),
        "manifest.json is not readable JSON",
    ),
    (
        "manifest binary",
        lambda f: (f / "manifest.json").write_bytes(b"\xb7\x00\xff" * 30),
        "manifest.json is not readable JSON",
    ),
    (
        "manifest a list",
        lambda f: (f / "manifest.json").write_text("[1, 2]"),
        "manifest.json holds a JSON list, not an object",
    ),
    (
        "manifest without fields",
        lambda f: (f / "manifest.json").write_text('{"format_version": 1}'),
        "manifest.json has no 'name' field",
    ),
    (
        "resolutions not numbers",
        lambda f: _write_manifest(f, resolutions="abc"),
        "has resolutions 'abc', not a list of positive integers",
    ),
    (
        "count disagrees with the arrays",
        lambda f: _write_manifest(f, count=999),
        "4x4.npy holds uint8 (40, 4, 4, 3), the manifest says uint8 (999, 4, 4, 3)",
    ),
    ("manifest deleted", lambda f: (f / "manifest.json").unlink(), "it has no manifest.json"),
]


@pytest.mark.parametrize("damage, fragment", [d[1:] for d in DAMAGES], ids=[d[0] for d in DAMAGES])
def test_damaged_cache_is_named_and_kept(good_cache: Path, tmp_path: Path, damage, fragment):
    root, folder = _copy(good_cache, tmp_path)
    damage(folder)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(UserError) as e:
        prepare("stacked-digits", cache_dir=root, count=COUNT)
    msg = str(e.value)
    assert fragment in msg and str(folder) in msg, msg
    assert "\n" not in msg and "rm -r" in msg and "prepare it again" in msg
    # nothing deleted, nothing rebuilt over it
    assert sorted(p.name for p in folder.iterdir()) == before
    assert not any(p.name.endswith(".partial") for p in root.iterdir())


@pytest.mark.parametrize(
    "damage, fragment",
    [DAMAGES[0][1:], DAMAGES[2][1:], DAMAGES[5][1:], DAMAGES[7][1:], DAMAGES[-1][1:]],
    ids=["truncated", "deleted", "not JSON", "a list", "no manifest"],
)
def test_info_verify_on_damaged_cache_exits_2(good_cache, tmp_path, capsys, damage, fragment):
    root, folder = _copy(good_cache, tmp_path)
    damage(folder)
    argv = ["info", "stacked-digits", "--count", str(COUNT), "--cache", str(root), "--verify"]
    assert run_cli(cli_main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1, err


def test_info_verify_by_path_and_checksum_mismatch(good_cache, tmp_path, capsys):
    root, folder = _copy(good_cache, tmp_path)
    assert run_cli(cli_main, ["info", str(folder), "--verify"]) == 0
    assert "checksums: all arrays match" in capsys.readouterr().out
    arr = np.load(folder / "16x16.npy", mmap_mode="r+")
    arr[0, 0, 0, 0] ^= 1  # a flipped bit: sizes and headers are fine, only the hash tells
    arr.flush()
    del arr
    assert run_cli(cli_main, ["info", str(folder), "--verify"]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch in 16x16.npy" in err and "rm -r" in err
    assert (folder / "16x16.npy").exists()


def test_cache_path_that_is_a_file_is_not_built_over(good_cache, tmp_path):
    root, folder = _copy(good_cache, tmp_path)
    shutil.rmtree(folder)
    folder.write_text("not a folder")
    with pytest.raises(UserError, match="is damaged: it is not a folder"):
        prepare("stacked-digits", cache_dir=root, count=COUNT)
    assert folder.read_text() == "not a folder"


def test_cli_damaged_cache_has_no_traceback(good_cache, tmp_path):
    root, folder = _copy(good_cache, tmp_path)
    _truncate(folder / "32x32.npy", 5000)
    cmd = [sys.executable, "-m", "datasets", "info", "stacked-digits", "--count", str(COUNT)]
    out = subprocess.run(
        cmd + ["--cache", str(root), "--verify"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 2, out.stderr
    assert (
        out.stderr.startswith("error: the prepared data set in ") and "Traceback" not in out.stderr
    )
    assert "32x32.npy is truncated" in out.stderr


# --------------------------------------------------------------------------- CIFAR pickles
def _batches(root: Path, obj: object) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(obj, protocol=2))
    return root


def _batch(n_images: int, n_labels: int) -> dict:
    data = np.zeros((n_images, 3072), dtype=np.uint8)
    return {b"data": data, b"labels": [1] * n_labels}


@pytest.mark.parametrize(
    "obj, fragment",
    [
        ([1, 2, 3], "it holds a list, not a dict"),
        ({b"labels": [1]}, "no data entry"),
        (_batch(4, 3), "4 images but labels of shape (3,)"),
        (_batch(4, 5), "4 images but labels of shape (5,)"),
        ({b"data": np.zeros(100, np.uint8), b"labels": []}, "ValueError"),
    ],
    ids=["list", "no data", "fewer labels", "more labels", "bad data shape"],
)
def test_bad_cifar_batch_is_a_user_error(tmp_path: Path, obj, fragment) -> None:
    root = _batches(tmp_path / "src", obj)
    with pytest.raises(UserError) as e:
        prepare("cifar10", data_root=root, cache_dir=tmp_path / "c")
    msg = str(e.value)
    assert "data_batch_1 is not a CIFAR-10 batch" in msg and fragment in msg, msg
    assert "re-download" in msg and "\n" not in msg


# ----------------------------------------------------------------------- image folders
def test_dangling_symlink_is_skipped_and_listed_like_a_corrupt_image(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "imgs", 120, size=8)
    os.symlink(tmp_path / "gone.png", folder / "zz_dangling.png")
    ds = prepare(f"folder:{folder}", cache_dir=tmp_path / "c", max_res=8)
    assert ds.count == 120 and ds.manifest["unreadable_count"] == 1
    assert ds.manifest["skipped"] == [
        {
            "file": "zz_dangling.png",
            "reason": f"unreadable: broken symbolic link to {tmp_path / 'gone.png'}",
        }
    ]
    assert (folder / "zz_dangling.png").is_symlink()  # left alone


def test_dangling_symlinks_above_one_percent_fail_like_corrupt_images(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "imgs", 20, size=8)
    os.symlink(tmp_path / "gone.png", folder / "zz_dangling.png")
    with pytest.raises(UserError, match=r"1 of \d+ image files are unreadable.*zz_dangling.png"):
        prepare(f"folder:{folder}", cache_dir=tmp_path / "c", max_res=8)


# ---------------------------------------------------------------------- datasets.bench
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--workdir", "MISSING"], "does not exist; create it first"),
        (["--workdir", "FILE"], "is not a folder"),
        (["--res", "abc"], "--res takes comma-separated integers"),
        (["--res", "33"], "powers of two >= 4"),
        (["--res", ""], "powers of two >= 4"),
        (["--adapters", "jax"], "--adapters: choose from numpy,torch,tf"),
        (["--seconds", "nan"], "--seconds must be a positive number"),
        (["--seconds", "inf"], "--seconds must be a positive number"),
        (["--seconds", "0"], "--seconds must be a positive number"),
        (["--count", "0"], "--count must be 1 or more"),
        (["--rounds", "0"], "--rounds must be 1 or more"),
        (["--json", "DIR"], "is a folder; give a file name"),
        (["--json", "FILE/x.json"], "cannot create its folder"),
    ],
)
def test_bench_bad_flags(tmp_path: Path, capsys, args, fragment) -> None:
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    args = [str(tmp_path / a) if a.split("/")[0] in ("MISSING", "FILE", "DIR") else a for a in args]
    assert run_cli(bench_main, ["--no-memory-check", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1, err
    assert not (tmp_path / "MISSING").exists()  # nothing created for the user
