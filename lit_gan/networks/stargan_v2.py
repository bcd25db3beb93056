"""StarGAN v2's networks (Choi, Uh, Yoo, Ha, "StarGAN v2: Diverse Image Synthesis for Multiple Domains", CVPR 2020;
reference code clovaai/stargan-v2, core/model.py): one generator for every domain, whose AdaIN layers apply a style
code; a mapping network that draws style codes per domain from noise; a style encoder that reads a style code from a
reference image; and a multi-task discriminator with one real/fake output per domain.

The reference derives the channels of the first convolution from the image size (2**14 // image_size: 64 at 256 px)
and caps them at `max_conv_dim`; `channels` overrides that for small networks. At the reference's AFHQ setting (256 px,
3 domains, style 64, latent 16, no high-pass branch) the parameter counts are the reference's own (see
`tests/networks/test_stargan_v2.py`). The face-landmark high-pass branch (`w_hpf`, CelebA-HQ) is not implemented.
"""

import math
import re

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def first_channels(image_size: int, channels: int | None) -> int:
    """The reference's channels after the first convolution (2**14 // image_size), unless `channels` is given."""
    return channels if channels is not None else 2**14 // image_size


def _levels(image_size: int, least: int) -> int:
    """log2(image_size) for a power of two of at least `least` pixels."""
    if image_size < least or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two >= {least} (StarGAN v2's networks), got {image_size}")
    return int(math.log2(image_size))


class ResidualBlock(nn.Module):
    """Pre-activation residual block: [instance norm] -> LeakyReLU(0.2) -> 3x3 conv (-> 2x2 average pool) ->
    [instance norm] -> LeakyReLU -> 3x3 conv, added to the (1x1-projected, pooled) input and divided by sqrt(2) for unit
    variance (the reference's ResBlk)."""

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False) -> None:
        super().__init__()
        self.downsample = downsample
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.norm1 = nn.InstanceNorm2d(dim_in, affine=True) if normalize else nn.Identity()
        self.norm2 = nn.InstanceNorm2d(dim_in, affine=True) if normalize else nn.Identity()
        self.shortcut = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        skip = self.shortcut(x)
        h = self.conv1(F.leaky_relu(self.norm1(x), 0.2))
        if self.downsample:
            skip, h = F.avg_pool2d(skip, 2), F.avg_pool2d(h, 2)
        h = self.conv2(F.leaky_relu(self.norm2(h), 0.2))
        return (skip + h) / math.sqrt(2)


