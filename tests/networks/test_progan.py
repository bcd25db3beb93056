"""The Progressive GAN's networks against direct formulas: equalized learning rate, pixel norm, minibatch standard
deviation, the fade-in blending, and the official networks' parameter counts computed from the official code."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lit_gan.networks.progan import (
    EqualizedConv2d,
    EqualizedLinear,
    ProGANDiscriminator,
    ProGANGenerator,
    minibatch_stddev,
    pixel_norm,
)

TINY = {"image_size": 32, "fmap_base": 64, "fmap_max": 16}


def official_counts(resolution: int, latent: int = 512, channels: int = 3, base: int = 8192, most: int = 512):
    """Parameters of the official G_paper and D_paper (networks.py of tkarras/progressive_growing_of_gans), summed
    layer by layer as that code creates its variables: weights and biases, nf(stage) = min(base / 2^stage, most)."""

    def nf(stage: int) -> int:
        return min(int(base / 2.0**stage), most)

    top = int(math.log2(resolution))
    g = latent * nf(1) * 16 + nf(1)  # 4x4/Dense: weight, and a bias per channel after the reshape to (nf1, 4, 4)
    g += 9 * nf(1) * nf(1) + nf(1)  # 4x4/Conv
    for res in range(3, top + 1):  # Conv0_up (fused upscale + 3x3 conv) and Conv1
        g += 9 * nf(res - 2) * nf(res - 1) + nf(res - 1) + 9 * nf(res - 1) ** 2 + nf(res - 1)
    g += sum(nf(res - 1) * channels + channels for res in range(2, top + 1))  # ToRGB_lod*
    d = sum(channels * nf(res - 1) + nf(res - 1) for res in range(2, top + 1))  # FromRGB_lod*
    for res in range(3, top + 1):  # Conv0 and Conv1_down
        d += 9 * nf(res - 1) ** 2 + nf(res - 1) + 9 * nf(res - 1) * nf(res - 2) + nf(res - 2)
    d += 9 * (nf(1) + 1) * nf(1) + nf(1)  # 4x4/Conv after the minibatch stddev map
    d += nf(1) * 16 * nf(0) + nf(0) + nf(0) + 1  # Dense0, Dense1
    return g, d


def n_params(net) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("resolution", [1024, 256, 32])
def test_parameter_counts_equal_the_official_networks(resolution):
    with torch.device("meta"):
        g, d = ProGANGenerator(image_size=resolution), ProGANDiscriminator(image_size=resolution)
    assert (n_params(g), n_params(d)) == official_counts(resolution)
    if resolution == 1024:  # the paper's Table 2: 23.1M each
        assert (n_params(g), n_params(d)) == (23_079_115, 23_087_249)


def test_parameter_counts_follow_fmap_base_and_latent_size():
    g = ProGANGenerator(nz=64, image_size=64, fmap_base=256, fmap_max=64)
    d = ProGANDiscriminator(image_size=64, fmap_base=256, fmap_max=64)
    assert (n_params(g), n_params(d)) == official_counts(64, latent=64, base=256, most=64)


def test_equalized_learning_rate_draws_unit_normal_weights_and_scales_them_at_run_time():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.02) and not conv.bias.any()
    x = torch.randn(2, 64, 8, 8)
    he = math.sqrt(2) / math.sqrt(64 * 9)  # gain / sqrt(fan_in)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * he, conv.bias, padding=1))
    linear = EqualizedLinear(512, 256, gain=1.0)
    z = torch.randn(4, 512)
    torch.testing.assert_close(linear(z), z @ (linear.weight / math.sqrt(512)).T + linear.bias)
    plain = EqualizedConv2d(64, 32, 3, use_wscale=False)  # without: He's init, used as is
    assert plain.weight.std().item() == pytest.approx(he, rel=0.05)
    torch.testing.assert_close(plain(x), F.conv2d(x, plain.weight, plain.bias, padding=1))


def test_pixel_norm_is_the_formula_and_gives_unit_rms_features():
    x = torch.randn(3, 16, 5, 5) * 7
    expected = x / torch.sqrt((x**2).mean(dim=1, keepdim=True) + 1e-8)
    torch.testing.assert_close(pixel_norm(x), expected)
    torch.testing.assert_close(pixel_norm(x).square().mean(dim=1), torch.ones(3, 5, 5))


@pytest.mark.parametrize(("batch", "group"), [(8, 4), (4, 4), (2, 2), (6, 3)])
def test_minibatch_stddev_is_the_official_formula(batch, group):
    torch.manual_seed(0)
    x = torch.randn(batch, 5, 3, 3)
    out = minibatch_stddev(x, 4)
    assert out.shape == (batch, 6, 3, 3)
    torch.testing.assert_close(out[:, :5], x)
    a = x.numpy().astype(np.float64)
    m = batch // group  # sample i is in group i mod m; its stddev map: the group's std, averaged over C, H, W
    for i in range(batch):
        members = a[[j for j in range(batch) if j % m == i % m]]
        value = np.sqrt(members.var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(out[i, 5].numpy(), np.full((3, 3), value), rtol=1e-5)


def test_generator_fade_in_blends_the_new_resolution_with_the_upsampled_previous_one():
    torch.manual_seed(0)
    G, z = ProGANGenerator(nz=16, **TINY), torch.randn(4, 16)
    G.grow_to(8, 1.0)
    previous = G(z)  # (4, 3, 8, 8)
    G.grow_to(16, 1.0)
    new = G(z)
    for alpha in (0.0, 0.3, 0.75):
        G.grow_to(16, alpha)  # (1 - alpha) * nearest-upsampled 8x8 image + alpha * the 16x16 one
        expected = (1 - alpha) * previous.repeat_interleave(2, 2).repeat_interleave(2, 3) + alpha * new
        torch.testing.assert_close(G(z), expected)


def test_discriminator_fade_in_blends_the_new_block_with_fromrgb_of_the_downscaled_image():
    torch.manual_seed(0)
    D = ProGANDiscriminator(**TINY)
    images = torch.randn(4, 3, 16, 16)
    down = images.reshape(4, 3, 8, 2, 8, 2).mean(dim=(3, 5))  # 2x2 box filter
    D.grow_to(8, 1.0)
    low = D(down)
    D.grow_to(16, 0.0)  # alpha 0: the previous resolution's path alone
    torch.testing.assert_close(D(images), low)
    alpha = 0.4
    D.grow_to(16, alpha)
    first = D.resolution_log2 - 4  # the 16x16 layers' index: fromRGB, then the block
    new = D.blocks[first](F.leaky_relu(D.from_rgb[first](images), 0.2))  # (4, C, 8, 8)
    old = F.leaky_relu(D.from_rgb[first + 1](down), 0.2)  # the 8x8 fromRGB of the downscaled image
    x = alpha * new + (1 - alpha) * old
    for block in D.blocks[first + 1 :]:
        x = block(x)
    torch.testing.assert_close(D(images), D.output(x))


def test_grow_to_refuses_resolutions_the_network_does_not_have():
    G = ProGANGenerator(nz=8, **TINY)
    with pytest.raises(ValueError, match="above this network's image_size 32"):
        G.grow_to(64)
    with pytest.raises(ValueError, match="power of two"):
        G.grow_to(12)
    with pytest.raises(ValueError, match="alpha"):
        G.grow_to(16, 1.5)
    with pytest.raises(ValueError, match="image_size must be a power of two"):
        ProGANDiscriminator(image_size=48)
    D = ProGANDiscriminator(**TINY)
    D.grow_to(8)
    with pytest.raises(ValueError, match="resolution 8"):
        D(torch.zeros(1, 3, 16, 16))


def test_generator_outputs_are_clipped_in_eval_mode_only():
    torch.manual_seed(0)
    G = ProGANGenerator(nz=8, **TINY)
    with torch.no_grad():
        for to_rgb in G.to_rgb:
            to_rgb.bias.fill_(5.0)  # outputs far outside [-1, 1]
        raw = G.train()(torch.randn(2, 8))
        assert raw.abs().max() > 1
        torch.testing.assert_close(G.eval()(torch.randn(2, 8)).abs().max(), torch.tensor(1.0))
