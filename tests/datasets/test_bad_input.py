"""The data layer's bad-input list, one test each: clear errors, skipped files, refused archives."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import prepare
from datasets.cli import main as cli_main
from gancore.errors import UserError, run_cli
from tests.conftest import write_image_folder


def test_missing_data_names_set_place_and_remedy(tmp_path: Path) -> None:
    with pytest.raises(UserError) as e:
        prepare("cifar10-cars", data_root=tmp_path / "nowhere", cache_dir=tmp_path)
    msg = str(e.value)
    assert "cifar10-cars" in msg and str(tmp_path / "nowhere") in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg and "--data-root" in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"mnist.*empty.*yann.lecun.com.*--data-root"):
        prepare("mnist", data_root=tmp_path / "empty", cache_dir=tmp_path)
    with pytest.raises(UserError, match="celeba.*--data-root.*img_align_celeba"):
        prepare("celeba", cache_dir=tmp_path)


def test_offline_without_data_root_says_where_it_looked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    with pytest.raises(UserError, match=r"no copy in .*downloads.*--data-root"):
        prepare("cifar10", cache_dir=tmp_path)


def test_cli_user_error_has_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "GANBENCH_CACHE": str(tmp_path)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "datasets",
            "prepare",
            "cifar10",
            "--data-root",
            str(tmp_path / "missing"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: data set 'cifar10'") and "Traceback" not in out.stderr


def test_download_with_wrong_checksum_is_removed(tmp_path: Path, monkeypatch) -> None:
    import datasets.sources.cifar as cifar

    fake = tmp_path / "fake.tar.gz"
    fake.write_bytes(b"not the real file")
    monkeypatch.setattr(cifar, "URL", fake.as_uri())
    monkeypatch.delenv("GANBENCH_OFFLINE", raising=False)
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="md5.*removed"):
        prepare("cifar10", cache_dir=cache)
    assert not any((cache / "downloads").iterdir())
    # a bad copy already sitting in the downloads folder is removed too
    (cache / "downloads" / cifar.TARBALL).write_bytes(b"junk")
    with pytest.raises(UserError, match="md5"):
        prepare("cifar10", cache_dir=cache)
    assert not (cache / "downloads" / cifar.TARBALL).exists()


def test_user_supplied_official_tarball_with_wrong_md5(tmp_path: Path) -> None:
    bad = tmp_path / "cifar-10-python.tar.gz"
    _tar(bad, {"cifar-10-batches-py/data_batch_1": b"x"})
    with pytest.raises(UserError, match="md5"):
        prepare("cifar10", data_root=bad, cache_dir=tmp_path / "c")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_corrupt_images_skipped_listed_and_warned(tmp_path: Path, capsys) -> None:
    src = write_image_folder(tmp_path / "imgs", 120, size=8)
    _truncate(src / "img_0007.png")
    ds = prepare(f"folder:{src}", cache_dir=tmp_path / "c", max_res=8)
    assert ds.count == 119
    assert ds.manifest["unreadable_count"] == 1
    assert ds.manifest["skipped"][0]["file"] == "img_0007.png"
    assert "img_0007.png" in capsys.readouterr().err


def test_more_than_one_percent_bad_fails_naming_them(tmp_path: Path) -> None:
    src = write_image_folder(tmp_path / "imgs", 100, size=8)
    for i in (3, 50):
        _truncate(src / f"img_{i:04d}.png")
    (src / "img_0099.png").write_bytes(b"\x89PNG garbage")
    cache = tmp_path / "c"
    with pytest.raises(UserError, match=r"2 of 100 .*unreadable.*img_0003.png, img_0050.png"):
        prepare(f"folder:{src}", cache_dir=cache, max_res=8)
    assert not [p for p in cache.iterdir() if not p.name.startswith(".")]  # nothing left


def test_too_small_image_errors_or_is_skipped(tmp_path: Path) -> None:
    src = write_image_folder(tmp_path / "imgs", 3, size=16)
    Image.new("RGB", (20, 12)).save(src / "tiny.png")
    with pytest.raises(UserError, match=r"tiny.png.*20x12.*16x16.*--skip-small"):
        prepare(f"folder:{src}", cache_dir=tmp_path / "c", max_res=16)
    ds = prepare(f"folder:{src}", cache_dir=tmp_path / "c", max_res=16, skip_small=True)
    assert ds.count == 3 and ds.manifest["too_small_count"] == 1
    assert ds.manifest["skipped"] == [{"file": "tiny.png", "reason": "smaller than max_res"}]


def test_empty_folder_and_non_images(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found"):
        prepare(f"folder:{tmp_path / 'empty'}", cache_dir=tmp_path / "c")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("hello")
    (junk / "data.csv").write_text("1,2")
    with pytest.raises(UserError, match="no images found"):
        prepare(f"folder:{junk}", cache_dir=tmp_path / "c")
    with pytest.raises(UserError, match="does not exist"):
        prepare(f"folder:{tmp_path / 'nope'}", cache_dir=tmp_path / "c")


def _png_bytes(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (value, value, value)).save(buf, format="PNG")
    return buf.getvalue()


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    "evil", ["../escape.png", "/tmp/ganbench-abs-escape.png", "a/../../up.png"]
)
def test_archive_with_unsafe_member_is_refused(tmp_path: Path, evil: str) -> None:
    arc = _tar(tmp_path / "evil.tar.gz", {"ok/a.png": _png_bytes(10), evil: _png_bytes(20)})
    with pytest.raises(UserError, match="refusing archive"):
        prepare(f"folder:{arc}", cache_dir=tmp_path / "c", max_res=8)
    assert (
        not (tmp_path / "escape.png").exists() and not Path("/tmp/ganbench-abs-escape.png").exists()
    )


def test_archive_and_folder_give_the_same_images(tmp_path: Path) -> None:
    members = {f"faces/{i:03d}.png": _png_bytes(i * 20) for i in (3, 1, 2)}
    arc = _tar(tmp_path / "faces.tar.gz", members)
    ds_arc = prepare(f"folder:{arc}", cache_dir=tmp_path / "c", max_res=8)
    folder = tmp_path / "x"
    for name, data in members.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    ds_dir = prepare(f"folder:{folder}", cache_dir=tmp_path / "c", max_res=8)
    assert np.array_equal(np.asarray(ds_arc.array(8)), np.asarray(ds_dir.array(8)))
    assert list(np.asarray(ds_dir.array(8))[:, 0, 0, 0]) == [20, 40, 60]  # sorted order


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_cifar_pickle_is_refused_without_running(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "PWNED"
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    for i in range(1, 6):
        (batches / f"data_batch_{i}").write_bytes(
            pickle.dumps({b"data": _Evil(marker)}, protocol=2)
        )
    with pytest.raises(UserError, match="refusing .*data_batch_1.*posix.system|refusing .*system"):
        prepare("cifar10", data_root=tmp_path, cache_dir=tmp_path / "c")
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Evil(marker)))  # the control: plain pickle would run it
    assert marker.exists()


def test_cli_prints_what_it_did(tmp_path: Path, capsys) -> None:
    assert (
        run_cli(
            cli_main,
            [
                "prepare",
                "stacked-digits",
                "--count",
                "120",
                "--seed",
                "1",
                "--cache",
                str(tmp_path),
                "--quiet",
            ],
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "prepared: stacked-digits" in out and "images kept: 120" in out and "4, 8, 16, 32" in out
    assert (
        run_cli(
            cli_main,
            [
                "prepare",
                "stacked-digits",
                "--count",
                "120",
                "--seed",
                "1",
                "--cache-dir",
                str(tmp_path),
                "--quiet",
            ],
        )
        == 0
    )
    assert "found in cache" in capsys.readouterr().out
    assert (
        run_cli(
            cli_main,
            [
                "info",
                "stacked-digits",
                "--count",
                "120",
                "--seed",
                "1",
                "--cache",
                str(tmp_path),
                "--verify",
            ],
        )
        == 0
    )
    out = capsys.readouterr().out
    assert '"count": 120' in out and "checksums: all arrays match" in out
    assert (
        run_cli(cli_main, ["prepare", "digits", "--cache", str(tmp_path / "d"), "--dry-run"]) == 0
    )
    assert "would be prepared" in capsys.readouterr().out and not (tmp_path / "d").exists()
    assert run_cli(cli_main, ["prepare", "nonsense-set", "--cache", str(tmp_path)]) == 2
    assert "unknown data set" in capsys.readouterr().err


def test_cli_help_explains_every_option(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli_main(["prepare", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--data-root",
        "--cache",
        "--cache-dir",
        "--max-res",
        "--split",
        "--count",
        "--seed",
        "--skip-small",
        "--dry-run",
    ):
        assert flag in out
    # the stated default counts are the ones the sources use
    from datasets.sources.digits import DEFAULT_STACKED_DIGITS_COUNT
    from datasets.sources.mnist import DEFAULT_STACKED_MNIST_COUNT

    text = " ".join(out.split())
    assert f"default: {DEFAULT_STACKED_MNIST_COUNT} for stacked-mnist" in text
    assert f"{DEFAULT_STACKED_DIGITS_COUNT} for stacked-digits" in text


def test_not_enough_disk_space_is_refused_up_front(tmp_path: Path, monkeypatch) -> None:
    import collections
    import importlib

    build = importlib.import_module("datasets.build")

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(build.shutil, "disk_usage", lambda _p: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(UserError, match="GB free"):
        prepare("stacked-digits", cache_dir=tmp_path, count=100)
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]


def test_unwritable_cache_dir_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # mkdir below it fails, even for root
    with pytest.raises(UserError, match="cannot write the data set cache"):
        prepare("stacked-digits", cache_dir=blocker / "cache", count=10)


def test_options_that_do_not_apply_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--count do not apply to 'digits'"):
        prepare("digits", cache_dir=tmp_path, count=10)
    with pytest.raises(UserError, match="unknown option"):
        prepare("digits", cache_dir=tmp_path, colour=True)
    with pytest.raises(UserError, match="power of two"):
        prepare("digits", cache_dir=tmp_path, max_res=24)
    with pytest.raises(UserError, match="only one split"):
        prepare("digits", cache_dir=tmp_path, split="test")
    with pytest.raises(UserError, match="--count must be positive"):
        prepare("stacked-digits", cache_dir=tmp_path, count=0)
