"""CIFAR-10 (Krizhevsky 2009): ``cifar10``, ``cifar10-cars``, ``cifar10:CLASS[,CLASS...]``.

Two layouts are read, each as an archive or extracted:

* the official python version, ``cifar-10-python.tar.gz`` (md5 below) or its
  ``cifar-10-batches-py/`` folder: pickled batches, loaded with
  :mod:`datasets.safe_pickle` so a malicious file cannot run code;
* an image-folder tree ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (the
  layout of a JPEG export of CIFAR-10), read through :mod:`datasets.sources.folder`.

Labels are re-numbered 0..K-1 in CIFAR's class order over the selected
classes; ``manifest["labels"]["names"]`` maps them back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from datasets.archive import check_member_name, download, file_md5, is_archive, open_tar
from datasets.safe_pickle import safe_load
from datasets.sources.base import Chunk, SourceSpec, fingerprint_files
from datasets.sources.folder import image_tree_source
from gancore.errors import UserError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
TARBALL = "cifar-10-python.tar.gz"
BATCH_DIR = "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
HOW = (
    f"Download {URL} (md5 {MD5}) and pass it, or its extracted {BATCH_DIR}/ folder, or an "
    "image tree train/<class>/*.jpg (folder or .tar.gz), with --data-root."
)


def parse_classes(base: str, arg: str) -> tuple[str, list[int]]:
    """Canonical name and class indices for cifar10 / cifar10-cars / cifar10:a,b."""
    if base == "cifar10-cars":
        if arg:
            raise UserError("cifar10-cars takes no class list; use cifar10:automobile,truck")
        return "cifar10-cars", [1]
    if not arg:
        return "cifar10", list(range(10))
    picked = set()
    for token in (t.strip().lower() for t in arg.split(",") if t.strip()):
        if token.isdigit() and int(token) < 10:
            picked.add(int(token))
        elif token in CLASSES:
            picked.add(CLASSES.index(token))
        else:
            raise UserError(
                f"unknown CIFAR-10 class {token!r}; classes are {', '.join(CLASSES)} "
                "(or their indices 0-9)."
            )
    idx = sorted(picked)
    if idx == list(range(10)):
        return "cifar10", idx
    if idx == [1]:
        return "cifar10-cars", idx
    return "cifar10:" + ",".join(CLASSES[i] for i in idx), idx


def cifar_source(
    base: str, arg: str, data_root: str | None, split: str, options: dict, downloads: Path
) -> SourceSpec:
    name, classes = parse_classes(base, arg)
    names = [CLASSES[i] for i in classes]
    if data_root is None:
        # download() re-checks the md5 of an existing copy (and removes a bad one)
        root = download(URL, downloads / TARBALL, MD5, f"data set {name!r}")
    else:
        root = Path(data_root).expanduser()
        if not root.exists():
            raise UserError(f"data set {name!r}: nothing at --data-root {root}. {HOW}")
    layout, where = _detect(root)
    if layout == "none":
        raise UserError(
            f"data set {name!r}: no CIFAR-10 found under {root} (looked for {TARBALL}, "
            f"{BATCH_DIR}/ and train/<class>/ images). {HOW}"
        )
    opts = {"classes": names}
    if layout == "images":
        remap = {c: k for k, c in enumerate(names)}

        def select(rel: str) -> tuple[bool, int | None]:
            parts = rel.split("/")
            for i in range(len(parts) - 2):
                if parts[i] == split and parts[i + 1] in remap:
                    return True, remap[parts[i + 1]]
            return False, None

        spec = image_tree_source(
            name,
            "cifar10-images",
            where,
            select,
            split=split,
            options=opts,
            label_names=names,
            how_to_get=HOW,
        )
        spec.native_res = 32
        return spec
    return _pickle_source(
        name, names, classes, layout, where, split, opts, user_file=data_root is not None
    )


def _detect(root: Path) -> tuple[str, Path]:
    """("tarball" | "batches" | "images" | "none", path to read)."""
    if root.is_file():
        if not is_archive(root):
            return "none", root
        if root.name == TARBALL or _first_members_mention(root, BATCH_DIR):
            return "tarball", root
        return "images", root
    for cand in (root, root / BATCH_DIR):
        if (cand / "data_batch_1").is_file() or (cand / "test_batch").is_file():
            return "batches", cand
    if (root / TARBALL).is_file():
        return _detect(root / TARBALL)
    for cand in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if (cand / "train").is_dir() or (cand / "test").is_dir():
            return "images", root
    # a data folder holding one CIFAR archive under another name (e.g. cifar10-jpg.tar.gz)
    archives = [p for p in sorted(root.iterdir()) if "cifar" in p.name.lower() and is_archive(p)]
    if len(archives) == 1:
        return _detect(archives[0])
    return "none", root


def _first_members_mention(archive: Path, text: str, limit: int = 20) -> bool:
    """Peek at the first members only, so a cache hit does not decompress the whole archive."""
    with open_tar(archive) as tar:
        for k, m in enumerate(tar):
            check_member_name(archive, m.name)
            if text in m.name:
                return True
            if k >= limit:
                break
    return False


def _pickle_source(
    name: str,
    names: list[str],
    classes: list[int],
    layout: str,
    where: Path,
    split: str,
    opts: dict,
    user_file: bool,
) -> SourceSpec:
    wanted = BATCHES[split]
    if layout == "tarball":
        if user_file and where.name == TARBALL:
            _check_user_md5(where)  # downloads were checked by download()
        fp = fingerprint_files([where])
    else:
        missing = [b for b in wanted if not (where / b).is_file()]
        if missing:
            raise UserError(
                f"data set {name!r}: {where} lacks {', '.join(missing)} for the "
                f"{split} split. {HOW}"
            )
        fp = fingerprint_files([where / b for b in wanted])
    remap = np.full(10, -1, dtype=np.int64)
    remap[classes] = np.arange(len(classes))

    def batches() -> Iterator[tuple[str, bytes]]:
        if layout == "batches":
            for b in wanted:
                yield b, (where / b).read_bytes()
            return
        with open_tar(where) as tar:
            found = {
                Path(m.name).name: m
                for m in tar.getmembers()
                if m.isfile() and Path(m.name).parent.name == BATCH_DIR
            }
            for b in wanted:
                if b not in found:
                    raise UserError(f"data set {name!r}: {where} has no {BATCH_DIR}/{b}. {HOW}")
                fh = tar.extractfile(found[b])
                yield b, fh.read()  # type: ignore[union-attr]

    def open_batches(_workdir: Path):
        def gen() -> Iterator[Chunk]:
            for b, data in batches():
                x, y = _batch_arrays(safe_load(data, f"{where}:{b}"), f"{where}:{b}")
                keep = np.isin(y, classes)
                yield Chunk(np.ascontiguousarray(x[keep].transpose(0, 2, 3, 1)), remap[y[keep]])

        return 10000 * len(wanted), gen()

    return SourceSpec(
        name=name,
        kind="cifar10",
        split=split,
        options=opts,
        channels=3,
        fingerprint=fp,
        open=open_batches,
        location=str(where.resolve()),
        label_names=names,
        num_classes=len(names),
        label_meaning="index into label_names",
        native_res=32,
        keep_fraction=len(classes) / 10,  # every CIFAR-10 split holds as many of each class
    )


def _batch_arrays(d: object, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N x 3 x 32 x 32 images, int64 N labels) of one unpickled batch, or a UserError.

    The official batches are dicts with b"data" (N x 3072 uint8) and b"labels" (N ints);
    anything else (a list, a missing key, a label count that differs from the image
    count) is refused with the file's name rather than failing later inside numpy."""

    def bad(why: str) -> UserError:
        return UserError(f"{what} is not a CIFAR-10 batch ({why}); re-download it. {HOW}")

    if not isinstance(d, dict):
        raise bad(f"it holds a {type(d).__name__}, not a dict")
    missing = [k.decode() for k in (b"data", b"labels") if k not in d]
    if missing:
        raise bad(f"no {' or '.join(missing)} entry")
    try:
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(d[b"labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise bad(f"{type(exc).__name__}: {exc}") from exc
    if y.ndim != 1 or len(y) != len(x):
        raise bad(f"{len(x)} images but labels of shape {y.shape}")
    return x, y


def _check_user_md5(path: Path) -> None:
    """A user-supplied official tarball: check it, but never delete the user's file."""
    got = file_md5(path)
    if got != MD5:
        raise UserError(
            f"{path} has md5 {got}, expected {MD5} for the official {TARBALL}; "
            f"it is corrupt or not the official file. Download it again from {URL}."
        )
