"""Single-image translation (CUT's single-image setting): each domain is one image, and the data are square crops of
random rescalings of it.

A crop rescales the image by independent factors in x and y, drawn uniformly from `scale` (the image is never made
smaller than the crop), takes a `crop_size` square at a uniform position and flips it horizontally half the time, as
the reference's `SingleImageDataset` (zoom, then patch, then flip) does. Only the region under the crop is resampled
(`Image.resize(box=...)`), so a crop costs the same for a large photo as for a small one.

Training crops draw from torch's random state, which `SeededItems` seeds per item, so a crop depends only on the
run's seed, the epoch and the position in it (exact mid-epoch resume). Held-out crops are a fixed set: crop `i` is
drawn from a generator seeded with `i` and is never flipped, so sample grids and FID/KID see the same crops, at the
scales training uses, on every call.
"""

import hashlib
from collections.abc import Sequence
from pathlib import PurePath

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from lit_gan.data.transforms import to_tensor_steps

CROPS_VERSION = 1  # bump when held-out crops change: it keys caches of their features


class ImageCrops(Sequence):
    """Crops of one image, as (3, crop_size, crop_size) tensors in [-1, 1]: random ones (training) or a fixed set.

    Args:
        source: the domain's images (a sequence with `name(i)` and `fingerprint()`) holding exactly one image.
        crop_size: side length of the square crops.
        scale: (low, high) range of the rescaling factors of the image, drawn per axis.
        length: number of crops (an epoch's worth for training, the held-out set's size otherwise).
        flip: random horizontal flips (random crops only).
        fixed: crop `i` is the same on every call (held-out crops); else crops draw from torch's random state.
    """

    def __init__(
        self, source: Sequence, crop_size: int, scale: tuple[float, float], length: int, flip: bool, fixed: bool
    ) -> None:
        self.source, self.crop_size, self.scale = source, crop_size, tuple(scale)
        self.length, self.flip, self.fixed = length, flip and not fixed, fixed
        self._image: Image.Image | None = None  # decoded on first use (once per worker process)
        self._to_tensor = v2.Compose(to_tensor_steps())

    @property
    def image(self) -> Image.Image:
        if self._image is None:
            self._image = self.source[0]
        return self._image

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tensor:
        if not 0 <= index < self.length:
            raise IndexError(index)
        generator = torch.Generator().manual_seed(index) if self.fixed else None
        uniform = torch.rand(5, generator=generator).tolist()  # zoom x, zoom y, position x, position y, flip
        crop = self.crop(*uniform[:4])
        if self.flip and uniform[4] < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        return self._to_tensor(crop)  # (3, crop_size, crop_size)

    def crop(self, zoom_x: float, zoom_y: float, at_x: float, at_y: float) -> Image.Image:
        """The crop at relative position (at_x, at_y) in [0, 1) of the image rescaled by the factors that
        (zoom_x, zoom_y) in [0, 1) select from `scale`."""
        (w, h), size, (low, high) = self.image.size, self.crop_size, self.scale
        zoomed_w = max(size, round(w * (low + zoom_x * (high - low))))
        zoomed_h = max(size, round(h * (low + zoom_y * (high - low))))
        x = int(at_x * (zoomed_w - size + 1))  # the crop's corner in the rescaled image
        y = int(at_y * (zoomed_h - size + 1))
        box = (x * w / zoomed_w, y * h / zoomed_h, (x + size) * w / zoomed_w, (y + size) * h / zoomed_h)
        return self.image.resize((size, size), Image.BILINEAR, box=box)  # the reference resamples bilinearly

    def name(self, index: int) -> str:
        """The image's path; for held-out crops with the crop's number, so that written outputs get their own files."""
        path = self.source.name(0)
        if not self.fixed:
            return path
        pure = PurePath(path)
        return str(pure.with_name(f"{pure.stem}_crop{index:03d}{pure.suffix}"))

    def fingerprint(self) -> str:
        """What fixes every held-out crop: the image's fingerprint and the crop settings."""
        fields = (CROPS_VERSION, self.source.fingerprint(), self.crop_size, self.scale, self.length, self.fixed)
        return hashlib.sha1(repr(fields).encode()).hexdigest()


class SingleImageDataset(Dataset):
    """Crops of the two domains' images, drawn independently: {"A", "B", "A_path", "B_path"} as `UnalignedDataset`
    gives them, so unpaired models train on it unchanged.

    Args:
        crops_a: crops of domain A's image.
        crops_b: crops of domain B's image (as many as `crops_a`).
    """

    def __init__(self, crops_a: ImageCrops, crops_b: ImageCrops) -> None:
        self.crops_a, self.crops_b = crops_a, crops_b

    def __len__(self) -> int:
        return len(self.crops_a)

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        return {
            "A": self.crops_a[index],  # (3, H, W)
            "B": self.crops_b[index],  # (3, H, W)
            "A_path": self.crops_a.name(index),
            "B_path": self.crops_b.name(index),
        }


def check_one_image(folder: object, count: int, names: Sequence[str]) -> None:
    """Raise if a single-image domain folder does not hold exactly one image.

    Raises:
        ValueError: naming the folder, the count and (some of) the files, and how to fix it.
    """
    if count == 1:
        return
    found = f"found {count}" + (f" ({', '.join(names[:5])}{', ...' if count > 5 else ''})" if count else "")
    fix = "keep one image there and move the others out" if count else "put one image file there"
    raise ValueError(
        f"data.mode single_image needs exactly one image in {folder}, {found}: {fix}, or use data.mode unaligned "
        "for folders of many images"
    )
