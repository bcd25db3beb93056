"""DCGAN (Radford et al. 2016) generator and discriminator, as in the PyTorch DCGAN example, for square images of
any power-of-two size >= 32."""

import torch
from torch import Tensor, nn

from lit_gan.networks.shapes import NetworkSmokeTest
from lit_gan.networks.spectral import apply_spectral_norm

MIN_IMAGE_SIZE = 32


def _stages(image_size: int) -> int:
    """Stride-2 stages between 4x4 and image_size / 2 (3 at 64 px, as in the example).

    Raises:
        ValueError: if `image_size` is not a power of two >= MIN_IMAGE_SIZE.
    """
    if image_size < MIN_IMAGE_SIZE or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two >= {MIN_IMAGE_SIZE} (32, 64, 128, ...), got {image_size}")
    return image_size.bit_length() - 4  # log2(image_size) - 3


class DCGANGenerator(nn.Module):
    """Noise to image: a 4x4 transposed convolution, then stride-2 transposed convolutions that halve the filters.

    At 64 px it is the PyTorch example exactly (nz 100, ngf 64, RGB: 3,576,704 parameters): ngf * 8 maps at 4x4 down
    to ngf at 32x32. Each doubling of `image_size` adds a stage at the start (ngf * 16 maps at 4x4 for 128 px), each
    halving removes one (ngf * 4 for 32 px). No biases, batch norm and ReLU, Tanh output.

    No activation checkpointing (`speed.checkpoint_activations`): at 32-128 px its activations are small next to its
    weights and Adam's state, so recomputing them would cost time for little memory.

    Args:
        nz: length of the noise vector.
        ngf: feature maps of the last hidden layer (at image_size / 2).
        image_size: height and width of the generated images: a power of two >= 32.
        out_channels: channels of the generated images.
    """

    smoke_test = NetworkSmokeTest({"nz": 8, "ngf": 4, "image_size": 32}, (8,), (3, 32, 32))

    def __init__(self, nz: int = 100, ngf: int = 64, image_size: int = 64, out_channels: int = 3) -> None:
        super().__init__()
        stages = _stages(image_size)
        self.nz = nz
        self.image_size = image_size
        width = ngf * 2**stages
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(stages):  # (B, width, s, s) -> (B, width / 2, 2s, 2s)
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """Noise (B, nz) or (B, nz, 1, 1) -> (B, out_channels, image_size, image_size) in [-1, 1]."""
        if z.dim() == 2:
            z = z[:, :, None, None]  # (B, nz, 1, 1)
        return self.model(z)


class DCGANDiscriminator(nn.Module):
    """Image to one score: stride-2 convolutions that double the filters, then a 4x4 convolution to one logit.

    Mirrors `DCGANGenerator`; at 64 px it is the PyTorch example exactly (ndf 64, RGB: 2,765,568 parameters), without
    its final sigmoid: the GAN losses take logits. No biases, LeakyReLU 0.2, batch norm on all but the first layer.

    Args:
        in_channels: channels of the images.
        ndf: feature maps of the first layer (at image_size / 2).
        image_size: height and width of the images: a power of two >= 32.
        use_spectral_norm: spectral normalization of every convolution.
    """

    smoke_test = NetworkSmokeTest({"ndf": 4, "image_size": 32}, (3, 32, 32), ())

    def __init__(
        self, in_channels: int = 3, ndf: int = 64, image_size: int = 64, use_spectral_norm: bool = False
    ) -> None:
        super().__init__()
        stages = _stages(image_size)
        self.image_size = image_size
        width = ndf
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(stages):  # (B, width, s, s) -> (B, 2 width, s / 2, s / 2)
            layers += [
                nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
                nn.BatchNorm2d(2 * width),
                nn.LeakyReLU(0.2, True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))  # (B, 1, 1, 1)
        self.model = nn.Sequential(*layers)
        if use_spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, image_size, image_size) -> (B,) raw scores (no sigmoid)."""
        if not torch.jit.is_tracing() and (x.shape[-2] != self.image_size or x.shape[-1] != self.image_size):
            raise ValueError(
                f"DCGANDiscriminator(image_size={self.image_size}) needs {self.image_size}x{self.image_size} images, "
                f"got {x.shape[-2]}x{x.shape[-1]}"
            )
        return self.model(x).flatten()  # (B, 1, 1, 1) -> (B,)
