import functools

import pytest
import torch
from torch import nn

from lit_gan.networks import UnetGenerator


class ReferenceUnetBlock(nn.Module):
    """`UnetSkipConnectionBlock` of the reference pix2pix code (models/networks.py), condensed but unchanged."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):  # fmt: skip
        super().__init__()
        self.outermost = outermost
        use_bias = (norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer) == nn.InstanceNorm2d
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), norm_layer(inner_nc)
        uprelu, upnorm = nn.ReLU(True), norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            model += [nn.Dropout(0.5)] if use_dropout else []
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def reference_unet(input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout):
    """The reference `UnetGenerator`'s construction (its forward just calls the outermost block)."""
    block = ReferenceUnetBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
    for _ in range(num_downs - 5):
        block = ReferenceUnetBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout)
    block = ReferenceUnetBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
    block = ReferenceUnetBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
    block = ReferenceUnetBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
    return ReferenceUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm_layer=norm_layer)


REFERENCE_NORMS = {
    "batch": functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True),
    "instance": functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False),
}


@pytest.mark.parametrize("norm", sorted(REFERENCE_NORMS))
@pytest.mark.parametrize("num_downs", [5, 6])
def test_matches_the_reference_unet(norm, num_downs):
    """Same tensors in the same state_dict order, same outputs, skip connections included (the reference's in-place
    LeakyReLU makes its skips carry activated features)."""
    torch.manual_seed(0)
    ours = UnetGenerator(2, 3, num_downs=num_downs, ngf=2, norm=norm, use_dropout=False)
    ref = reference_unet(2, 3, num_downs, 2, REFERENCE_NORMS[norm], use_dropout=False)
    ours_state, ref_state = ours.state_dict(), ref.state_dict()
    assert [v.shape for v in ours_state.values()] == [v.shape for v in ref_state.values()]
    ref.load_state_dict(dict(zip(ref_state, ours_state.values(), strict=True)))
    x = torch.randn(2, 2, 2**num_downs, 2 * 2**num_downs)
    for train in (True, False):
        ours.train(train)
        ref.train(train)
        torch.testing.assert_close(ours(x.clone()), ref(x.clone()))


def test_dropout_only_in_the_middle_blocks():
    dropouts = lambda net: sum(isinstance(m, nn.Dropout) for m in net.modules())  # noqa: E731
    assert dropouts(UnetGenerator(num_downs=8, ngf=1)) == 3
    assert dropouts(UnetGenerator(num_downs=5, ngf=1)) == 0
    assert dropouts(UnetGenerator(num_downs=8, ngf=1, use_dropout=False)) == 0
    assert dropouts(reference_unet(3, 3, 8, 1, nn.BatchNorm2d, use_dropout=True)) == 3


def test_size_multiple_and_num_downs():
    assert UnetGenerator(num_downs=8, ngf=1).size_multiple == 256
    assert UnetGenerator(num_downs=7, ngf=1).size_multiple == 128
    with pytest.raises(ValueError, match="num_downs must be >= 5"):
        UnetGenerator(num_downs=4)
    with pytest.raises(ValueError, match="multiples of 32, got 32x48"):
        UnetGenerator(num_downs=5, ngf=1)(torch.zeros(1, 3, 32, 48))


def test_unet_256_reaches_one_pixel_with_batch_of_one():
    """pix2pix trains with batch 1 at 256 px: the innermost layer (1x1) has no norm, so batch norm works."""
    net = UnetGenerator(num_downs=8, ngf=1)
    assert net(torch.randn(1, 3, 256, 256)).shape == (1, 3, 256, 256)
