"""Progressive GAN (Karras et al., ICLR 2018) generator and discriminator, as the official code's `G_paper` and
`D_paper` (tkarras/progressive_growing_of_gans): both hold every resolution's layers from the start and use the ones
up to their current resolution, fading the newest one in with `alpha`.

Components: equalized learning rate (weights drawn from N(0, 1) and scaled at run time by He's constant
gain / sqrt(fan_in)), pixelwise feature normalization in the generator, minibatch standard deviation in the
discriminator, nearest-neighbour upsampling and 2x2 average-pool downsampling, 1x1 toRGB / fromRGB per resolution,
feature maps min(fmap_base / 2^stage, fmap_max) (512 up to 32x32, then halving, at the defaults).
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gan.networks.checkpointing import ActivationCheckpointing, run_block
from lit_gan.networks.shapes import NetworkSmokeTest

MIN_RESOLUTION = 4  # the first phase's resolution: the generator's dense layer makes (C, 4, 4) maps


def leaky_relu(x: Tensor) -> Tensor:
    """The activation of both networks: leaky ReLU with slope 0.2, as in the official code (a function, not a float
    constant, so that TorchScript compiles it)."""
    return F.leaky_relu(x, 0.2)


def _log2(resolution: int, key: str) -> int:
    """log2 of a power-of-two resolution >= 4.

    Raises:
        ValueError: naming `key`, if `resolution` is not one.
    """
    if resolution < MIN_RESOLUTION or resolution & (resolution - 1):
        raise ValueError(f"{key} must be a power of two >= {MIN_RESOLUTION} (4, 8, ..., 1024), got {resolution}")
    return resolution.bit_length() - 1


def feature_maps(stage: int, fmap_base: int, fmap_max: int) -> int:
    """The official `nf(stage)`: feature maps of the layers at resolution 2^(stage + 1)."""
    return min(int(fmap_base / 2.0**stage), fmap_max)


class EqualizedConv2d(nn.Module):
    """A convolution ("same" padding, odd kernel) with equalized learning rate: the weight is drawn from N(0, 1) and
    multiplied at run time by gain / sqrt(fan_in), so Adam's step size is the same for every layer; bias zero.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size.
        gain: He's gain (sqrt(2) for leaky ReLU layers, 1 for the linear toRGB and output layers).
        use_wscale: equalized learning rate; False draws the weight from N(0, gain^2 / fan_in) and uses it as is.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, gain: float = math.sqrt(2), use_wscale: bool = True
    ) -> None:
        super().__init__()
        std = gain / math.sqrt(in_channels * kernel_size**2)  # He's constant
        self.scale = std if use_wscale else 1.0
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size) * (std / self.scale)
        )
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """A fully connected layer with equalized learning rate (see `EqualizedConv2d`).

    Args:
        in_features: input features.
        out_features: output features.
        gain: He's gain.
        use_wscale: equalized learning rate.
        bias: add a bias (zero at first); without it the caller adds its own (the official generator's first layer
            has one bias per channel of the (C, 4, 4) maps it reshapes its output into).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        gain: float = math.sqrt(2),
        use_wscale: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        std = gain / math.sqrt(in_features)
        self.scale = std if use_wscale else 1.0
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (std / self.scale))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_features) -> (B, out_features)."""
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: Tensor, epsilon: float = 1e-8) -> Tensor:
    """Each pixel's feature vector scaled to unit root mean square: x / sqrt(mean_c(x^2) + epsilon)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + epsilon)


def minibatch_stddev(x: Tensor, group_size: int = 4) -> Tensor:
    """The official minibatch standard deviation layer: one more feature map holding, for each group of
    `group_size` samples (sample i is in group i mod (B / group_size)), the standard deviation over the group of
    every feature at every position, averaged over features and positions.

    The group is min(group_size, B), lowered to the largest size that divides B when it does not (the official code
    requires B divisible by it).
    """
    batch, channels, height, width = x.shape
    group = min(group_size, batch)
    while batch % group != 0:
        group -= 1
    y = x.float().reshape(group, -1, channels, height, width)  # (G, M, C, H, W)
    y = (y - y.mean(dim=0, keepdim=True)).square().mean(dim=0)  # (M, C, H, W): variance over the group
    y = (y + 1e-8).sqrt().mean(dim=(1, 2, 3), keepdim=True).to(x.dtype)  # (M, 1, 1, 1)
    y = y.repeat(group, 1, height, width)  # (B, 1, H, W)
    return torch.cat([x, y], dim=1)


def upscale(x: Tensor, factor: int = 2) -> Tensor:
    """Nearest-neighbour upsampling by an integer factor."""
    return x if factor == 1 else F.interpolate(x, scale_factor=float(factor), mode="nearest")


def downscale(x: Tensor, factor: int = 2) -> Tensor:
    """Box-filter (average-pool) downsampling by an integer factor, as the official dataset tool and networks."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


