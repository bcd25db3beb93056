"""Image shapes the networks accept: input checks that give a clear error instead of a shape mismatch deep inside a
network, and padding images of any size to a size multiple (and cropping the outputs back)."""

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class NetworkSmokeTest:
    """A network's tiny instance, for the tests generated from the catalogue (`tests/networks/test_networks.py`):
    constructor kwargs, per-sample input and output shapes, whether a generator's outputs are bounded to [-1, 1] (a
    tanh), and for a growing network the fade-in weight to check it at (at its image_size, so every layer is used).
    Each network exported by `lit_gan.networks` has one as its `smoke_test`: a new network needs no test edits."""

    kwargs: dict[str, Any]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    bounded: bool = True
    fade_in: float | None = None


def check_size_multiple(x: Tensor, multiple: int, network: str) -> None:
    """Raise a ValueError naming `network` unless the height and width of `x` (..., H, W) are multiples of `multiple`.

    Plain Python on `x.shape`: free in eager mode, scriptable, and compiled away by `torch.compile`; skipped while
    `torch.jit.trace` records (a traced graph has fixed sizes anyway).
    """
    if torch.jit.is_tracing():
        return
    if x.shape[-2] % multiple != 0 or x.shape[-1] % multiple != 0:
        raise ValueError(
            f"{network} needs height and width that are multiples of {multiple}, "
            f"got {x.shape[-2]}x{x.shape[-1]}: resize or crop the input"
        )


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Pad (C, H, W) `x` to the next multiples of `multiple`, split evenly around the image, by reflection (repeated
    for images smaller than the padding; edge pixels for a side of 1 px); returns the padding (left, right, top,
    bottom) for `crop_padding`."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    padding = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    remaining = list(padding)
    while any(remaining):  # reflection pads less than the side it mirrors: grow step by step
        h, w = x.shape[-2:]
        if min(h, w) == 1:
            x = F.pad(x[None], remaining, mode="replicate")[0]
            break
        step = [min(p, w - 1) for p in remaining[:2]] + [min(p, h - 1) for p in remaining[2:]]
        x = F.pad(x[None], step, mode="reflect")[0]
        remaining = [p - s for p, s in zip(remaining, step)]
    return x, padding


def crop_padding(images: Tensor, padding: Tensor | None) -> Tensor:
    """(B, C, H, W) network outputs cropped back to their images' original size, undoing `pad_to_multiple`.

    Args:
        images: outputs of the padded images of one batch.
        padding: (B, 4) (left, right, top, bottom) per image, all equal (the batch holds one image size); None: no
            padding to undo.
    """
    if padding is None or len(images) == 0:
        return images
    if not bool((padding == padding[0]).all()):
        raise ValueError("crop_padding: the images of one batch must share a size (use SizeBatchSampler)")
    left, right, top, bottom = padding[0].tolist()
    height, width = images.shape[-2:]
    return images[..., top : height - bottom, left : width - right]


def first_conv(net: nn.Module) -> nn.Conv2d | nn.ConvTranspose2d:
    """The first convolution of `net`, e.g. to read how many input channels it expects."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            return module
    raise ValueError(f"{type(net).__name__} has no convolution")


def last_conv(net: nn.Module) -> nn.Conv2d | nn.ConvTranspose2d:
    """The last convolution of `net` in module order (the output layer of the generators here)."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    if not convs:
        raise ValueError(f"{type(net).__name__} has no convolution")
    return convs[-1]
