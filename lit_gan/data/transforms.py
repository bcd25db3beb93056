"""Preprocessing of the reference implementations: resize, crop and flip, then scale to [-1, 1].

Every transform here is a torchvision `v2.Transform`, so one call on several images (`transform(a, b)`, the two
halves of an aligned pair) resizes them alike and draws one random crop and one flip for all of them.
"""

from typing import Any, Literal

import torch
from PIL import Image
from torchvision.transforms import v2

Preprocess = Literal["resize_and_crop", "crop", "scale_width", "random_resized_crop", "none"]
BICUBIC = v2.InterpolationMode.BICUBIC


class PILResize(v2.Transform):
    """Base of the resizes below: PIL images only, all resized alike; subclasses give `new_size`."""

    _transformed_types = (Image.Image,)

    def new_size(self, w: int, h: int) -> tuple[int, int]:
        raise NotImplementedError

    def transform(self, inpt: Image.Image, params: dict[str, Any]) -> Image.Image:
        new = self.new_size(*inpt.size)
        return inpt if new == inpt.size else inpt.resize(new, Image.BICUBIC)


class RoundToMultiple(PILResize):
    """Resize so that height and width are multiples of `multiple` (at least one multiple), as the reference's
    `__make_power_2` does for `--preprocess none`.

    Args:
        multiple: the size multiple the networks need (4 for the ResNet generator).
    """

    def __init__(self, multiple: int = 4) -> None:
        super().__init__()
        self.multiple = multiple

    def new_size(self, w: int, h: int) -> tuple[int, int]:
        m = self.multiple
        return max(m, round(w / m) * m), max(m, round(h / m) * m)


class ScaleWidth(PILResize):
    """Resize to width `width`, keeping the aspect ratio but with a height of at least `min_height`, as the
    reference's `__scale_width` does.

    Args:
        width: target width (data.load_size).
        min_height: smallest height (data.crop_size), so that a square crop fits.
    """

    def __init__(self, width: int, min_height: int) -> None:
        super().__init__()
        self.width, self.min_height = width, min_height

    def new_size(self, w: int, h: int) -> tuple[int, int]:
        return self.width, max(round(self.width * h / w), self.min_height)


class UpscaleToAtLeast(PILResize):
    """Upscale an image whose short side is below `min_size` until it reaches it, keeping the aspect ratio;
    larger images pass unchanged.

    Args:
        min_size: smallest side length (data.crop_size).
    """

    def __init__(self, min_size: int) -> None:
        super().__init__()
        self.min_size = min_size

    def new_size(self, w: int, h: int) -> tuple[int, int]:
        if min(w, h) >= self.min_size:
            return w, h
        scale = self.min_size / min(w, h)
        return max(self.min_size, round(w * scale)), max(self.min_size, round(h * scale))


def build_transform(
    preprocess: Preprocess, load_size: int, crop_size: int, flip: bool, train: bool, multiple: int = 4
) -> v2.Compose:
    """PIL RGB images -> (3, H, W) float tensors in [-1, 1]; several images in one call get the same crop and flip.

    Args:
        preprocess: "resize_and_crop" (resize to load_size square, then crop crop_size); "crop" (crop crop_size
            from the image as it is, upscaling images smaller than crop_size first); "scale_width" (resize to width
            load_size keeping the aspect ratio, height at least crop_size, then crop crop_size: the reference's
            scale_width_and_crop); "random_resized_crop" (StarGAN v2's: with probability 1/2 a random crop of 80-100%
            of the area at aspect ratio 0.9-1.1, then a resize to crop_size square; held out: the resize alone;
            load_size is not used); "none" (keep the size, rounded to a multiple of `multiple`).
        load_size: side length (width for scale_width) images are resized to before cropping.
        crop_size: side length of the square crop fed to the networks.
        flip: random horizontal flips (training only).
        train: random crops and flips when True; centre crops and no flip when False (held-out images).
        multiple: size multiple the network needs, for preprocess "none".
    """
    crop = v2.RandomCrop(crop_size) if train else v2.CenterCrop(crop_size)
    steps: list[v2.Transform] = {
        "resize_and_crop": [v2.Resize([load_size, load_size], interpolation=BICUBIC), crop],
        "crop": [UpscaleToAtLeast(crop_size), crop],
        "scale_width": [ScaleWidth(load_size, crop_size), crop],
        "random_resized_crop": [
            *([v2.RandomApply([v2.RandomResizedCrop(crop_size, scale=(0.8, 1.0), ratio=(0.9, 1.1))])] if train else []),
            v2.Resize([crop_size, crop_size]),
        ],
        "none": [RoundToMultiple(multiple)],
    }[preprocess]
    if train and flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose([*steps, *to_tensor_steps()])


def to_tensor_steps() -> list[v2.Transform]:
    """The last steps of every transform: PIL RGB image -> (3, H, W) float tensor in [-1, 1]."""
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3), v2.ToPureTensor()]