class _Growing(nn.Module):
    """What both networks share: the resolutions they can work at and the current one with its fade-in `alpha`."""

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.image_size = image_size
        self.resolution_log2 = _log2(image_size, "image_size")
        self.resolution = image_size
        """The resolution the network works at now (its layers up to this one are used)."""
        self.level = self.resolution_log2
        """log2 of `resolution` (2 at 4x4)."""
        self.alpha = 1.0
        """The newest layer's weight while it is faded in (1: fully in)."""

    def grow_to(self, resolution: int, alpha: float = 1.0) -> None:
        """Work at `resolution` (a power of two from 4 to `image_size`), its layer blended in with weight `alpha`
        (in [0, 1]; the official code's `lod_in` is log2(image_size / resolution) + 1 - alpha)."""
        level = _log2(resolution, "resolution")
        if level > self.resolution_log2:
            raise ValueError(f"resolution {resolution} is above this network's image_size {self.image_size}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.resolution, self.level, self.alpha = resolution, level, float(alpha)


class _GeneratorBlock(nn.Module):
    """One resolution of the generator: (upsampling and) 3x3 convolutions, each followed by leaky ReLU 0.2 and pixel
    norm."""

    def __init__(self, convs: list[nn.Module], upsample: bool, use_pixelnorm: bool) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.upsample, self.use_pixelnorm = upsample, use_pixelnorm

    def forward(self, x: Tensor) -> Tensor:
        if self.upsample:
            x = upscale(x)
        for conv in self.convs:
            x = leaky_relu(conv(x))
            if self.use_pixelnorm:
                x = pixel_norm(x)
        return x


class ProGANGenerator(ActivationCheckpointing, _Growing):
    """Latent (B, nz) -> image at the current resolution: the paper's generator (Table 2), grown by `grow_to`.

    At 1024 px with the defaults it is the official `G_paper` (23,079,115 parameters). Layers: the latent is pixel-
    normalized, a dense layer to 4x4 maps and a 3x3 convolution; then per resolution an upsampling and two 3x3
    convolutions; leaky ReLU 0.2 and pixel norm after every convolution; a 1x1 toRGB per resolution. While a
    resolution fades in, the output is (1 - alpha) * upsampled previous toRGB + alpha * the new toRGB.

    `set_activation_checkpointing(True)` (`speed.checkpoint_activations`) recomputes each resolution's block in
    backward instead of keeping its activations (the dense 4x4 layer and toRGB keep theirs).

    Args:
        nz: latent size (512 in the paper).
        image_size: the final resolution, a power of two >= 4.
        fmap_base: feature maps at stage s are min(fmap_base / 2^s, fmap_max).
        fmap_max: the most feature maps of any layer.
        out_channels: image channels.
        normalize_latents: pixel-normalize the latent first.
        use_wscale: equalized learning rate.
        use_pixelnorm: pixelwise feature normalization after each convolution.
    """

    smoke_test = NetworkSmokeTest(
        {"nz": 8, "image_size": 8, "fmap_base": 32, "fmap_max": 8}, (8,), (3, 8, 8), bounded=False, fade_in=0.5
    )

    def __init__(
        self,
        nz: int = 512,
        image_size: int = 1024,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        out_channels: int = 3,
        normalize_latents: bool = True,
        use_wscale: bool = True,
        use_pixelnorm: bool = True,
    ) -> None:
        super().__init__(image_size)
        self.nz, self.normalize_latents, self.use_pixelnorm = nz, normalize_latents, use_pixelnorm
        nf = [feature_maps(s, fmap_base, fmap_max) for s in range(self.resolution_log2)]
        self.first_channels, self.first_size = nf[1], MIN_RESOLUTION  # attributes: TorchScript reads no globals
        # the official gain sqrt(2) / 4 of the dense layer matches the original Theano implementation
        self.dense = EqualizedLinear(nz, nf[1] * 16, math.sqrt(2) / 4, use_wscale, bias=False)
        self.dense_bias = nn.Parameter(torch.zeros(nf[1]))  # per channel of the (nf1, 4, 4) maps
        conv = [EqualizedConv2d(nf[1], nf[1], 3, use_wscale=use_wscale)]
        self.blocks = nn.ModuleList([_GeneratorBlock(conv, False, use_pixelnorm)])  # index i: resolution 2^(i + 2)
        for res in range(3, self.resolution_log2 + 1):  # 8x8 and up: upsample, conv, conv
            convs = [
                EqualizedConv2d(nf[res - 2], nf[res - 1], 3, use_wscale=use_wscale),
                EqualizedConv2d(nf[res - 1], nf[res - 1], 3, use_wscale=use_wscale),
            ]
            self.blocks.append(_GeneratorBlock(convs, True, use_pixelnorm))
        self.to_rgb = nn.ModuleList(
            [
                EqualizedConv2d(nf[res - 1], out_channels, 1, 1.0, use_wscale)
                for res in range(2, self.resolution_log2 + 1)
            ]
        )

    def forward(self, z: Tensor) -> Tensor:
        """Latents (B, nz) (or (B, nz, 1, 1)) -> (B, out_channels, resolution, resolution): unbounded in training (no
        tanh, as the official network), clipped to [-1, 1] in eval mode (as the official code clips its images)."""
        z = z.flatten(1)
        if self.normalize_latents:
            z = pixel_norm(z)
        x = self.dense(z).reshape(-1, self.first_channels, self.first_size, self.first_size) + self.dense_bias.reshape(
            1, -1, 1, 1
        )
        x = leaky_relu(x)
        if self.use_pixelnorm:
            x = pixel_norm(x)  # (B, nf1, 4, 4)
        last = self.level - 2  # the current resolution's block
        fading = last > 0 and self.alpha < 1.0
        previous = x
        for i, block in enumerate(self.blocks):
            if i <= last:
                previous = x
                if torch.jit.is_scripting():  # TorchScript never sees the checkpoint call
                    x = block(x)
                else:
                    x = run_block(block, x, self.checkpoint_activations)  # (B, nf, 2^(i + 2), 2^(i + 2))
        image, old = x, x
        for i, to_rgb in enumerate(self.to_rgb):
            if i == last:
                image = to_rgb(x)
            elif i == last - 1 and fading:
                old = to_rgb(previous)
        if fading:  # the new resolution fades in: blended with the previous one's image, upsampled
            image = torch.lerp(upscale(old), image, self.alpha)
        return image if self.training else image.clamp(-1.0, 1.0)


class _DiscriminatorBlock(nn.Module):
    """One resolution of the discriminator above 4x4: two 3x3 convolutions with leaky ReLU 0.2, then a 2x2 average
    pool."""

    def __init__(self, in_channels: int, out_channels: int, use_wscale: bool) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, use_wscale=use_wscale)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, use_wscale=use_wscale)

    def forward(self, x: Tensor) -> Tensor:
        x = leaky_relu(self.conv0(x))
        return downscale(leaky_relu(self.conv1(x)))


