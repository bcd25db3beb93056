"""Conversion of any decoded PIL image to 8-bit RGB: grayscale, transparency, palettes, 16-bit and CMYK images."""

import numpy as np
from PIL import Image

ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # single-channel integer or float of over 8 bits
BACKGROUND = (255, 255, 255)  # transparent pixels show this colour, as image viewers and browsers do


def to_rgb(img: Image.Image) -> Image.Image:
    """`img` as 8-bit RGB.

    Grayscale (1, L) is repeated over three channels; palette images take their palette colours; transparent
    images (alpha channel, or a palette or colour key with transparency) are composited over white, not black;
    16-bit and 32-bit grayscale is scaled to 8 bits by its range (`to_8bit`) instead of saturating as PIL's
    plain `convert("RGB")` does; CMYK and the other colour modes PIL knows are converted by PIL.

    Raises:
        ValueError: for a mode PIL cannot convert to RGB.
    """
    if img.mode == "RGB":
        return img
    if img.mode in WIDE_MODES:
        img = to_8bit(img)
    if img.mode in ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def to_8bit(img: Image.Image) -> Image.Image:
    """A single-channel image of over 8 bits (I;16*, I, F) as mode L.

    16-bit modes map 0..65535 to 0..255 (divided by 257). 32-bit integer and float images whose values lie in
    0..65535 are taken as 16-bit data (older PIL versions open 16-bit PNGs as mode I); float images within 0..1
    are scaled by 255; anything else is stretched from its own minimum and maximum to 0..255.
    """
    pixels = np.asarray(img).astype(np.float64)  # (H, W)
    low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
    if img.mode == "F" and 0 <= low and high <= 1:
        scaled = pixels * 255
    elif img.mode.startswith("I;16") or (0 <= low and high <= 65535):
        scaled = pixels / 257
    else:
        scaled = (pixels - low) * (255 / max(high - low, 1e-12))
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")
