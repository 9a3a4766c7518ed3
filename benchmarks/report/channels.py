"""Stacked digits, one colour channel at a time: can a person read the digits?

A Stacked MNIST (or stacked-digits) image is three digits, one per colour channel, drawn on
top of each other; the RGB overlay is hard to read even for the real images. Splitting each
final sample grid into its red, green and blue planes shows every digit on its own, in grey,
so a reader can judge whether a model draws digits a person can read. The planes come from
the grids the trainers wrote (``samples/final.png``, ``samples/reals.png``); nothing is
re-generated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.report.document import GridPanel, Image
from benchmarks.report.first_screen import model_order
from benchmarks.report.headline import frameworks, seeds

STACKED = ("stacked-mnist", "stacked-digits")
CHANNELS = ("red", "green", "blue")


def _planes(src: Path, out_dir: Path, stem: str) -> list[Path] | None:
    """The grid's three channels as grey PNGs under ``out_dir``; None if it cannot be read."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(src) as im:
            planes = im.convert("RGB").split()
    except (OSError, ValueError):
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, plane in zip(CHANNELS, planes):
        path = out_dir / f"{stem}__{name}.png"
        plane.save(path)
        paths.append(path)
    return paths


def channel_panel(results: dict[str, Any], out_dir: Path) -> GridPanel | None:
    """Rows: red, green, blue; columns: the real images, then every model's final grid (the
    first framework and seed). None when the data set is not stacked or nothing is drawn."""
    prof = results["profile"]
    if prof["dataset"] not in STACKED:
        return None
    fw, seed = frameworks(results)[0], seeds(results)[0]
    runs = {
        r["model"]: r
        for r in results["runs"]
        if r["framework"] == fw and r["seed"] == seed and r.get("final_grid")
    }
    reals = next((r["reals_grid"] for r in results["runs"] if r.get("reals_grid")), None)
    columns: list[tuple[str, list[Path] | None]] = []
    if reals:
        columns.append(("Real images", _planes(Path(reals), out_dir, "reals")))
    for model in model_order(results):
        run = runs.get(model)
        if run is not None:
            planes = _planes(Path(run["final_grid"]["path"]), out_dir, run["name"])
            columns.append((f"{run['label']} · {run['framework_label']}", planes))
    if not any(planes for _, planes in columns):
        return None
    images: list[Image | None] = []
    for c, channel in enumerate(CHANNELS):
        for label, planes in columns:
            caption = f"{label}\n{channel} channel"
            images.append(Image(planes[c], caption) if planes else Image(None, caption))
    return GridPanel(
        images,
        columns=len(columns),
        title=f"Each colour channel of the final grids in grey, one digit per cell (seed {seed}; "
        "the same latents as the grids above)",
    )