class _DiscriminatorOutput(nn.Module):
    """The 4x4 end of the discriminator: minibatch standard deviation, a 3x3 convolution and two dense layers."""

    def __init__(self, channels: int, hidden: int, mbstd_group_size: int, use_wscale: bool) -> None:
        super().__init__()
        self.mbstd_group_size = mbstd_group_size
        self.conv = EqualizedConv2d(channels + int(mbstd_group_size > 1), channels, 3, use_wscale=use_wscale)
        self.dense0 = EqualizedLinear(channels * 16, hidden, use_wscale=use_wscale)
        self.dense1 = EqualizedLinear(hidden, 1, 1.0, use_wscale)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, 4, 4) -> (B,) scores."""
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size)
        x = leaky_relu(self.conv(x))
        x = leaky_relu(self.dense0(x.flatten(1)))
        return self.dense1(x).flatten()


class ProGANDiscriminator(_Growing):
    """Image at the current resolution -> (B,) scores: the paper's discriminator (Table 2), grown by `grow_to`.

    At 1024 px with the defaults it is the official `D_paper` (23,087,249 parameters). Layers: a 1x1 fromRGB per
    resolution; per resolution two 3x3 convolutions and a 2x2 average pool; at 4x4 the minibatch standard deviation
    (one more feature map), a 3x3 convolution and two dense layers; leaky ReLU 0.2, no normalization. While a
    resolution fades in, the features after its block are blended with fromRGB of the downscaled image:
    alpha * new + (1 - alpha) * old.

    Args:
        in_channels: image channels.
        image_size: the final resolution, a power of two >= 4.
        fmap_base: feature maps at stage s are min(fmap_base / 2^s, fmap_max).
        fmap_max: the most feature maps of any layer.
        mbstd_group_size: the minibatch standard deviation's group size (0 or 1 disables it).
        use_wscale: equalized learning rate.
    """

    smoke_test = NetworkSmokeTest({"image_size": 8, "fmap_base": 32, "fmap_max": 8}, (3, 8, 8), (), fade_in=0.5)

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 1024,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        mbstd_group_size: int = 4,
        use_wscale: bool = True,
    ) -> None:
        super().__init__(image_size)
        nf = [feature_maps(s, fmap_base, fmap_max) for s in range(self.resolution_log2)]
        top = self.resolution_log2
        # index i: resolution 2^(top - i), from the highest down, as an image passes through them
        self.from_rgb = nn.ModuleList(
            [EqualizedConv2d(in_channels, nf[res - 1], 1, use_wscale=use_wscale) for res in range(top, 1, -1)]
        )
        self.blocks = nn.ModuleList(
            [_DiscriminatorBlock(nf[res - 1], nf[res - 2], use_wscale) for res in range(top, 2, -1)]
        )
        self.output = _DiscriminatorOutput(nf[1], nf[0], mbstd_group_size, use_wscale)

    def forward(self, images: Tensor) -> Tensor:
        """(B, in_channels, resolution, resolution) -> (B,) raw scores."""
        if not torch.jit.is_tracing() and (images.shape[-2] != self.resolution or images.shape[-1] != self.resolution):
            raise ValueError(
                "ProGANDiscriminator at resolution " + str(self.resolution) + " needs images of that height and "
                "width, got " + str(images.shape[-2]) + "x" + str(images.shape[-1])
            )
        first = self.resolution_log2 - self.level  # index of the current resolution's fromRGB and block
        fading = self.level > 2 and self.alpha < 1.0
        x, old = images, images
        for i, from_rgb in enumerate(self.from_rgb):
            if i == first:
                x = leaky_relu(from_rgb(images))
            elif i == first + 1 and fading:  # the previous resolution's path, on the downscaled image
                old = leaky_relu(from_rgb(downscale(images)))
        for i, block in enumerate(self.blocks):
            if i >= first:
                x = block(x)
                if i == first and fading:
                    x = torch.lerp(old, x, self.alpha)
        return self.output(x)
