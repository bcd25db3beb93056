"""Pixel discriminator (1x1 PatchGAN, "PixelGAN" of Isola et al. 2017): judges every pixel on its own."""

from torch import Tensor, nn

from lit_gan.networks.norm import NormName, conv_bias, norm_layer
from lit_gan.networks.shapes import NetworkSmokeTest
from lit_gan.networks.spectral import apply_spectral_norm


class PixelDiscriminator(nn.Module):
    """Three 1x1 convolutions: a real/fake score per pixel, blind to spatial structure (it only judges colour).

    With ndf 64 on RGB it has 8,705 parameters with instance norm (the count the reference code reports with its
    default options) and 8,832 with batch norm, whose convolutions after the first have no bias, the last included,
    as in the reference.

    Args:
        in_channels: channels of the input (3 for an image, 6 for a conditional (input, output) pair).
        ndf: filters of the first convolution; the second has 2 * ndf.
        norm: normalization after the second convolution.
        use_spectral_norm: spectral normalization of every convolution.
    """

    smoke_test = NetworkSmokeTest({"ndf": 4}, (3, 8, 8), (1, 8, 8))

    def __init__(
        self, in_channels: int = 3, ndf: int = 64, norm: NormName = "batch", use_spectral_norm: bool = False
    ) -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 1, bias=bias),
            norm_layer(norm, 2 * ndf),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 1, 1, bias=bias),
        )
        if use_spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> (B, 1, H, W) raw scores (no sigmoid)."""
        return self.model(x)
