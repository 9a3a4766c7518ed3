"""Framework-neutral data layer: sources -> multi-resolution uint8 cache -> adapters.

::

    from datasets import prepare
    ds = prepare("stacked-digits")                 # prepared on first use, cached after
    ds.array(32)                                   # (N, 32, 32, 3) uint8 memmap
    from datasets.stream import ImageStream        # deterministic infinite shuffled order
    from datasets.torch_adapter import TorchBatches, to_torch
    from datasets.tf_adapter import tf_dataset, to_tf

Importing this package imports neither torch nor tensorflow.
"""

from datasets.cache import PreparedDataset, default_cache_dir
from datasets.prepare import prepare, prepare_report


def open_prepared(path) -> PreparedDataset:
    """Open an already prepared cache folder (what ``python -m datasets info DIR`` reads)."""
    return PreparedDataset(path)


__all__ = ["PreparedDataset", "default_cache_dir", "open_prepared", "prepare", "prepare_report"]
