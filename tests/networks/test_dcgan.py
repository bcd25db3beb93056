import pytest
import torch
from torch import nn

from lit_gan.networks import DCGANDiscriminator, DCGANGenerator


def example_generator(nz=100, ngf=64, nc=3):
    """`Generator` of the PyTorch DCGAN example (examples/dcgan/main.py), 64x64 output."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    )  # fmt: skip


def example_discriminator(ndf=64, nc=3):
    """`Discriminator` of the PyTorch DCGAN example, 64x64 input, sigmoid output."""
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
    )  # fmt: skip


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    source_state, target_state = source.state_dict(), target.state_dict()
    assert [v.shape for v in source_state.values()] == [v.shape for v in target_state.values()]
    target.load_state_dict(dict(zip(target_state, source_state.values(), strict=True)))


def test_64px_matches_the_pytorch_example():
    torch.manual_seed(0)
    G, D = DCGANGenerator(nz=8, ngf=4), DCGANDiscriminator(ndf=4)
    ref_G, ref_D = example_generator(nz=8, ngf=4), example_discriminator(ndf=4)
    copy_weights(G, ref_G)
    copy_weights(D, ref_D)
    z = torch.randn(3, 8)
    fake = G(z)
    torch.testing.assert_close(fake, ref_G(z[:, :, None, None]))
    torch.testing.assert_close(torch.sigmoid(D(fake)), ref_D(fake.clone()).view(-1))  # ours returns logits


@pytest.mark.parametrize(("image_size", "first_width"), [(32, 16), (64, 32), (128, 64)])
def test_image_sizes(image_size, first_width):
    G = DCGANGenerator(nz=4, ngf=4, image_size=image_size, out_channels=1)
    D = DCGANDiscriminator(in_channels=1, ndf=4, image_size=image_size)
    assert G.model[0].out_channels == first_width and D.model[-1].in_channels == first_width
    assert G.image_size == D.image_size == image_size and G.nz == 4
    fake = G(torch.randn(2, 4, 1, 1))  # (B, nz, 1, 1) noise works as well as (B, nz)
    assert fake.shape == (2, 1, image_size, image_size)
    assert D(fake).shape == (2,)


@pytest.mark.parametrize("image_size", [16, 48, 100])
def test_image_size_must_be_a_power_of_two_from_32(image_size):
    for cls in (DCGANGenerator, DCGANDiscriminator):
        with pytest.raises(ValueError, match=f"image_size must be a power of two >= 32 .*got {image_size}"):
            cls(image_size=image_size)


def test_discriminator_checks_the_image_size():
    with pytest.raises(ValueError, match=r"image_size=32\) needs 32x32 images, got 64x64"):
        DCGANDiscriminator(ndf=2, image_size=32)(torch.zeros(1, 3, 64, 64))