class AdaIN(nn.Module):
    """Adaptive instance normalization: (1 + gamma(s)) * IN(x) + beta(s), gamma and beta a linear map of the style
    code s."""

    def __init__(self, style_dim: int, num_features: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        gamma, beta = self.fc(s)[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        return (1 + gamma) * self.norm(x) + beta


class AdaINResidualBlock(nn.Module):
    """The decoder's residual block: AdaIN -> LeakyReLU (-> 2x nearest upsampling) -> 3x3 conv -> AdaIN -> LeakyReLU
    -> 3x3 conv, added to the (upsampled, 1x1-projected) input, divided by sqrt(2)."""

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        self.shortcut = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else nn.Identity()

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        h = F.leaky_relu(self.norm1(x, s), 0.2)
        if self.upsample:
            h, x = (
                F.interpolate(h, scale_factor=2.0, mode="nearest"),
                F.interpolate(x, scale_factor=2.0, mode="nearest"),
            )
        h = self.conv2(F.leaky_relu(self.norm2(self.conv1(h), s), 0.2))
        return (h + self.shortcut(x)) / math.sqrt(2)


class StarGANv2Generator(nn.Module):
    """Image + style code -> image: an encoder of instance-normalized residual blocks (log2(image_size) - 4
    downsamplings, then 2 at the bottleneck), a decoder of AdaIN residual blocks mirroring it, and a 1x1 convolution
    to RGB. Fully convolutional: it translates images of any size that is a multiple of `size_multiple`.

    Args:
        image_size: the training image size (a power of two >= 16), which sets the depth and, by default, the width.
        style_dim: length of a style code.
        max_conv_dim: channel cap.
        channels: channels after the first convolution; null: the reference's 2**14 // image_size.
        residual: output the input plus what the network computes, its last convolution initialized to zero (after
            `init_weights`, see `after_init_weights`), so that the untrained generator returns its input and
            training learns a change of it (not in the reference, whose generator starts from noise: for short
            training, where keeping the image's layout would otherwise take thousands of iterations). Its output
            convolution reads the decoder's features without the reference's instance norm, so that the style
            code's shift of the features reaches the colours.
    """

    def __init__(
        self,
        image_size: int = 256,
        style_dim: int = 64,
        max_conv_dim: int = 512,
        channels: int | None = None,
        residual: bool = False,
    ):
        super().__init__()
        dim = first_channels(image_size, channels)
        self.image_size, self.style_dim = image_size, style_dim
        self.from_rgb = nn.Conv2d(3, dim, 3, 1, 1)
        encode: list[nn.Module] = []
        decode: list[nn.Module] = []  # built from the bottleneck outwards, run in reverse
        downsamplings = _levels(image_size, 16) - 4
        for _ in range(downsamplings):
            dim_out = min(dim * 2, max_conv_dim)
            encode.append(ResidualBlock(dim, dim_out, normalize=True, downsample=True))
            decode.append(AdaINResidualBlock(dim_out, dim, style_dim, upsample=True))
            dim = dim_out
        for _ in range(2):  # bottleneck
            encode.append(ResidualBlock(dim, dim, normalize=True))
            decode.append(AdaINResidualBlock(dim, dim, style_dim))
        self.encode = nn.ModuleList(encode)
        self.decode = nn.ModuleList(reversed(decode))
        width = first_channels(image_size, channels)
        # residual: no instance norm before the 1x1 convolution, which would remove the style's mean shift of the
        # features (AdaIN's beta) and leave the change of each image's colours almost independent of the style
        norm = nn.Identity() if residual else nn.InstanceNorm2d(width, affine=True)
        self.to_rgb = nn.Sequential(norm, nn.LeakyReLU(0.2), nn.Conv2d(width, 3, 1))
        self.size_multiple = 2**downsamplings
        self.residual = residual
        self.after_init_weights()

    def after_init_weights(self) -> None:
        """With `residual`, zero the output convolution: the generator starts as the identity."""
        if self.residual:
            nn.init.zeros_(self.to_rgb[-1].weight)
            nn.init.zeros_(self.to_rgb[-1].bias)

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        """(B, 3, H, W) images in [-1, 1] and (B, style_dim) codes -> (B, 3, H, W) images (not clamped)."""
        h = self.from_rgb(x)
        for block in self.encode:
            h = block(h)
        for block in self.decode:
            h = block(h, s)
        out = self.to_rgb(h)
        return x + out if self.residual else out


class _PerDomain(nn.Module):
    """Picks row y of each sample's per-domain outputs: (B, num_domains, ...) -> (B, ...)."""

    @staticmethod
    def pick(outputs: Tensor, y: Tensor) -> Tensor:
        return outputs[torch.arange(y.shape[0], device=y.device), y]


class MappingNetwork(_PerDomain):
    """Latent code z + domain y -> style code: 4 shared linear layers (ReLU), then one head of 4 linear layers per
    domain.

    Args:
        latent_dim: length of z.
        style_dim: length of a style code.
        num_domains: domains (one head each).
        hidden_dim: width of every hidden layer.
    """

    def __init__(self, latent_dim: int = 16, style_dim: int = 64, num_domains: int = 2, hidden_dim: int = 512):
        super().__init__()
        self.latent_dim, self.style_dim = latent_dim, style_dim
        layers: list[nn.Module] = [nn.Linear(latent_dim, hidden_dim), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.heads = nn.ModuleList(
            nn.Sequential(
                *[m for _ in range(3) for m in (nn.Linear(hidden_dim, hidden_dim), nn.ReLU())],
                nn.Linear(hidden_dim, style_dim),
            )
            for _ in range(num_domains)
        )

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        """(B, latent_dim) latents and (B,) domain indices -> (B, style_dim) style codes."""
        h = self.shared(z)
        return self.pick(torch.stack([head(h) for head in self.heads], dim=1), y)


def _trunk(image_size: int, max_conv_dim: int, channels: int | None) -> tuple[nn.Sequential, int]:
    """The style encoder's and the discriminator's shared layers: a 3x3 conv, log2(image_size) - 2 downsampling
    residual blocks to 4x4, LeakyReLU, a 4x4 conv to 1x1, LeakyReLU; and their output channels."""
    dim = first_channels(image_size, channels)
    blocks: list[nn.Module] = [nn.Conv2d(3, dim, 3, 1, 1)]
    for _ in range(_levels(image_size, 8) - 2):
        dim_out = min(dim * 2, max_conv_dim)
        blocks.append(ResidualBlock(dim, dim_out, downsample=True))
        dim = dim_out
    blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim, dim, 4, 1, 0), nn.LeakyReLU(0.2)]
    return nn.Sequential(*blocks), dim


class StyleEncoder(_PerDomain):
    """Reference image + its domain y -> style code: the shared trunk, then one linear head per domain. Takes images of
    exactly `image_size` pixels.

    Args:
        image_size: the image size (a power of two >= 8).
        style_dim: length of a style code.
        num_domains: domains (one head each).
        max_conv_dim: channel cap.
        channels: channels after the first convolution; null: the reference's 2**14 // image_size.
    """

    def __init__(
        self,
        image_size: int = 256,
        style_dim: int = 64,
        num_domains: int = 2,
        max_conv_dim: int = 512,
        channels: int | None = None,
    ) -> None:
        super().__init__()
        self.image_size, self.style_dim = image_size, style_dim
        self.shared, dim = _trunk(image_size, max_conv_dim, channels)
        self.heads = nn.ModuleList(nn.Linear(dim, style_dim) for _ in range(num_domains))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """(B, 3, image_size, image_size) images and (B,) domain indices -> (B, style_dim) style codes."""
        h = self.shared(x).flatten(1)  # (B, dim)
        return self.pick(torch.stack([head(h) for head in self.heads], dim=1), y)


class MultiTaskDiscriminator(_PerDomain):
    """Image + domain y -> one real/fake logit: the shared trunk and a 1x1 conv with one output per domain, of which
    y's is taken. Takes images of exactly `image_size` pixels.

    Args:
        image_size: the image size (a power of two >= 8).
        num_domains: domains (one output each).
        max_conv_dim: channel cap.
        channels: channels after the first convolution; null: the reference's 2**14 // image_size.
    """

    def __init__(
        self, image_size: int = 256, num_domains: int = 2, max_conv_dim: int = 512, channels: int | None = None
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.shared, dim = _trunk(image_size, max_conv_dim, channels)
        self.head = nn.Conv2d(dim, num_domains, 1, 1, 0)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """(B, 3, image_size, image_size) images and (B,) domain indices -> (B,) logits."""
        return self.pick(self.head(self.shared(x)).flatten(1), y)


_HEAD = re.compile(r"(?:^|\.)heads\.(\d+)\.")  # a mapping network's or style encoder's head of one domain
_D_HEAD = re.compile(r"(?:^|\.)head\.(weight|bias)$")  # the discriminator's output convolution: a row per domain


def domain_state(
    old: dict[str, Tensor], old_domains: list[str], state: dict[str, Tensor], domains: list[str], start_from: str
) -> dict[str, Tensor]:
    """`state` (a model's state dict over `domains`) with the weights of `old` (one over `old_domains`): each
    domain's heads (mapping network, style encoder, discriminator rows) from the old domain of the same name, those of
    a domain `old` lacks from `start_from`'s; every other entry from `old` where it has it, else kept.

    Raises:
        ValueError: naming the entry, if a weight's shape differs (another architecture).
    """
    source = [old_domains.index(name if name in old_domains else start_from) for name in domains]
    out = {}
    for key, value in state.items():
        if (head := _HEAD.search(key)) is not None:
            start, end = head.span(1)
            key_old = f"{key[:start]}{source[int(head.group(1))]}{key[end:]}"
            new = old.get(key_old)
        elif _D_HEAD.search(key) is not None and key in old and old[key].shape[0] == len(old_domains):
            new = old[key][source]
        else:
            new = old.get(key)
        if new is not None and new.shape != value.shape:
            raise ValueError(f"{key}: shape {tuple(new.shape)} in the warm-start checkpoint, {tuple(value.shape)} here")
        out[key] = value if new is None else new.to(value.dtype)
    return out
