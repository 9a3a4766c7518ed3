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


@dataclass
class Pre:
    text: str


@dataclass
class Image:
    path: Path
    caption: str


@dataclass
class ImageRow:
    """Images shown side by side (sample grids of every model at the same latents)."""

    images: list[Image]
    title: str = ""


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
        out: list[Image] = []
        for b in self.blocks:
            if isinstance(b, Image):
                out.append(b)
            elif isinstance(b, ImageRow):
                out.extend(b.images)
        return out
