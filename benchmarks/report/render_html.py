"""Self-contained HTML rendering: one file, images as base64 data URIs, no external files."""

from __future__ import annotations

import base64
import html
import mimetypes
import re
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

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #333; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: .3em 0; }
td.best { font-weight: bold; background: #e4f5e4; }
tr.floor td { background: #f3f3fb; font-style: italic; }
tr.published td { background: #fbf7ea; font-style: italic; }
tr.failed td { background: #fbecec; }
ul.notes { font-size: 12px; color: #555; margin-top: 0; }
div.scroll { overflow-x: auto; max-width: 100%; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: 12px; }
figure { display: inline-block; margin: .5em; vertical-align: top; text-align: center; }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { font-size: 12px; color: #444; }
.row { display: flex; flex-wrap: wrap; gap: .5em; }
.row figure { flex: 1 1 200px; max-width: 320px; }
.row figure img { width: 100%; }
nav { font-size: 13px; }
tr.effect td { background: #f4f8fc; }
/* The first screen: the findings, then every model's samples, then the headline plot. */
h1 { margin: .2em 0 .3em; }
#at-a-glance h2 { margin-top: .8em; }
#at-a-glance ul.findings { padding-left: 1.2em; margin: .4em 0 .6em; font-size: 15px; }
#at-a-glance ul.findings li { margin: .15em 0; }
#at-a-glance h4 { margin: .6em 0 .2em; font-size: 14px; }
/* Tiles of at most ~180 px: two framework rows of grids fit the first screen under the text. */
.panel { display: grid; gap: 4px 10px; margin: .3em 0; max-width: 860px; }
.panel figure { margin: 0; display: block; text-align: left; }
/* Trainers write grids of >= 512 px; shrunk to a tile, smooth scaling avoids moire. */
.panel figure img { width: 100%; height: auto; image-rendering: auto; }
.panel figure img.pix { image-rendering: pixelated; }  /* a small grid blown up: keep pixels */
.panel .blank { visibility: hidden; }
.panel .missing { aspect-ratio: 1; border: 1px dashed #bbb; display: flex; align-items: center;
                  justify-content: center; color: #777; font-size: 12px; }
figure.plot img { max-width: 100%; width: 900px; image-rendering: auto; border: none; }
@media (max-width: 700px) {
  body { margin: 1em auto; }
  h1 { font-size: 1.5em; }
  #at-a-glance ul.findings { font-size: 14px; }
  .panel { grid-template-columns: repeat(2, minmax(0, 1fr)) !important; }
  .panel .blank { display: none; }
}
"""


def data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(str(path))[0] or "image/png"
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _inline(text: str) -> str:
    """Escape, then allow the markdown the builder uses: `code`, **bold**, *italic*.

    Code spans are cut out first, so a glob like `*.err` is never read as emphasis.
    """
    out = []
    for i, part in enumerate(text.split("`")):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        part = html.escape(part)
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        out.append(re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", part))
    return "".join(out)


def table_html(t: Table) -> str:
    # Wide tables (the diversity table has 12 columns) scroll inside their own box instead of
    # spilling past the page (seen in a headless-chromium screenshot of a real report).
    parts = [
        f'<div class="scroll"><table id="{_slug(t.title)}"><caption>{html.escape(t.title)}</caption><thead><tr>'
    ]
    parts += [f"<th>{html.escape(c)}</th>" for c in t.columns]
    parts.append("</tr></thead><tbody>")
    for row in t.rows:
        parts.append(f'<tr class="{row.kind}"><td>{html.escape(row.label)}</td>')
        for c in row.cells:
            cls = ' class="best"' if c.best else ""
            parts.append(f"<td{cls}>{html.escape(c.text)}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table></div>")
    if t.notes:
        parts.append(
            '<ul class="notes">' + "".join(f"<li>{_inline(n)}</li>" for n in t.notes) + "</ul>"
        )
    return "".join(parts)


def _caption(text: str) -> str:
    return "<br>".join(html.escape(line) for line in text.split("\n"))


def _figure(img: Image, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    if img.path is None:
        return f'<figure{attr}><div class="missing">{_caption(img.caption)}</div></figure>'
    alt = html.escape(img.caption.replace("\n", " "))
    pix = ' class="pix"' if _small(img.path) else ""
    return (
        f'<figure{attr}><img src="{data_uri(img.path)}" alt="{alt}"{pix}>'
        f"<figcaption>{_caption(img.caption)}</figcaption></figure>"
    )


def _small(path: Path, below: int = 256) -> bool:
    """Is the image narrower than a tile? Then the browser enlarges it, and sharp pixels
    read better than a blur; larger grids are shrunk, where smooth scaling avoids moire."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as im:
            return im.size[0] < below
    except OSError:
        return False


def _panel(b: GridPanel) -> str:
    title = f"<h4>{html.escape(b.title)}</h4>" if b.title else ""
    cells = "".join(
        '<figure class="blank"></figure>' if i is None else _figure(i) for i in b.images
    )
    style = f"grid-template-columns: repeat({b.columns}, minmax(0, 1fr))"
    return f'{title}<div class="panel" style="{style}">{cells}</div>'


def blocks_html(blocks: list[object], toc: list[str]) -> list[str]:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Section):
            toc.append(f'<a href="#{b.anchor}">{html.escape(b.title)}</a>')
            inner = "\n".join(blocks_html(b.blocks, toc))
            body.append(
                f'<section id="{b.anchor}"><h2>{html.escape(b.title)}</h2>\n{inner}</section>'
            )
        elif isinstance(b, Heading):
            anchor = b.anchor or _slug(b.text)
            if b.level == 2:
                toc.append(f'<a href="#{anchor}">{html.escape(b.text)}</a>')
            body.append(f'<h{b.level} id="{anchor}">{html.escape(b.text)}</h{b.level}>')
        elif isinstance(b, Para):
            body.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            cls = f' class="{b.css_class}"' if b.css_class else ""
            body.append(f"<ul{cls}>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Pre):
            body.append(f"<pre>{html.escape(b.text)}</pre>")
        elif isinstance(b, TableBlock):
            body.append(table_html(b.table))
        elif isinstance(b, Image) and b.path is not None:
            body.append(_figure(b, "plot" if b.plot else ""))
        elif isinstance(b, GridPanel):
            body.append(_panel(b))
        elif isinstance(b, ImageRow):
            title = f"<h4>{html.escape(b.title)}</h4>" if b.title else ""
            body.append(
                title + '<div class="row">' + "".join(_figure(i) for i in b.images) + "</div>"
            )
    return body


def render(doc: Document) -> str:
    toc: list[str] = []
    body = blocks_html(doc.blocks, toc)
    nav = "<nav>" + " · ".join(toc) + "</nav>" if toc else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(doc.title)}</h1>{nav}\n" + "\n".join(body) + "\n</body></html>\n"
    )
