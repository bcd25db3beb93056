"""Image sources: where a domain's images come from (files on disk or the built-in renderer), read as RGB."""

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from lit_gan.data.synthetic import render_scene, scene_seed

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class ImageReadError(RuntimeError):
    """An image file that cannot be decoded; the message names the file."""


def list_images(folder: str | os.PathLike, key: str = "data.root") -> list[Path]:
    """Image files under `folder`, nested folders included, sorted by path.

    Args:
        folder: the folder to search.
        key: the config key the folder came from, named in errors.

    Raises:
        FileNotFoundError: if `folder` does not exist or holds no image file; the message names the folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist (from {key}); create it or fix {key}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())
    if not files:
        raise FileNotFoundError(
            f"image folder {folder} holds no image file (from {key}); expected files ending in "
            f"{', '.join(IMG_EXTENSIONS)}, possibly in subfolders"
        )
    return files


def read_rgb(path: Path) -> Image.Image:
    """Decode `path` as an RGB image, EXIF orientation applied.

    Raises:
        ImageReadError: naming the file, if it cannot be decoded.
    """
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}. Remove or replace this file.") from err


class FileImages(Sequence):
    """A domain stored as image files."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Image.Image:
        return read_rgb(self.paths[index])

    def name(self, index: int) -> str:
        return str(self.paths[index])


class SyntheticImages(Sequence):
    """A domain of the built-in `synthetic` dataset, rendered on the fly (deterministic, no files).

    Args:
        seed: dataset seed; together with `split` and `domain` it fixes every image.
        split: "train" or "test" (disjoint scenes).
        domain: "A" (photo-like scenes) or "B" (the same kind of scenes as flat cartoons).
        size: rendered side length in pixels.
        length: number of images.
    """

    STYLE = {"A": "photo", "B": "cartoon"}

    def __init__(self, seed: int, split: str, domain: str, size: int, length: int) -> None:
        if length < 1:
            raise ValueError(f"synthetic dataset size must be >= 1, got {length}")
        self.seed, self.split, self.domain, self.size, self.length = seed, split, domain, size, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Image.Image:
        if not 0 <= index < self.length:
            raise IndexError(index)
        seed = scene_seed(self.seed, f"{self.split}{self.domain}", index)
        return render_scene(seed, self.size, self.STYLE[self.domain])

    def name(self, index: int) -> str:
        return f"synthetic/{self.split}{self.domain}/{index:05d}"
