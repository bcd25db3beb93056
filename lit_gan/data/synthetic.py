"""The built-in `synthetic` dataset: procedurally rendered outdoor scenes in two styles, with no download.

"photo" (domain A): smooth gradients, soft shading and mild sensor-like noise. "cartoon" (domain B): the same kind
of scene with flat colours from a small bright palette and dark outlines around every region. Two more styles for
multi-style models (data mode "domains"): "sketch", graphite lines and diagonal hatching (denser where the scene is
darker) on warm paper; and "night", the photo darkened and shifted to blue under a starry sky, with a pale moon in
place of the sun and lit windows. A scene's layout depends on its seed alone, so the styles of one seed show the same
scene.
"""

import hashlib
from typing import Literal

import numpy as np
from PIL import Image, ImageFilter

STYLES = ("photo", "cartoon", "sketch", "night")
RENDER_VERSION = 1  # bump when the rendered pixels change: it keys caches of features of these images

# Flat cartoon palette: sky, ground, hill, sun, object colours.
_PALETTE = np.array(
    [
        [90, 170, 250],
        [120, 200, 60],
        [60, 150, 70],
        [255, 220, 40],
        [230, 60, 50],
        [250, 150, 30],
        [150, 90, 200],
        [240, 240, 240],
        [140, 90, 50],
    ],
    dtype=np.float32,
)


