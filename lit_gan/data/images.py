"""Image sources: where a domain's images come from (files on disk or the built-in renderer), read as RGB."""

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

from lit_gan.data.synthetic import RENDER_VERSION, render_scene, scene_seed
from lit_gan.image_io import IMG_EXTENSIONS, find_files, read_rgb


def list_images(folder: str | os.PathLike, key: str = "data.root") -> list[Path]:
    """Image files under `folder` (see `find_files`), sorted by path.

    Args:
        folder: the folder to search.
        key: the config key the folder came from, named in errors.

    Raises:
        FileNotFoundError: if `folder` does not exist or holds no image file; the message names the folder.
    """
    return FileImages.from_folder(folder, key).paths


class FileImages(Sequence):
    """A domain stored as image files.

    Args:
        paths: the image files.
        folder: the folder they were found in, named in reports.
        ignored: files in that folder without an image extension, named in reports.
    """

    pairs = False  # whether each file holds an A|B pair side by side

    def __init__(self, paths: Sequence[Path], folder: Path | None = None, ignored: Sequence[Path] = ()) -> None:
        self.paths = list(paths)
        self.folder = folder
        self.ignored = list(ignored)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, key: str = "data.root") -> "FileImages":
        """The image files under `folder` (see `find_files`).

        Raises:
            FileNotFoundError: if `folder` does not exist or holds no image file; the message names the folder.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder {folder} does not exist (from {key}); create it or fix {key}")
        images, others = find_files(folder)
        if not images:
            raise FileNotFoundError(
                f"image folder {folder} holds no image file (from {key}); expected files ending in "
                f"{', '.join(IMG_EXTENSIONS)}, possibly in subfolders"
            )
        return cls(images, folder, others)

    def subset(self, keep: Iterable[Path]) -> "FileImages":
        """The same kind of source over the files `keep` (e.g. without unreadable files, or the first few)."""
        return type(self)(list(keep), self.folder, self.ignored)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Image.Image:
        return read_rgb(self.paths[index])

    def name(self, index: int) -> str:
        return str(self.paths[index])

    def fingerprint(self) -> str:
        """A hash of the files' contents, in order (not their paths: a moved copy of a dataset hashes alike)."""
        digest = hashlib.sha1(type(self).__name__.encode())
        for path in self.paths:
            digest.update(_file_sha1(path).encode())
        return digest.hexdigest()


def _file_sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class PairedFileImages(FileImages):
    """Aligned pairs stored as pix2pix does: each file holds A (left half) and B (right half) side by side."""

    pairs = True

    def __getitem__(self, index: int) -> tuple[Image.Image, Image.Image]:
        return split_pair(read_rgb(self.paths[index]))


def split_pair(img: Image.Image) -> tuple[Image.Image, Image.Image]:
    """(left half, right half) of an A|B image, split at width // 2 (an odd last column is dropped)."""
    half, height = img.width // 2, img.height
    return img.crop((0, 0, half, height)), img.crop((half, 0, 2 * half, height))


class SyntheticImages(Sequence):
    """A domain of the built-in `synthetic` dataset, rendered on the fly (deterministic, no files).

    Args:
        seed: dataset seed; together with `split` and `domain` it fixes every image.
        split: "train" or "test" (disjoint scenes).
        domain: "A" (photo-like scenes) or "B" (the same kind of scenes as flat cartoons), or a style of
            `lit_gan.data.synthetic.STYLES` by name (mode domains).
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

    def scene(self, index: int) -> int:
        """The scene seed of image `index`."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        return scene_seed(self.seed, f"{self.split}{self.domain}", index)

    def __getitem__(self, index: int) -> Image.Image:
        return render_scene(self.scene(index), self.size, self.STYLE.get(self.domain, self.domain))

    def name(self, index: int) -> str:
        return f"synthetic/{self.split}{self.domain}/{index:05d}"

    def fingerprint(self) -> str:
        """What fixes every image: the renderer's version and this source's settings."""
        fields = (type(self).__name__, RENDER_VERSION, self.seed, self.split, self.domain, self.size, self.length)
        return hashlib.sha1(repr(fields).encode()).hexdigest()


class SyntheticPairs(SyntheticImages):
    """Aligned pairs of the `synthetic` dataset: the scenes of domain A, each as a photo (A) and a cartoon (B).

    The two images of a pair show the same scene and are aligned pixel for pixel.
    """

    def __init__(self, seed: int, split: str, size: int, length: int) -> None:
        super().__init__(seed, split, "A", size, length)

    def __getitem__(self, index: int) -> tuple[Image.Image, Image.Image]:
        seed = self.scene(index)
        return render_scene(seed, self.size, "photo"), render_scene(seed, self.size, "cartoon")

    def name(self, index: int) -> str:
        return f"synthetic/{self.split}/{index:05d}"


class PairHalf(Sequence):
    """One side of aligned pairs as a domain of its own: half 0 is A (the left half), half 1 is B.

    Args:
        pairs: the pairs (PairedFileImages or SyntheticPairs).
        half: 0 for A, 1 for B.
    """

    def __init__(self, pairs: Sequence[tuple[Image.Image, Image.Image]], half: int) -> None:
        self.pairs, self.half = pairs, half

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Image.Image:
        return self.pairs[index][self.half]

    def name(self, index: int) -> str:
        return self.pairs.name(index)

    def fingerprint(self) -> str:
        return hashlib.sha1(f"{self.pairs.fingerprint()}/half{self.half}".encode()).hexdigest()
