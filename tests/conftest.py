"""Shared fixtures: a private dataset cache, the optional real data, tiny image folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.doc_commands import REAL_DATA  # the one definition of where the real data is

# Keep TensorFlow quiet and deterministic-friendly in every test process.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# TensorFlow and triton (which torch.optim / torch._dynamo import) each bundle LLVM. Loading
# triton AFTER TensorFlow aborts the whole process ("LLVM ERROR: inconsistency in registered
# CommandLine options"); the other order works. Torch and TF tests share one pytest process,
# so load triton first, before any test module imports TensorFlow.
try:
    import triton  # noqa: F401
except ImportError:
    pass


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Every test run prepares data sets into its own cache, never the user's."""
    cache = tmp_path_factory.mktemp("ganbench-cache")
    old = os.environ.get("GANBENCH_CACHE")
    os.environ["GANBENCH_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("GANBENCH_CACHE", None)
    else:
        os.environ["GANBENCH_CACHE"] = old


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``REAL_DATA`` when it exists; tests using it skip otherwise."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not available at {REAL_DATA}")
    return REAL_DATA


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if REAL_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs the real data ($DATA_DIR; {REAL_DATA} absent)")
    for item in items:
        if "needs_data" in item.keywords:
            item.add_marker(skip)


def write_image_folder(
    folder: Path, n: int, size: int = 40, seed: int = 0, ext: str = ".png"
) -> Path:
    """Write ``n`` random RGB images (smooth blobs, so box filters have something to do)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        base = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((size, size), Image.BILINEAR)
        img.save(folder / f"img_{i:04d}{ext}")
    return folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """32 random 40x40 RGB PNGs: a tiny ``folder:PATH`` data set."""
    return write_image_folder(tmp_path / "images", 32)
