"""``prepare(name)``: find a data set in the cache, or build it there atomically.

The cache contract is in datasets/cache.py; the pixel work in datasets/build.py.
A build goes into ``<dir>.partial/`` under a file lock and is renamed to
``<dir>/`` only when complete, so an interrupted run leaves nothing that looks
finished and the next run starts that job again.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from datasets.build import fill
from datasets.cache import (
    FORMAT_VERSION,
    MANIFEST,
    PreparedDataset,
    cache_key,
    default_cache_dir,
    file_lock,
    find_complete,
    slugify,
)
from datasets.imageops import resolutions_up_to
from datasets.integrity import damaged
from datasets.sources import resolve_source
from datasets.sources.base import SourceSpec
from gancore.errors import UserError
from gancore.io import atomic_write_json


def prepare(
    name: str,
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    max_res: int = 32,
    split: str = "train",
    verbose: bool = False,
    **options: Any,
) -> PreparedDataset:
    """Prepare (or find in the cache) data set ``name`` and return it.

    Options: ``count``/``seed`` (stacked sets), ``skip_small`` (skip images smaller
    than ``max_res`` instead of failing). Unknown options are refused.
    """
    report = prepare_report(name, data_root, cache_dir, max_res, split, verbose=verbose, **options)
    return report["dataset"]


def prepare_report(
    name: str,
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    max_res: int = 32,
    split: str = "train",
    verbose: bool = False,
    dry_run: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Like :func:`prepare`, also saying whether the cache was reused and how long it took.

    With ``dry_run`` nothing is written: the report says where the cache is or would be.
    """
    plan = plan_prepare(name, data_root, cache_dir, max_res, split, **options)
    spec, cache, prefix, top = plan["spec"], plan["cache"], plan["prefix"], plan["top"]
    start = time.perf_counter()
    if dry_run:
        found = find_complete(cache, prefix, int(max_res))
        return {
            "dataset": None,
            "reused": found is not None,
            "seconds": 0.0,
            "spec": spec,
            "path": found or cache / f"{prefix}-r{top}",
        }
    for note in spec.notes:
        print(f"warning: {note}", file=sys.stderr)
    with file_lock(cache / f".{prefix}.lock"):
        found = find_complete(cache, prefix, int(max_res))
        reused = found is not None
        if found is None:
            found = cache / f"{prefix}-r{top}"
            if found.exists() or found.is_symlink():  # never build over it, never delete it
                what = "it is not a folder" if not found.is_dir() else f"it has no {MANIFEST}"
                raise damaged(found, what)
            _build(spec, found, top, plan["skip_small"], plan["identity"], verbose)
    ds = PreparedDataset(found, max_res=int(max_res))
    return {
        "dataset": ds,
        "reused": reused,
        "seconds": time.perf_counter() - start,
        "spec": spec,
        "path": found,
    }


def plan_prepare(
    name: str,
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    max_res: int = 32,
    split: str = "train",
    **options: Any,
) -> dict[str, Any]:
    """Resolve the source and the cache key without preparing anything."""
    allowed = {"count", "seed", "skip_small"}
    unknown = set(options) - allowed
    if unknown:
        raise UserError(
            f"unknown option(s) {sorted(unknown)} for prepare(); known: {sorted(allowed)}"
        )
    try:
        resolutions_up_to(int(max_res))
    except ValueError as exc:
        raise UserError(f"--max-res: {exc}") from exc
    skip_small = bool(options.pop("skip_small", False))
    source_opts = {k: v for k, v in options.items() if v is not None}
    cache = default_cache_dir(cache_dir)
    spec = resolve_source(
        name,
        None if data_root is None else os.fspath(data_root),
        split,
        source_opts,
        cache / "downloads",
    )
    unused = sorted(k for k in source_opts if k not in spec.options)
    if unused:
        raise UserError(
            f"option(s) {', '.join('--' + k for k in unused)} do not apply to "
            f"{spec.name!r} (only the stacked sets take --count/--seed)."
        )
    top = int(max_res)
    if spec.native_res is not None:
        if top > spec.native_res:
            raise UserError(
                f"data set {spec.name!r} is {spec.native_res}x{spec.native_res}; "
                f"use --max-res {spec.native_res} or less (got {top})."
            )
        top = spec.native_res  # always build the native size: every request sees the same pixels
    identity = {
        "name": spec.name,
        "options": spec.options,
        "split": spec.split,
        "fingerprint": spec.fingerprint,
        "skip_small": skip_small,
        "crop": spec.crop,
        "format_version": FORMAT_VERSION,
    }
    prefix = f"{slugify(spec.name)}-{spec.split}-{cache_key(identity)}"
    return {
        "spec": spec,
        "cache": cache,
        "prefix": prefix,
        "top": top,
        "identity": identity,
        "skip_small": skip_small,
    }


def _build(
    spec: SourceSpec, final: Path, top: int, skip_small: bool, identity: dict, verbose: bool
) -> None:
    partial = final.with_name(final.name + ".partial")
    try:
        if partial.exists():  # a previous run was interrupted: start that job again
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
    except OSError as exc:
        raise UserError(
            f"cannot write the data set cache in {final.parent} ({exc}); pass a "
            "writable --cache-dir or set GANBENCH_CACHE."
        ) from exc
    if not verbose:  # library use (a trainer's first request): say why this call takes a while
        print(
            f"preparing {spec.name} ({spec.split}) into {final} (first use) ...",
            file=sys.stderr,
            flush=True,
        )
    t0 = time.perf_counter()
    try:
        manifest = fill(spec, partial, top, skip_small, verbose)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    manifest.update(
        identity=identity,
        key=final.name,
        prepared_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        prepare_seconds=round(time.perf_counter() - t0, 3),
    )
    atomic_write_json(partial / MANIFEST, manifest)
    shutil.rmtree(partial / "work", ignore_errors=True)
    os.replace(partial, final)
