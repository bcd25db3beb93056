import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lit_gan.networks import ResnetGenerator, init_weights
from lit_gan.networks.resnet import ResnetBlock

PADDING_MODES = {"reflect": "reflect", "replicate": "replicate", "zero": "constant"}  # -> F.pad's mode


@pytest.mark.parametrize("padding_type", ["reflect", "replicate", "zero"])
def test_padding_types_keep_the_size(padding_type):
    net = ResnetGenerator(ngf=4, n_blocks=2, padding_type=padding_type, use_dropout=True)
    x = torch.randn(2, 3, 32, 48)
    y = net(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("padding_type", sorted(PADDING_MODES))
def test_padding_type_builds_its_padding(padding_type):
    """Every residual block's 3x3 convolutions are padded by `padding_type`: a ReflectionPad2d/ReplicationPad2d before
    an unpadded convolution, or the convolution's own zero padding."""
    net = ResnetGenerator(ngf=2, n_blocks=2, padding_type=padding_type)
    blocks = [m for m in net.modules() if isinstance(m, ResnetBlock)]
    assert len(blocks) == 2
    pad_types = (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ConstantPad2d)
    for block in blocks:
        layers = [m for m in block.modules() if isinstance(m, (nn.Conv2d, *pad_types))]
        convs = [m for m in layers if isinstance(m, nn.Conv2d)]
        assert len(convs) == 2 and all(c.padding_mode == "zeros" for c in convs)
        if padding_type == "zero":
            assert layers == convs and all(c.padding == (1, 1) for c in convs)
        else:
            pad = nn.ReflectionPad2d if padding_type == "reflect" else nn.ReplicationPad2d
            assert [type(m) for m in layers] == [pad, nn.Conv2d, pad, nn.Conv2d]
            assert all(m.padding == (1, 1, 1, 1) for m in layers[::2]) and all(c.padding == (0, 0) for c in convs)


@pytest.mark.parametrize("padding_type", sorted(PADDING_MODES))
def test_residual_block_computes_its_padding(padding_type):
    """A residual block (no norm, no dropout) equals x + conv(pad(relu(conv(pad(x))))) with F.pad in its mode."""
    torch.manual_seed(0)
    block = ResnetBlock(3, padding_type, norm="none", use_dropout=False)
    conv1, conv2 = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    x = torch.randn(2, 3, 6, 7)
    mode = PADDING_MODES[padding_type]
    h = F.relu(F.conv2d(F.pad(x, (1, 1, 1, 1), mode=mode), conv1.weight, conv1.bias))
    expected = x + F.conv2d(F.pad(h, (1, 1, 1, 1), mode=mode), conv2.weight, conv2.bias)
    torch.testing.assert_close(block(x), expected)


def test_padding_types_differ_at_the_border_only():
    """With equal weights, the three padding types give the same block output inside (two 3x3 convolutions: 2 px from
    the border) and different outputs on the border, so none of them is silently ignored."""
    torch.manual_seed(0)
    blocks = {p: ResnetBlock(3, p, norm="none", use_dropout=False) for p in PADDING_MODES}
    weights = list(blocks["reflect"].parameters())
    for block in blocks.values():
        with torch.no_grad():
            for p, w in zip(block.parameters(), weights, strict=True):
                p.copy_(w)
    x = torch.randn(1, 3, 8, 8)
    out = {p: block(x).detach() for p, block in blocks.items()}
    for a, b in [("reflect", "replicate"), ("reflect", "zero"), ("replicate", "zero")]:
        torch.testing.assert_close(out[a][..., 2:-2, 2:-2], out[b][..., 2:-2, 2:-2])
        for border in (out[a] - out[b])[..., 0, :], (out[a] - out[b])[..., -1, :], (out[a] - out[b])[..., :, 0]:
            assert border.abs().max() > 1e-3, (a, b)


def test_size_multiple():
    net = ResnetGenerator(ngf=2, n_blocks=0)
    assert net.size_multiple == 4
    assert net(torch.zeros(1, 3, 4, 12)).shape == (1, 3, 4, 12)
    with pytest.raises(ValueError, match="multiples of 4, got 30x32"):
        net(torch.zeros(1, 3, 30, 32))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="norm"):
        ResnetGenerator(norm="group")
    with pytest.raises(ValueError, match="n_blocks"):
        ResnetGenerator(n_blocks=-1)


def test_resize_upsampling_has_no_transposed_convolution_and_the_same_parameters():
    transpose, resize = ResnetGenerator(ngf=8, n_blocks=1), ResnetGenerator(ngf=8, n_blocks=1, upsampling="resize")
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in resize.modules())
    assert sum(p.numel() for p in resize.parameters()) == sum(p.numel() for p in transpose.parameters())
    assert resize(torch.randn(2, 3, 36, 28)).shape == (2, 3, 36, 28)
    with pytest.raises(ValueError, match="upsampling"):
        ResnetGenerator(upsampling="bilinear")


def test_residual_generator_starts_as_the_identity_and_learns_a_change():
    """residual: the untrained generator (after lit_gan's weight initialization too) returns its input, with the same
    parameters as without; only the zeroed output convolution gets a gradient at first, then the rest does."""
    plain, residual = ResnetGenerator(ngf=4, n_blocks=1), ResnetGenerator(ngf=4, n_blocks=1, residual=True)
    assert [p.shape for p in residual.parameters()] == [p.shape for p in plain.parameters()]
    x = torch.rand(2, 3, 16, 16) * 1.8 - 0.9
    for init in ("normal", "xavier"):
        init_weights(residual, init, 0.02)
        torch.testing.assert_close(residual(x), x)
    optimizer = torch.optim.Adam(residual.parameters(), lr=0.01)
    (residual(x) - 0.5).square().mean().backward()
    with_gradient = {n for n, p in residual.named_parameters() if p.grad is not None and p.grad.any()}
    assert with_gradient == {"model.18.weight", "model.18.bias"}  # the output convolution
    optimizer.step()
    optimizer.zero_grad()
    (residual(x) - 0.5).square().mean().backward()
    assert all(p.grad.any() for n, p in residual.named_parameters() if "bias" not in n)
    out = residual(x)
    assert (out - x).abs().mean() > 1e-3 and out.abs().max() < 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; export's torchscript format uses it
        torch.testing.assert_close(torch.jit.script(residual.eval())(x), residual(x))
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        ResnetGenerator(in_channels=1, out_channels=3, residual=True)
