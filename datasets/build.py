"""Fill a partial cache folder from a source: decode, crop, resize, box-downsample, write.

Images are streamed: each one is decoded (a few threads: PIL releases the GIL),
converted to RGB (or grey), centre-cropped and resized once to the top
resolution with LANCZOS, then collected in chunks of at most 32 MB; each chunk
is written into every resolution's memmap, the lower ones by 2x2 box averaging
in float32 (ProGAN ``dataset_tool``). Memory stays at one chunk per resolution
whatever the data set size.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from datasets.cache import FORMAT_VERSION, LABELS_FILE, array_file
from datasets.imageops import (
    SmallImageError,
    box_downsample,
    quantize,
    resolutions_up_to,
    square_resize,
    to_mode,
)
from datasets.npy import NpyWriter
from datasets.sources.base import Chunk, Item, SourceSpec
from gancore.errors import UserError

BAD_FRACTION_LIMIT = (
    0.01  # more than 1% undecodable files fails the prepare (the data layer's rule)
)
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError)
_CHUNK_BYTES = 32 << 20


def _in_threads(
    items: Iterator[Item | Chunk], fn: Callable[[Item], np.ndarray], workers: int
) -> Iterator[tuple[Item | Chunk, Future | None]]:
    """Run ``fn`` on the Items in a few threads (PIL decodes and resizes without the GIL),
    yielding results in source order; at most ``2 * workers`` are in flight, so memory stays
    bounded. Chunks pass straight through, after the items queued before them."""
    pending: deque[tuple[Item | Chunk, Future | None]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare") as pool:
        try:
            for item in items:
                if isinstance(item, Chunk):
                    while pending:
                        yield pending.popleft()
                    yield item, None
                    continue
                pending.append((item, pool.submit(fn, item)))
                if len(pending) >= 2 * workers:
                    yield pending.popleft()
            while pending:
                yield pending.popleft()
        finally:
            for _, fut in pending:
                if fut is not None:
                    fut.cancel()


def fill(spec: SourceSpec, out: Path, top: int, skip_small: bool, verbose: bool) -> dict:
    res_list = resolutions_up_to(top)
    workdir = out / "work"
    workdir.mkdir()
    count_hint, items = spec.open(workdir)
    c = spec.channels
    _check_space(out, math.ceil(count_hint * spec.keep_fraction), res_list, c)
    workers = max(1, min(4, os.cpu_count() or 1))
    writers = {r: NpyWriter(out / array_file(r), count_hint, (r, r, c)) for r in res_list}
    labels: list[np.ndarray] = []
    skipped: list[dict[str, str]] = []
    bad = small = seen = 0
    chunk = max(1, min(1024, _CHUNK_BYTES // (top * top * c)))
    buf = np.empty((chunk, top, top, c), dtype=np.uint8)
    buf_labels: list[int] = []
    fill = 0
    progress = _Progress(count_hint, verbose)

    def flush(images: np.ndarray, labs: np.ndarray | None) -> None:
        level = images.astype(np.float32)
        for r in reversed(res_list):
            if r != top:
                level = box_downsample(level)
            writers[r].append(images if r == top else quantize(level))
        if labs is not None:
            labels.append(np.asarray(labs, dtype=np.int64))
        progress.update(len(images))

    def decode(item: Item) -> np.ndarray:
        img = item.load()
        img = img if isinstance(img, Image.Image) else Image.fromarray(np.squeeze(img))
        img = square_resize(
            to_mode(img, c), top, crop=spec.crop, allow_upscale=spec.allow_upscale, ident=item.ident
        )
        return np.asarray(img).reshape(top, top, c)

    for item, result in _in_threads(items, decode, workers):
        if isinstance(item, Chunk):
            imgs = item.images if item.images.ndim == 4 else item.images[..., None]
            if imgs.shape[1:] != (top, top, c):
                raise RuntimeError(
                    f"source {spec.kind} gave {imgs.shape[1:]}, expected {(top, top, c)}"
                )
            seen += len(imgs)
            flush(imgs, item.labels)
            continue
        seen += 1
        try:
            pixels = result.result()
        except SmallImageError as exc:
            if not skip_small:
                raise UserError(
                    f"data set {spec.name!r}: {exc}. Use a smaller --max-res, or "
                    "--skip-small to leave such images out."
                ) from exc
            small += 1
            skipped.append({"file": item.ident, "reason": "smaller than max_res"})
            continue
        except _DECODE_ERRORS as exc:
            bad += 1
            skipped.append({"file": item.ident, "reason": f"unreadable: {exc}"[:200]})
            print(f"warning: skipping unreadable image {item.ident}: {exc}", file=sys.stderr)
            if bad > BAD_FRACTION_LIMIT * count_hint:  # already over the limit: stop early
                _too_many_bad(spec, bad, count_hint, skipped, early=True)
            continue
        buf[fill] = pixels
        if item.label is not None:
            buf_labels.append(item.label)
        fill += 1
        if fill == chunk:
            flush(buf[:fill], np.array(buf_labels) if buf_labels else None)
            fill, buf_labels = 0, []
    if fill:
        flush(buf[:fill], np.array(buf_labels) if buf_labels else None)
    progress.close()

    kept = writers[top].count
    if seen and bad / seen > BAD_FRACTION_LIMIT:
        _too_many_bad(spec, bad, seen, skipped)
    if kept == 0:
        raise UserError(
            f"data set {spec.name!r}: no usable images in {spec.location} "
            f"({seen} found, {bad} unreadable, {small} too small)."
        )
    arrays = {}
    for r, w in writers.items():
        w.close()
        arrays[str(r)] = {"file": array_file(r), "shape": [kept, r, r, c], "sha256": w.sha256()}
    label_info: dict[str, Any] = {"present": False}
    if labels:
        lab = np.concatenate(labels)
        if len(lab) != kept:
            raise RuntimeError(f"{len(lab)} labels for {kept} images from source {spec.kind}")
        np.save(out / LABELS_FILE, lab)
        label_info = {
            "present": True,
            "file": LABELS_FILE,
            "num_classes": spec.num_classes,
            "names": spec.label_names,
            "meaning": spec.label_meaning,
            "sha256": hashlib.sha256(lab.tobytes()).hexdigest(),
        }
    return {
        "format_version": FORMAT_VERSION,
        "name": spec.name,
        "kind": spec.kind,
        "source": spec.location,
        "split": spec.split,
        "options": spec.options,
        "count": kept,
        "channels": c,
        "resolutions": res_list,
        "max_res": top,
        "arrays": arrays,
        "labels": label_info,
        "images_seen": seen,
        "skipped_count": len(skipped),
        "unreadable_count": bad,
        "too_small_count": small,
        "skipped": skipped,
        "notes": spec.notes,
        "filters": {
            "top": "PIL LANCZOS (BICUBIC when upscaling a tiny source)",
            "lower": "2x2 box average in float32, rounded per level",
        },
    }


def _check_space(out: Path, count: int, res_list: list[int], channels: int) -> None:
    """Refuse up front rather than die mid-way: a memmap write to a full disk is a SIGBUS."""
    need = count * channels * sum(r * r for r in res_list)
    free = shutil.disk_usage(out).free
    if need > free * 0.98:
        gb = 1024**3
        raise UserError(
            f"the cache needs about {need / gb:.1f} GB for {count} images up to "
            f"{res_list[-1]}x{res_list[-1]}, but {out.parent} has {free / gb:.1f} GB "
            "free; free some space or pass another --cache-dir."
        )


def _too_many_bad(
    spec: SourceSpec, bad: int, total: int, skipped: list[dict[str, str]], early: bool = False
) -> None:
    names = ", ".join([s["file"] for s in skipped if s["reason"].startswith("unreadable")][:20])
    so_far = " (stopped at the first ones over the limit)" if early else ""
    raise UserError(
        f"data set {spec.name!r}: {bad} of {total} image files are unreadable{so_far} "
        f"(more than {BAD_FRACTION_LIMIT:.0%}); first ones: {names}. "
        "Re-download or fix the source."
    )


class _Progress:
    """A tqdm bar when asked for (CLI); silent in library use and tests."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", desc="preparing", file=sys.stderr)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
