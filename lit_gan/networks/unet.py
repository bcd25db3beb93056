"""U-Net generator of pix2pix (Isola et al. 2017): an encoder-decoder with skip connections between mirrored layers."""

import torch
from torch import Tensor, nn

from lit_gan.networks.checkpointing import ActivationCheckpointing, run_block
from lit_gan.networks.norm import NormName, conv_bias, norm_layer
from lit_gan.networks.shapes import NetworkSmokeTest, check_size_multiple


class UnetGenerator(ActivationCheckpointing, nn.Module):
    """Image-to-image generator: `num_downs` stride-2 downsamplings, each mirrored by an upsampling whose input is
    concatenated with the encoder features of the same resolution.

    The reference presets are "unet_256" (num_downs 8: a 256 px input reaches 1x1) and "unet_128" (num_downs 7); with
    ngf 64 and batch norm on RGB they have 54,413,955 and 41,828,995 parameters. Input height and width must be
    multiples of `size_multiple` = 2 ** num_downs.

    Layers match the reference `UnetSkipConnectionBlock`s, built by a loop instead of recursion: encoder layer i is
    conv (4x4, stride 2), norm (not on the first and innermost layers) and LeakyReLU 0.2 (not on the innermost);
    decoder layer i is ReLU, transposed conv, norm (Tanh on the outermost) and dropout in the ngf*8 middle layers.
    Skip connections carry encoder features after their LeakyReLU, as the reference's in-place LeakyReLU makes them
    do (the ReLU that opens each decoder layer gives the same result either way). The state_dict holds the
    reference's tensors in the reference's order, under other keys.

    `set_activation_checkpointing(True)` (`speed.checkpoint_activations`) recomputes each encoder and decoder level's
    activations in backward instead of keeping them; batch norm updates its running statistics once per step all the
    same, and dropout draws the same mask in the recomputation.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        num_downs: downsamplings (>= 5); 8 for 256 px, 7 for 128 px inputs.
        ngf: filters of the outermost convolution; deeper layers have up to 8 * ngf.
        norm: normalization after the convolutions.
        use_dropout: dropout (p=0.5) in the num_downs - 5 middle decoder layers (the reference also samples it at
            test time, by staying in train mode).
    """

    smoke_test = NetworkSmokeTest({"ngf": 2, "num_downs": 5}, (3, 32, 32), (3, 32, 32))

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: NormName = "batch",
        use_dropout: bool = True,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(
                f"num_downs must be >= 5 (the U-Net reaches 8 * ngf filters at its 4th level), got {num_downs}"
            )
        self.size_multiple = 2**num_downs
        bias = conv_bias(norm)
        widths = [ngf * min(2**i, 8) for i in range(num_downs)]  # channels after encoder layer i
        innermost = num_downs - 1
        self.encoder = nn.ModuleList()  # outermost first, in the order they run
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [nn.Conv2d(widths[i - 1] if i else in_channels, width, 4, 2, 1, bias=bias)]
            if 0 < i < innermost:
                layers.append(norm_layer(norm, width))
            if i < innermost:
                layers.append(nn.LeakyReLU(0.2, True))
            self.encoder.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList()  # innermost first, in the order they run
        for i in reversed(range(num_downs)):
            in_width = widths[i] if i == innermost else 2 * widths[i]  # the skip connection doubles the channels
            if i == 0:  # outermost: back to image channels, with a bias and Tanh
                up: list[nn.Module] = [nn.ConvTranspose2d(in_width, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                up = [nn.ConvTranspose2d(in_width, widths[i - 1], 4, 2, 1, bias=bias), norm_layer(norm, widths[i - 1])]
                if use_dropout and 4 <= i < innermost:
                    up.append(nn.Dropout(0.5))
            self.decoder.append(nn.Sequential(nn.ReLU(True), *up))

    def set_activation_checkpointing(self, enabled: bool) -> None:
        """Turn activation checkpointing of the encoder and decoder levels on or off.

        Each decoder level opens with a ReLU that works in place on its input; a checkpointed level's input is kept
        for the recomputation and must stay as it was, so while checkpointing that ReLU makes a new tensor (the same
        values; its output is dropped after the level like the level's other activations)."""
        super().set_activation_checkpointing(enabled)
        for level in self.decoder:
            level[0].inplace = not enabled  # the opening nn.ReLU

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]; H, W multiples of size_multiple."""
        check_size_multiple(x, self.size_multiple, "UnetGenerator")
        skips: list[Tensor] = []
        for layer in self.encoder:
            if torch.jit.is_scripting():  # TorchScript never sees the checkpoint call
                x = layer(x)
            else:
                x = run_block(layer, x, self.checkpoint_activations)
            skips.append(x)  # (B, widths[i], H / 2^(i+1), W / 2^(i+1))
        x = skips.pop()  # the innermost features feed the decoder directly
        for layer in self.decoder:
            if torch.jit.is_scripting():
                x = layer(x)
            else:
                x = run_block(layer, x, self.checkpoint_activations)
            if len(skips) > 0:
                x = torch.cat([skips.pop(), x], 1)  # (B, 2 * widths[i-1], H / 2^i, W / 2^i): skip first, as in pix2pix
        return x  # (B, out_channels, H, W)
