"""Pixel operations used while preparing a data set.

The two filters follow the ProGAN paper's ``dataset_tool.py`` (Karras et al. 2018):
the highest resolution is made from the source once with a high-quality filter
(PIL LANCZOS when shrinking, BICUBIC when a tiny source such as 8x8 digits must
grow), and every lower resolution is the 2x2 box average of the one above,
computed in float32 and rounded only when stored, so rounding errors do not
accumulate from level to level (the official tool keeps the float image too).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Modes PIL can convert straight to RGB; "P" (palette), "LA"/"RGBA" (alpha), "CMYK",
# "I;16" (16-bit grey) and friends are all normalised here.
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class SmallImageError(ValueError):
    """The source image is smaller than the requested resolution."""


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Grey/RGBA/palette/CMYK/16-bit -> RGB (channels=3) or L (channels=1).

    Transparent pixels are composited on black (what a viewer shows for
    ``RGBA`` with zero alpha is undefined; black is the common convention and
    keeps the result deterministic).
    """
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(base, rgba)
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        # 16-bit grey uses the full 0..65535 range; 32-bit "I"/"F" have no fixed range, so
        # they are read as 16-bit when they exceed 255 and as 8-bit otherwise.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(np.rint(arr * 255.0 / top), 0, 255).astype(np.uint8), "L")
    target = "RGB" if channels == 3 else "L"
    return img if img.mode == target else img.convert(target)


def centre_crop_box(width: int, height: int, size: int | None = None) -> tuple[int, int, int, int]:
    """Box of the centred square of side ``size`` (default: the short side)."""
    side = min(width, height) if size is None else size
    left = (width - side) // 2
    top = (height - side) // 2
    return left, top, left + side, top + side


def square_resize(
    img: Image.Image,
    res: int,
    crop: int | None = None,
    allow_upscale: bool = False,
    ident: str = "",
) -> Image.Image:
    """Centre-crop to a square (``crop`` pixels, default the short side) and resize to ``res``.

    Raises :class:`SmallImageError` when the square is smaller than ``res`` and
    upscaling is not allowed: inventing pixels would silently change the data set.
    """
    w, h = img.size
    if crop is not None and min(w, h) < crop:
        raise SmallImageError(f"{ident or 'image'} is {w}x{h}, smaller than the {crop}x{crop} crop")
    if w != h or crop is not None:
        img = img.crop(centre_crop_box(w, h, crop))
    side = img.size[0]
    if side == res:
        return img
    if side < res:
        if not allow_upscale:
            raise SmallImageError(
                f"{ident or 'image'} is {w}x{h}; its square crop ({side}x{side}) is smaller than "
                f"the requested {res}x{res}"
            )
        return img.resize((res, res), Image.BICUBIC)
    return img.resize((res, res), Image.LANCZOS)


def box_downsample(batch: np.ndarray) -> np.ndarray:
    """2x2 box average of float NHWC images (ProGAN ``dataset_tool``: mean of the 4 pixels)."""
    return (
        batch[:, 0::2, 0::2] + batch[:, 0::2, 1::2] + batch[:, 1::2, 0::2] + batch[:, 1::2, 1::2]
    ) * np.float32(0.25)


def quantize(batch: np.ndarray) -> np.ndarray:
    """Float [0, 255] -> uint8 with rounding, as the official tool stores each level."""
    return np.clip(np.rint(batch), 0, 255).astype(np.uint8)


def resolutions_up_to(max_res: int) -> list[int]:
    """Powers of two 4, 8, ..., max_res; a clear ValueError for anything else."""
    if max_res < 4 or max_res & (max_res - 1):
        raise ValueError(f"max_res must be a power of two >= 4, got {max_res}")
    return [2**k for k in range(2, max_res.bit_length())]
