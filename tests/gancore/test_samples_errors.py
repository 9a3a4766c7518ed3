"""``load_samples`` on files that are not a good samples.npz: one-line UserErrors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gancore.errors import UserError
from gancore.samples import load_samples, save_samples

IMAGES = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)


def _good(path: Path) -> Path:
    save_samples(path, IMAGES, np.arange(6))
    return path


def _npy(path: Path) -> Path:
    np.save(path.with_suffix(".npy"), IMAGES)
    path.with_suffix(".npy").rename(path)  # a .npy under the .npz name
    return path


def _truncated(path: Path) -> Path:
    data = _good(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _write(data: bytes):
    def make(path: Path) -> Path:
        path.write_bytes(data)
        return path

    return make


def _savez(**arrays):
    def make(path: Path) -> Path:
        np.savez(path, **arrays)
        return path

    return make


BAD = [
    ("npy named .npz", _npy, "is a single .npy array, not a samples .npz"),
    ("0 bytes", _write(b""), "is empty (0 bytes)"),
    ("truncated", _truncated, "cannot read samples file"),
    ("text", _write(b"hello"), "cannot read samples file"),
    (
        "fewer seeds",
        _savez(images=IMAGES, seeds=np.arange(4)),
        "'seeds' must hold one integer per image (6 images), got int64 of shape (4,)",
    ),
    (
        "float seeds",
        _savez(images=IMAGES, seeds=np.zeros(6)),
        "'seeds' must hold one integer per image",
    ),
    ("2-D seeds", _savez(images=IMAGES, seeds=np.zeros((6, 2), np.int64)), "shape (6, 2)"),
    ("meta not JSON", _savez(images=IMAGES, meta=np.array("{x")), "cannot read samples file"),
    ("meta a list", _savez(images=IMAGES, meta=np.array("[1]")), "'meta' must be a JSON object"),
    ("no images", _savez(pictures=IMAGES), "has no 'images' array"),
    ("float images", _savez(images=IMAGES / 255.0), "images must be uint8"),
    ("object array", _savez(images=np.array([None, 1], dtype=object)), "cannot read samples"),
    ("a folder", lambda p: p.mkdir() or p, "is a folder"),
    ("missing", lambda p: p, "does not exist"),
]


@pytest.mark.parametrize("make, fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_samples_file_is_one_line_user_error(tmp_path: Path, make, fragment) -> None:
    path = make(tmp_path / "samples.npz")
    with pytest.raises(UserError) as e:
        load_samples(path)
    msg = str(e.value)
    assert fragment in msg and "\n" not in msg, msg


def test_good_samples_round_trip(tmp_path: Path) -> None:
    images, seeds, meta = load_samples(_good(tmp_path / "s.npz"))
    assert np.array_equal(images, IMAGES) and list(seeds) == list(range(6)) and meta == {}
