"""ResNet generator of CycleGAN (Johnson et al. 2016 as used by Zhu et al. 2017)."""

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from lit_gan.networks.antialias import Downsample, Upsample
from lit_gan.networks.checkpointing import ActivationCheckpointing, run_block
from lit_gan.networks.norm import NormName, conv_bias, norm_layer
from lit_gan.networks.shapes import NetworkSmokeTest, check_size_multiple

PaddingType = Literal["reflect", "replicate", "zero"]


def _padded_conv3x3(channels: int, padding_type: str, bias: bool) -> list[nn.Module]:
    """A 3x3 convolution that keeps the spatial size, padded by `padding_type`."""
    if padding_type == "zero":
        return [nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=bias)]
    pad = nn.ReflectionPad2d(1) if padding_type == "reflect" else nn.ReplicationPad2d(1)
    return [pad, nn.Conv2d(channels, channels, kernel_size=3, padding=0, bias=bias)]


class ResnetBlock(ActivationCheckpointing, nn.Module):
    """Residual block: x + conv-norm-relu-[dropout]-conv-norm(x).

    With `checkpoint_activations` the conv-norm-... branch is recomputed in backward (see `run_block`); the block
    reads its own flag, so it holds wherever it is called from (`ResnetGenerator.forward` and `features`).
    """

    def __init__(self, channels: int, padding_type: str, norm: str, use_dropout: bool) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers = [*_padded_conv3x3(channels, padding_type, bias), norm_layer(norm, channels), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [*_padded_conv3x3(channels, padding_type, bias), norm_layer(norm, channels)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_scripting():  # TorchScript never sees the checkpoint call
            return x + self.conv_block(x)
        return x + run_block(self.conv_block, x, self.checkpoint_activations)  # (B, C, H, W)


class ResnetGenerator(ActivationCheckpointing, nn.Module):
    """Image-to-image generator: two stride-2 downsamplings, `n_blocks` residual blocks, two upsamplings.

    With the reference settings (ngf 64, instance norm, RGB) it has 11,378,179 parameters at 9 blocks and
    7,837,699 at 6 blocks. Input height and width must be multiples of `size_multiple` = 4.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        ngf: filters of the first convolution; the bottleneck has 4 * ngf.
        n_blocks: residual blocks (the reference uses 9 at 256 px and 6 at 128 px).
        norm: normalization after each convolution.
        use_dropout: dropout (p=0.5) inside each residual block.
        padding_type: padding of the residual blocks' convolutions.
        upsampling: "transpose" (the reference: 3x3 transposed convolutions) or "resize" (nearest-neighbour x2,
            then a 3x3 convolution: no checkerboard artifacts, Odena et al. 2016; same parameter count).
        antialias: the CUT reference's anti-aliased resampling (its default): each stride-2 convolution becomes a
            stride-1 convolution, norm and ReLU followed by a blur-pool `Downsample`, and each upsampling an
            anti-aliased `Upsample` followed by a 3x3 convolution (replaces `upsampling`); same parameter count.
        residual: learn a change of the input rather than the output itself: tanh(atanh(x) + the last convolution's
            output), that convolution initialized to zero (after `init_weights`, see `after_init_weights`), so the
            untrained generator returns its input exactly (a "zero module", as ReZero and ControlNet start their
            branches) and training moves it from the photo towards the style. For short training budgets
            (`configs/personal_style_laptop.yaml`), where a generator that starts from noise is still blurred when
            time runs out. Needs in_channels == out_channels; the same parameters.

    `features(x, layers)` returns the activations after the given layers of `model` (an `nn.Sequential`), the
    encoder features CUT's PatchNCE loss compares. With antialias the layers are numbered as in the CUT reference
    (0 the padded input, 4 and 8 the two downsampling convolutions, 12, 13, ... the residual blocks).

    `set_activation_checkpointing(True)` (`speed.checkpoint_activations`) recomputes each residual block's
    activations in backward instead of keeping them, in `forward` and in `features` alike.
    """

    smoke_test = NetworkSmokeTest({"ngf": 4, "n_blocks": 1}, (3, 32, 32), (3, 32, 32))

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: NormName = "instance",
        use_dropout: bool = False,
        padding_type: PaddingType = "reflect",
        upsampling: Literal["transpose", "resize"] = "transpose",
        antialias: bool = False,
        residual: bool = False,
    ) -> None:
        super().__init__()
        if residual and in_channels != out_channels:
            raise ValueError(f"residual needs in_channels == out_channels, got {in_channels} and {out_channels}")
        if upsampling not in ("transpose", "resize"):
            raise ValueError(f"upsampling must be 'transpose' or 'resize', got {upsampling!r}")
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        self.size_multiple = 4  # two stride-2 downsamplings
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, padding=0, bias=bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(2):  # downsample: (B, ngf, H, W) -> (B, 4 ngf, H/4, W/4)
            c = ngf * 2**i
            stride = 1 if antialias else 2
            layers += [
                nn.Conv2d(c, 2 * c, 3, stride=stride, padding=1, bias=bias),
                norm_layer(norm, 2 * c),
                nn.ReLU(True),
            ]
            layers += [Downsample(2 * c)] if antialias else []
        layers += [ResnetBlock(4 * ngf, padding_type, norm, use_dropout) for _ in range(n_blocks)]
        for i in range(2):  # upsample back to (B, ngf, H, W)
            c = ngf * 2 ** (2 - i)
            if antialias:
                up = [Upsample(c), nn.Conv2d(c, c // 2, 3, padding=1, bias=bias)]
            elif upsampling == "transpose":
                up = [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)]
            else:
                up = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c // 2, 3, padding=1, bias=bias)]
            layers += [*up, norm_layer(norm, c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.residual, self._last = residual, len(layers) - 1  # _last: the final tanh's index
        self.after_init_weights()

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]; H, W multiples of size_multiple."""
        check_size_multiple(x, self.size_multiple, "ResnetGenerator")
        if not self.residual:
            return self.model(x)
        change = x
        for index, layer in enumerate(self.model):  # all but the final tanh (a loop TorchScript can compile)
            if index < self._last:
                change = layer(change)  # (B, C, H, W) at the end
        return torch.tanh(torch.atanh(x.clamp(-0.999, 0.999)) + change)  # inside (-1, 1): atanh(0.999) = 3.8

    @torch.no_grad()
    def after_init_weights(self) -> None:
        """With `residual`, zero the output convolution (called on building and by `init_weights` after drawing)."""
        if self.residual:
            output = self.model[-2]  # the last convolution, before the tanh
            output.weight.zero_()
            output.bias.zero_()

    def features(self, x: Tensor, layers: Sequence[int]) -> list[Tensor]:
        """The activations after each of `layers` (indices into `model`, ascending), computing no further than the
        last of them: [(B, C_l, H_l, W_l)] for CUT's PatchNCE loss."""
        check_size_multiple(x, self.size_multiple, "ResnetGenerator")
        wanted, feats = set(layers), []
        for index, layer in enumerate(self.model):
            x = layer(x)
            if index in wanted:
                feats.append(x)
            if len(feats) == len(wanted):
                break
        return feats
