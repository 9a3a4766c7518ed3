"""The one rule for where the project keeps its caches (prepared data sets, metric features,
trained feature extractors)::

    --cache-dir DIR   (when a command takes it)
    $GANBENCH_CACHE
    $XDG_CACHE_HOME/ganbench
    ~/.cache/ganbench
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir`` if given, else the environment's choice (module doc)."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get("GANBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ganbench"
