"""Markdown rendering of a report document (GitHub-flavoured tables, relative image paths)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from benchmarks.report.document import (
    Bullets,
    Document,
    GridPanel,
    Heading,
    Image,
    ImageRow,
    Para,
    Pre,
    Section,
    TableBlock,
)
from benchmarks.report.tables import Table


def _esc(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table_md(t: Table) -> str:
    lines = [
        f"**{t.title}**",
        "",
        "| " + " | ".join(_esc(c) for c in t.columns) + " |",
        "|" + "|".join(" --- " for _ in t.columns) + "|",
    ]
    for row in t.rows:
        cells = [_esc(row.label)]
        for c in row.cells:
            cells.append(f"**{_esc(c.text)}**" if c.best else _esc(c.text))
        if row.kind in ("floor", "published", "effect"):
            cells[0] = f"*{cells[0]}*"
        lines.append("| " + " | ".join(cells) + " |")
    if not t.rows:
        lines.append("| " + " | ".join(["—"] * len(t.columns)) + " |")
    lines.append("")
    lines += [f"- {_esc(n)}" for n in t.notes]
    return "\n".join(lines)


def _image_ref(img: Image, out_dir: Path) -> str:
    """Copy images from run folders into ``images/`` so the report folder stands alone."""
    src = Path(img.path)
    try:
        rel = src.resolve().relative_to(out_dir.resolve())
        return rel.as_posix()
    except ValueError:
        pass
    # The last four path parts (…/<run>/samples/final.png) name a file uniquely per profile.
    dest = out_dir / "images" / "__".join(src.resolve().parts[-4:])
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return os.path.relpath(dest, out_dir).replace(os.sep, "/")


def _cell(img: Image | None, out_dir: Path) -> str:
    if img is None:
        return " "
    cap = "<br>".join(_esc(line) for line in img.caption.split("\n"))
    if img.path is None:
        return cap
    return f"![{_esc(img.caption)}]({_image_ref(img, out_dir)})<br>{cap}"


def blocks_md(blocks: list[object], out_dir: Path) -> list[str]:
    parts: list[str] = []
    for b in blocks:
        if isinstance(b, Section):
            parts += [f"## {b.title}", ""] + blocks_md(b.blocks, out_dir)
        elif isinstance(b, Heading):
            parts += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            parts += [b.text, ""]
        elif isinstance(b, Bullets):
            parts += [f"- {i}" for i in b.items] + [""]
        elif isinstance(b, Pre):
            parts += ["```", b.text, "```", ""]
        elif isinstance(b, TableBlock):
            parts += [table_md(b.table), ""]
        elif isinstance(b, Image) and b.path is not None:
            cap = b.caption.replace("\n", " ")
            parts += [f"![{_esc(cap)}]({_image_ref(b, out_dir)})", "", f"*{cap}*", ""]
        elif isinstance(b, GridPanel):
            if b.title:
                parts += [f"**{b.title}**", ""]
            rows = [b.images[i : i + b.columns] for i in range(0, len(b.images), b.columns)]
            parts.append("|" + " |" * b.columns)  # an empty header row: markdown tables need one
            parts.append("|" + " --- |" * b.columns)
            for row in rows:
                cells = [_cell(i, out_dir) for i in row] + [" "] * (b.columns - len(row))
                parts.append("| " + " | ".join(cells) + " |")
            parts.append("")
        elif isinstance(b, ImageRow):
            if b.title:
                parts += [f"**{b.title}**", ""]
            head = "| " + " | ".join(_esc(i.caption) for i in b.images) + " |"
            sep = "|" + "|".join(" --- " for _ in b.images) + "|"
            imgs = (
                "| "
                + " | ".join(f"![{_esc(i.caption)}]({_image_ref(i, out_dir)})" for i in b.images)
                + " |"
            )
            parts += [head, sep, imgs, ""]
    return parts


def render(doc: Document, out_dir: Path) -> str:
    parts = [f"# {doc.title}", ""] + blocks_md(doc.blocks, out_dir)
    return "\n".join(parts).rstrip() + "\n"