def scene_seed(base_seed: int, domain: str, index: int) -> int:
    """A stable 63-bit seed for image `index` of `domain`, independent of Python's hash randomisation."""
    digest = hashlib.sha256(f"{base_seed}/{domain}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _layout(rng: np.random.Generator) -> dict:
    """Random scene description in unit coordinates (independent of size and style)."""
    return {
        "horizon": rng.uniform(0.45, 0.7),
        "hills": [
            (rng.uniform(0, 1), rng.uniform(0.15, 0.4), rng.uniform(0.08, 0.25)) for _ in range(rng.integers(1, 4))
        ],
        "sun": (rng.uniform(0.15, 0.85), rng.uniform(0.1, 0.3), rng.uniform(0.06, 0.11)),
        "objects": [
            (
                int(rng.integers(0, 3)),
                rng.uniform(0.05, 0.95),
                rng.uniform(0.0, 1.0),
                rng.uniform(0.07, 0.16),
                int(rng.integers(4, len(_PALETTE))),
            )
            for _ in range(rng.integers(2, 5))
        ],
        "sky_tint": rng.uniform(-25, 25, 3),
        "ground_tint": rng.uniform(-25, 25, 3),
    }


def _label_map(layout: dict, size: int) -> np.ndarray:
    """(size, size) region labels: 0 sky, 1 ground, 2 hills, 3 sun, 4.. objects (palette index)."""
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size
    labels = np.where(y < layout["horizon"], 0, 1).astype(np.int16)
    cx, cy, r = layout["sun"]
    labels[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = 3
    for hx, hw, hh in layout["hills"]:
        top = layout["horizon"] - hh * np.clip(1 - ((x - hx) / hw) ** 2, 0, None)
        labels[(y >= top) & (y < layout["horizon"] + 0.02) & (np.abs(x - hx) < hw)] = 2
    for kind, ox, depth, s, colour in layout["objects"]:
        oy = layout["horizon"] + depth * (1 - layout["horizon"]) * 0.8 + 0.05
        s = s * (0.6 + 0.6 * depth)
        if kind == 0:  # tree: trunk and round crown
            labels[(np.abs(x - ox) < s * 0.12) & (y < oy) & (y > oy - s)] = 8
            labels[(x - ox) ** 2 + (y - (oy - s)) ** 2 < (s * 0.5) ** 2] = 2 if colour % 2 else colour
        elif kind == 1:  # house: box and triangular roof
            labels[(np.abs(x - ox) < s * 0.5) & (y < oy) & (y > oy - s * 0.8)] = 7
            labels[(y <= oy - s * 0.8) & (y > oy - s * 1.3) & (np.abs(x - ox) < (y - (oy - s * 1.3)) * 1.1)] = colour
        else:  # rock / bush: ellipse
            labels[((x - ox) / (s * 0.7)) ** 2 + ((y - oy + s * 0.3) / (s * 0.35)) ** 2 < 1] = colour
    return labels


def _photo(labels: np.ndarray, layout: dict, rng: np.random.Generator) -> np.ndarray:
    size = labels.shape[0]
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size
    base = _PALETTE[labels] * 0.75 + 30  # muted, photo-like colours
    base[labels == 0] += layout["sky_tint"]
    base[labels == 1] += layout["ground_tint"]
    # Vertical light gradient, soft shading across x, and darker edges of the frame (vignetting).
    shade = 1.15 - 0.45 * y[..., None] + 0.12 * np.sin(6.0 * x + 3.0 * y)[..., None]
    shade *= 1 - 0.25 * ((x - 0.5) ** 2 + (y - 0.5) ** 2)[..., None]
    img = base * shade
    img = np.asarray(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(size / 64)))
    noise = rng.normal(0, 7, img.shape)  # sensor-like noise
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _cartoon(labels: np.ndarray) -> np.ndarray:
    img = _PALETTE[labels].astype(np.uint8).copy()
    img[_edges(labels, max(1, labels.shape[0] // 64))] = (20, 20, 25)  # thicker outlines at larger sizes
    return img


def _edges(labels: np.ndarray, width: int) -> np.ndarray:
    """(size, size) bool: the pixels on a boundary between regions, thickened to about `width` pixels."""
    edges = np.zeros(labels.shape, bool)
    edges[:-1] |= labels[:-1] != labels[1:]
    edges[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    for _ in range(width - 1):
        edges[1:] |= edges[:-1]
        edges[:, 1:] |= edges[:, :-1]
    return edges


def _sketch(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Graphite on paper: region outlines, and diagonal hatching whose density follows each region's darkness."""
    size = labels.shape[0]
    y, x = np.mgrid[0:size, 0:size]
    darkness = 1 - _PALETTE[labels].mean(-1) / 255  # (size, size) in [0, 1]
    period = max(3, size // 16)
    hatch = ((x + y) % period) < np.round(darkness * period * 0.8)  # wider strokes where darker
    cross = ((x - y) % period) < np.round((darkness - 0.5).clip(0) * period)  # cross-hatching in the darkest
    ink = np.where(_edges(labels, max(1, size // 96)), 0.85, 0.0)
    ink = np.maximum(ink, 0.45 * (hatch | cross))
    ink *= rng.uniform(0.8, 1.0, labels.shape)  # uneven pencil pressure
    paper = np.array([246, 240, 228], np.float32) + rng.normal(0, 3, (size, size, 1))
    graphite = np.array([55, 55, 60], np.float32)
    img = paper * (1 - ink[..., None]) + graphite * ink[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _night(labels: np.ndarray, layout: dict, rng: np.random.Generator) -> np.ndarray:
    """The photo at night: dark and blue, a gradient sky with stars, the sun a pale moon, the houses' windows lit."""
    size = labels.shape[0]
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size
    img = _photo(labels, layout, rng).astype(np.float32) * np.array([0.25, 0.3, 0.5]) + np.array([5, 8, 25])
    sky = labels == 0
    top, bottom = np.array([5, 8, 30], np.float32), np.array([30, 40, 85], np.float32)
    img[sky] = (top + (bottom - top) * (y[..., None] / layout["horizon"]).clip(0, 1))[sky]
    stars = sky & (rng.random(labels.shape) < 0.004)
    img[stars] = 235
    img[labels == 3] = (235, 235, 210)  # the moon
    windows = (labels == 7) & (np.sin(x * size * 0.9) > 0.3) & (np.sin(y * size * 0.9) > 0.3)
    img[windows] = (255, 210, 90)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_scene(
    seed: int, size: int = 64, style: Literal["photo", "cartoon", "sketch", "night"] = "photo"
) -> Image.Image:
    """One RGB scene, size x size, fully determined by (seed, size, style).

    The layout depends on `seed` alone, so `render_scene(s, n, "photo")` and `render_scene(s, n, "cartoon")` show
    the same scene in two styles.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; valid styles: {', '.join(STYLES)}")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    size = int(size)
    rng = np.random.default_rng(seed)
    layout = _layout(rng)
    labels = _label_map(layout, size)
    render = {
        "photo": lambda: _photo(labels, layout, rng),
        "cartoon": lambda: _cartoon(labels),
        "sketch": lambda: _sketch(labels, rng),
        "night": lambda: _night(labels, layout, rng),
    }
    pixels = render[style]()
    return Image.fromarray(pixels, "RGB")
