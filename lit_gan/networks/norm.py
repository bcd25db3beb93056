"""Normalization layers by name, as the reference CycleGAN/pix2pix code chooses them."""

from collections.abc import Callable
from typing import Literal

from torch import nn

NormName = Literal["instance", "batch", "syncbatch", "none"]

NORM_LAYERS: dict[str, Callable[[int], nn.Module]] = {
    # Instance norm without learned affine parameters or running statistics (the reference's choice for CycleGAN).
    "instance": lambda channels: nn.InstanceNorm2d(channels, affine=False, track_running_stats=False),
    "batch": lambda channels: nn.BatchNorm2d(channels, affine=True, track_running_stats=True),
    # Batch statistics shared across DDP processes. Outside a process group (one process, CPU or GPU) it is plain
    # batch norm. Inside one, torch supports it only on GPU/XPU: training on CPU raises a ValueError, even with one
    # process, so use "batch" for CPU DDP. Equivalent: "batch" with `Trainer(sync_batchnorm=True)`.
    "syncbatch": lambda channels: nn.SyncBatchNorm(channels, affine=True, track_running_stats=True),
    "none": lambda channels: nn.Identity(),
}


def norm_layer(name: str, channels: int) -> nn.Module:
    """A normalization layer for `channels` feature maps.

    Raises:
        ValueError: if `name` is not one of `NORM_LAYERS`.
    """
    if name not in NORM_LAYERS:
        raise ValueError(f"unknown norm {name!r}; valid norms: {', '.join(sorted(NORM_LAYERS))}")
    return NORM_LAYERS[name](channels)


def conv_bias(name: str) -> bool:
    """Whether a convolution followed by norm `name` needs its own bias.

    Batch norm (synchronized or not) has a learned shift that makes a bias redundant; instance norm (affine=False)
    and no norm do not.
    """
    return name not in ("batch", "syncbatch")
