"""Preprocessing of the reference implementations: resize, crop and flip, then scale to [-1, 1]."""

from collections.abc import Callable
from typing import Literal

import torch
from PIL import Image
from torchvision.transforms import v2

Preprocess = Literal["resize_and_crop", "crop", "none"]


def _to_multiple_of_4(img: Image.Image) -> Image.Image:
    """Resize so that height and width are multiples of 4 (what the generators need), as the reference does."""
    w, h = img.size
    new = (max(4, round(w / 4) * 4), max(4, round(h / 4) * 4))
    return img if new == (w, h) else img.resize(new, Image.BICUBIC)


def build_transform(
    preprocess: str, load_size: int, crop_size: int, flip: bool, train: bool
) -> Callable[[Image.Image], torch.Tensor]:
    """PIL RGB image -> (3, H, W) float tensor in [-1, 1].

    Args:
        preprocess: "resize_and_crop" (resize to load_size square, then crop crop_size), "crop" (crop crop_size
            from the image as it is) or "none" (keep the size, rounded to a multiple of 4).
        load_size: side length images are resized to before cropping.
        crop_size: side length of the crop fed to the networks.
        flip: random horizontal flips (training only).
        train: random crops and flips when True; centre crops and no flip when False (held-out images).
    """
    crop = v2.RandomCrop(crop_size) if train else v2.CenterCrop(crop_size)
    steps: list[Callable] = {
        "resize_and_crop": [v2.Resize([load_size, load_size], interpolation=v2.InterpolationMode.BICUBIC), crop],
        "crop": [crop],
        "none": [_to_multiple_of_4],
    }[preprocess]
    if train and flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3)]
    return v2.Compose(steps)
