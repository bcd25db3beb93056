"""Image files, read as 8-bit RGB: finding them in a folder, decoding them (EXIF orientation applied) with errors
that name the file, and converting any decoded mode (grayscale, transparency, palettes, 16-bit, CMYK) to RGB.

Plain PIL and numpy: the data module, the perceptual losses (style images) and the style bank all read images here.
"""

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
JUNK_FILES = ("thumbs.db", "desktop.ini")  # written by file browsers; never worth mentioning


class ImageReadError(RuntimeError):
    """An image file that cannot be decoded; the message names the file."""


def find_files(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """(image files, other files) under `folder`, nested folders included, each sorted by path.

    Hidden files and folders (names starting with ".", such as macOS `._*.jpg` metadata files or
    `.ipynb_checkpoints`) and file-browser junk (Thumbs.db, desktop.ini) are left out of both lists.
    """
    folder = Path(folder)
    images, others = [], []
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts) or not path.is_file():
            continue
        if path.suffix.lower() in IMG_EXTENSIONS:
            images.append(path)
        elif path.name.lower() not in JUNK_FILES:
            others.append(path)
    return images, others


def read_image(path: str | os.PathLike) -> Image.Image:
    """Decode `path` completely as 8-bit RGB (see `to_rgb`), EXIF orientation applied; PIL's errors pass through."""
    with Image.open(path) as img:
        img.load()
        return to_rgb(ImageOps.exif_transpose(img))


def read_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode `path` as an RGB image, EXIF orientation applied.

    Raises:
        ImageReadError: naming the file, if it cannot be decoded.
    """
    try:
        return read_image(path)
    except Exception as err:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError, ...
        problem = read_problem(path, err)
        raise ImageReadError(f"cannot read image {path}: {problem}. Remove or replace this file.") from err


def read_problem(path: str | os.PathLike, err: Exception) -> str:
    """A short reason why `path` could not be decoded, without the path itself."""
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        return "empty file (0 bytes)"
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    message = message.replace(f" '{path}'", "").replace(f" {path}", "").replace(str(path), "").strip()
    if message.startswith("cannot identify image file"):
        return "not an image PIL can decode (cannot identify image file)"
    return message if len(message) <= 100 else message[:97] + "..."


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
