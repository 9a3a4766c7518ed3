"""Image grids and conversions between model outputs and uint8 pixels."""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

from gancore.io import atomic_path


def to_uint8(images: np.ndarray, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """Map float images in [lo, hi] to uint8 [0, 255] with rounding and clipping.

    ProGAN's generator has a linear output (no tanh), so values outside the range
    are expected and are clipped here, as the official ``convert_to_pil_image`` does.
    """
    x = (np.asarray(images, dtype=np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def nchw_to_nhwc(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(images, (0, 2, 3, 1)))


def make_grid(
    images: np.ndarray, ncol: int | None = None, pad: int = 1, fill: int = 0
) -> np.ndarray:
    """Tile uint8 NHWC images into one HWC image, ``ncol`` per row (default: square)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"make_grid expects uint8 NHWC images, got {images.dtype} {images.shape}")
    n, h, w, c = images.shape
    ncol = ncol or max(1, math.ceil(math.sqrt(n)))
    nrow = math.ceil(n / ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), fill, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def save_image(
    path: str | os.PathLike, image: np.ndarray, upscale_to: int = 0, caption: str | None = None
) -> None:
    """Write an HWC uint8 image as PNG atomically.

    ``upscale_to``: nearest-neighbour upscale by the smallest integer factor that makes the
    longer side at least this many pixels (pixels stay sharp and countable). ``caption``: a
    line of text in a strip above the image.
    """
    img = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).convert("RGB")
    if upscale_to and max(img.size) < upscale_to:
        f = math.ceil(upscale_to / max(img.size))
        img = img.resize((img.size[0] * f, img.size[1] * f), Image.NEAREST)
    if caption:
        img = _with_caption(img, caption)
    with atomic_path(path, suffix=".png") as tmp:
        img.save(tmp, format="PNG")


def _with_caption(img: Image.Image, text: str) -> Image.Image:
    from PIL import ImageDraw, ImageFont

    size = max(12, img.size[0] // 40)
    font = ImageFont.load_default(size=size)
    strip = size + size // 2 + 4
    out = Image.new("RGB", (img.size[0], img.size[1] + strip), (255, 255, 255))
    out.paste(img, (0, strip))
    ImageDraw.Draw(out).text((4, 2), text, fill=(0, 0, 0), font=font)
    return out


def save_grid(
    path: str | os.PathLike,
    images: np.ndarray,
    ncol: int | None = None,
    upscale_to: int = 512,
    caption: str | None = None,
) -> None:
    """Tile ``images`` (uint8 NHWC) into a grid at least ``upscale_to`` px wide, with a caption."""
    save_image(path, make_grid(images, ncol), upscale_to=upscale_to, caption=caption)
