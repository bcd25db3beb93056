import pytest
import torch

from lit_gan.networks import ResnetGenerator


@pytest.mark.parametrize("padding_type", ["reflect", "replicate", "zero"])
def test_padding_types_keep_the_size(padding_type):
    net = ResnetGenerator(ngf=4, n_blocks=2, padding_type=padding_type, use_dropout=True)
    x = torch.randn(2, 3, 32, 48)
    y = net(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


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
