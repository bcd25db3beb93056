"""Anti-aliased resampling (Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019), as the CUT
reference code uses it in its ResNet generator and PatchGAN discriminator: blur with a fixed binomial filter, then
subsample (`Downsample`); zero-insertion upsampling followed by the same kind of blur (`Upsample`).

The filters are constants (non-persistent buffers): they move with the network to a device or dtype but are neither
parameters nor checkpoint entries, so parameter counts equal those of the strided networks they replace.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_BINOMIAL = {1: [1.0], 2: [1.0, 1.0], 3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0], 5: [1.0, 4.0, 6.0, 4.0, 1.0]}


def binomial_filter(size: int) -> Tensor:
    """The normalized 2-D binomial filter of side `size` (outer product of a row of Pascal's triangle), (size, size)."""
    if size not in _BINOMIAL:
        raise ValueError(f"filter size must be one of {sorted(_BINOMIAL)}, got {size}")
    row = torch.tensor(_BINOMIAL[size])
    filt = row[:, None] * row[None, :]
    return filt / filt.sum()


class Downsample(nn.Module):
    """Blur-pool: reflection-pad, blur each channel with a `filt_size` binomial filter, keep every `stride`-th pixel.

    (B, C, H, W) -> (B, C, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.channels, self.stride = channels, stride
        self.padding = ((filt_size - 1) // 2, filt_size // 2) * 2  # left, right, top, bottom
        filt = binomial_filter(filt_size)
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        padded = F.pad(x, self.padding, mode="reflect")
        return F.conv2d(padded, self.filt.to(x.dtype), stride=self.stride, groups=x.shape[1])

    def extra_repr(self) -> str:
        return f"{self.channels}, filt_size={self.filt.shape[-1]}, stride={self.stride}"


class Upsample(nn.Module):
    """Anti-aliased x`stride` upsampling: replicate-pad by one pixel, transposed convolution of each channel with a
    `filt_size` binomial filter scaled by stride^2 (zero insertion + blur), trimmed to exactly `stride` times the size.

    (B, C, H, W) -> (B, C, stride * H, stride * W).
    """

    def __init__(self, channels: int, filt_size: int = 4, stride: int = 2) -> None:
        super().__init__()
        self.channels, self.stride, self.filt_size = channels, stride, filt_size
        filt = binomial_filter(filt_size) * stride**2
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
        pad = 1 + (self.filt_size - 1) // 2
        out = F.conv_transpose2d(padded, self.filt.to(x.dtype), stride=self.stride, padding=pad, groups=x.shape[1])
        out = out[:, :, 1:, 1:]
        return out if self.filt_size % 2 == 1 else out[:, :, :-1, :-1]

    def extra_repr(self) -> str:
        return f"{self.channels}, filt_size={self.filt_size}, stride={self.stride}"
