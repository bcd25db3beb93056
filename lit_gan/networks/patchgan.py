"""PatchGAN discriminator (Isola et al. 2017): classifies overlapping patches as real or fake."""

from torch import Tensor, nn

from lit_gan.networks.antialias import Downsample
from lit_gan.networks.norm import NormName, conv_bias, norm_layer
from lit_gan.networks.shapes import NetworkSmokeTest
from lit_gan.networks.spectral import apply_spectral_norm


class PatchGANDiscriminator(nn.Module):
    """Fully convolutional discriminator with a patch-wise output map.

    With n_layers 3 (70x70 receptive field), ndf 64 and instance norm on RGB it has 2,764,737 parameters; the
    pix2pix variant (6 input channels, batch norm) has 2,768,705.

    Args:
        in_channels: channels of the input (3 for an image, 6 for a conditional (input, output) pair).
        ndf: filters of the first convolution.
        n_layers: stride-2 convolutions; 3 gives the 70x70 PatchGAN.
        norm: normalization after each convolution but the first and the last.
        use_spectral_norm: spectral normalization of every convolution.
        antialias: the CUT reference's anti-aliased downsampling (its default): each stride-2 convolution becomes a
            stride-1 convolution followed (after its norm and LeakyReLU) by a blur-pool `Downsample`; same parameters.
    """

    smoke_test = NetworkSmokeTest({"ndf": 4, "n_layers": 2}, (3, 32, 32), (1, 6, 6))

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: NormName = "instance",
        use_spectral_norm: bool = False,
        antialias: bool = False,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        bias = conv_bias(norm)
        first = 1 if antialias else 2
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=first, padding=1), nn.LeakyReLU(0.2, True)]
        layers += [Downsample(ndf)] if antialias else []
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            downsamples = n < n_layers  # the last feature layer keeps the resolution
            layers += [
                nn.Conv2d(
                    ndf * prev, ndf * mult, 4, stride=2 if downsamples and not antialias else 1, padding=1, bias=bias
                ),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
            layers += [Downsample(ndf * mult)] if downsamples and antialias else []
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))  # (B, 1, H', W') patch logits
        self.model = nn.Sequential(*layers)
        if use_spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> (B, 1, H', W') raw scores (no sigmoid)."""
        return self.model(x)
