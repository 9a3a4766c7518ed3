"""Source families, one module each; :func:`resolve_source` maps a data set name to one."""

from __future__ import annotations

from pathlib import Path

from datasets.sources.base import SourceSpec
from gancore.errors import UserError

NAMES = (
    "cifar10",
    "cifar10-cars",
    "cifar10:CLASS,CLASS",
    "mnist",
    "stacked-mnist",
    "digits",
    "stacked-digits",
    "celeba",
    "celebahq",
    "folder:PATH",
)


def resolve_source(
    name: str, data_root: str | None, split: str, options: dict, downloads: Path
) -> SourceSpec:
    """Find and describe the source for ``name``; raises UserError with a way forward."""
    if split not in ("train", "test"):
        raise UserError(f"--split must be 'train' or 'test', got {split!r}")
    base, _, arg = name.partition(":")
    base = base.strip().lower()
    if base in ("digits", "stacked-digits") and not arg:
        from datasets.sources.digits import digits_source

        return digits_source(base, split, options)
    if base == "folder":
        from datasets.sources.folder import folder_source

        return folder_source(arg or (data_root or ""), split, options)
    if base in ("celeba", "celebahq") and not arg:
        from datasets.sources import folder

        fn = folder.celeba_source if base == "celeba" else folder.celebahq_source
        return fn(data_root, split, options)
    if base in ("cifar10", "cifar10-cars"):
        from datasets.sources.cifar import cifar_source

        return cifar_source(base, arg, data_root, split, options, downloads)
    if base in ("mnist", "stacked-mnist") and not arg:
        from datasets.sources.mnist import mnist_source

        return mnist_source(base, data_root, split, options, downloads)
    raise UserError(f"unknown data set {name!r}; choose one of: {', '.join(NAMES)}")
