"""A tiny document model so the markdown and HTML reports say exactly the same things.

``build.py`` assembles a list of blocks; ``render_md.py`` and ``render_html.py``
turn it into text. Images are file paths here; each renderer decides how to
reference them (relative copies for markdown, base64 data URIs for HTML).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.report.tables import Table


@dataclass
class Heading:
    text: str
    level: int = 2
    anchor: str = ""


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]
    css_class: str = ""  # HTML only: "findings" styles the first screen's sentences


@dataclass
class Pre:
    text: str


@dataclass
class Image:
    path: Path | None  # None: a placeholder that says why there is no image (its caption)
    caption: str  # may hold line breaks ("\n"): model, then its headline numbers
    plot: bool = False  # a figure (smooth scaling, wide) rather than a grid of samples (pixelated)


@dataclass
class ImageRow:
    """Images shown side by side (sample grids of every model at the same latents)."""

    images: list[Image]
    title: str = ""


@dataclass
class GridPanel:
    """Images in a fixed number of columns, row by row (``None`` leaves a cell empty): the
    first screen's real images and every model's final samples, one framework per row."""

    images: list[Image | None]
    columns: int
    title: str = ""


@dataclass
class Section:
    """Blocks kept together under one heading: the HTML ``<section id=anchor>``."""

    title: str
    anchor: str
    blocks: list[object] = field(default_factory=list)


@dataclass
class TableBlock:
    table: Table


@dataclass
class Document:
    title: str
    blocks: list[object] = field(default_factory=list)

    def add(self, *blocks: object) -> None:
        self.blocks.extend(blocks)

    def images(self) -> list[Image]:
        return _images(self.blocks)


def _images(blocks: list[object]) -> list[Image]:
    out: list[Image] = []
    for b in blocks:
        if isinstance(b, Image) and b.path is not None:
            out.append(b)
        elif isinstance(b, ImageRow | GridPanel):
            out.extend(i for i in b.images if i is not None and i.path is not None)
        elif isinstance(b, Section):
            out.extend(_images(b.blocks))
    return out
