"""``mnist`` and ``stacked-mnist`` from the official IDX files (LeCun et al. 1998).

Files: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` with or without
``.gz``, in ``--data-root`` (or its ``MNIST/raw`` / ``raw`` sub-folder), else
downloaded into ``<cache>/downloads`` from the official address (or the
mirror torchvision uses, since yann.lecun.com often refuses downloads) and
checked against the published md5.

Digits are 28x28; both sets bring them to 32x32 with PIL bicubic (so the
stacked set's channels and a digit classifier trained on ``mnist`` see the
same pixels). When the requested split's files are missing but the other
split's are there (a copy that holds only t10k), the other split
is used with a printed warning, and the manifest records the split used.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from datasets.archive import download, offline
from datasets.sources.base import Chunk, SourceSpec, fingerprint_files
from datasets.sources.stacked import (
    STACKED_LABEL_MEANING,
    STACKED_RES,
    check_stacked_options,
    stacked_chunks,
    upscale_digits,
)
from gancore.errors import UserError

URLS = ("http://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MD5 = {  # of the official .gz files
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
# The size commonly used for Stacked MNIST training sets in the mode-collapse literature
# (PacGAN / VEEGAN setups); not re-checked against the papers offline -- verify before quoting.
DEFAULT_STACKED_MNIST_COUNT = 128_000
HOW = (
    f"Download the four IDX files from {URLS[0]} (or the mirror {URLS[1]}) and pass their "
    "folder with --data-root."
)


def _find(folder: Path, stem: str) -> Path | None:
    for sub in (folder, folder / "MNIST" / "raw", folder / "raw", folder / "mnist"):
        for cand in (sub / stem, sub / f"{stem}.gz"):
            if cand.is_file():
                return cand
    return None


def _split_files(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = [_find(folder, stem) for stem in FILES[split]]
    return None if None in found else (found[0], found[1])  # type: ignore[return-value]


def read_idx(path: Path, dims: int) -> np.ndarray:
    """Parse an IDX file (uint8 payload, big-endian header); clear error when malformed."""
    try:
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise UserError(f"{path} is not readable ({exc}); re-download it. {HOW}") from exc
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else -1
    if magic != 0x800 + dims:
        raise UserError(
            f"{path} is not an IDX file with {dims} dimension(s) (magic {magic:#x}). {HOW}"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    start = 4 + 4 * dims
    need = int(np.prod(shape))
    if len(raw) - start != need:
        raise UserError(
            f"{path} is truncated or padded: {len(raw) - start} bytes of data for "
            f"shape {shape}. Re-download it. {HOW}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(shape)


def locate(
    data_root: str | None, split: str, downloads: Path, what: str
) -> tuple[tuple[Path, Path], str, list[str]]:
    """(images file, labels file), the split actually used, and warnings."""
    notes: list[str] = []
    if data_root is not None:
        folder = Path(data_root).expanduser()
        if not folder.is_dir():
            raise UserError(f"data set {what!r}: --data-root {folder} is not a folder. {HOW}")
    else:
        folder = downloads / "mnist"
        if _split_files(folder, split) is None and not offline():
            for stem in FILES[split]:
                _download_one(stem, folder, what)
    files = _split_files(folder, split)
    if files is not None:
        return files, split, notes
    other = "test" if split == "train" else "train"
    files = _split_files(folder, other)
    if files is None:
        raise UserError(
            f"data set {what!r}: no MNIST IDX files for the {split} split in {folder} "
            f"(looked for {', '.join(FILES[split])} with or without .gz). {HOW}"
        )
    notes.append(
        f"{what}: the {split} split is not in {files[0].parent}; using the {other} split "
        f"({files[0].name}) instead. The manifest records split={other!r}."
    )
    return files, other, notes


def _download_one(stem: str, folder: Path, what: str) -> None:
    last: UserError | None = None
    for base in URLS:
        try:
            download(base + stem + ".gz", folder / f"{stem}.gz", MD5[stem], f"data set {what!r}")
            return
        except UserError as exc:
            last = exc
    assert last is not None
    raise last


def mnist_source(
    name: str, data_root: str | None, split: str, options: dict, downloads: Path
) -> SourceSpec:
    (img_path, lab_path), used_split, notes = locate(data_root, split, downloads, name)
    images = read_idx(img_path, 3)
    labels = read_idx(lab_path, 1).astype(np.int64)
    if len(images) != len(labels) or images.shape[1:] != (28, 28):
        raise UserError(
            f"{img_path} and {lab_path} do not match ({images.shape} vs {labels.shape})."
        )
    fp = fingerprint_files([img_path, lab_path])
    common = dict(
        split=used_split,
        fingerprint=fp,
        location=str(img_path.parent.resolve()),
        native_res=STACKED_RES,
        allow_upscale=True,
        notes=notes,
    )
    if name == "mnist":

        def open_mnist(_workdir: Path):
            return len(images), iter([Chunk(upscale_digits(images)[..., None], labels)])

        return SourceSpec(
            name="mnist",
            kind="mnist",
            options={},
            channels=1,
            open=open_mnist,
            label_names=[str(d) for d in range(10)],
            num_classes=10,
            label_meaning="the digit",
            **common,
        )
    opts = check_stacked_options(options, DEFAULT_STACKED_MNIST_COUNT)

    def open_stacked(_workdir: Path):
        return stacked_chunks(upscale_digits(images), labels, opts["count"], opts["seed"])

    return SourceSpec(
        name="stacked-mnist",
        kind="stacked-mnist",
        options=opts,
        channels=3,
        open=open_stacked,
        num_classes=1000,
        label_meaning=STACKED_LABEL_MEANING,
        **common,
    )
