import torch

from lit_gan.networks import PixelDiscriminator


def test_parameter_count_with_batch_norm():
    # 8,705 with instance norm (FACTS.md); batch norm adds 2 * 128 affine parameters and, as in the reference, drops
    # the biases of the second (128) and last (1) convolutions.
    assert sum(p.numel() for p in PixelDiscriminator(norm="batch").parameters()) == 8_705 + 256 - 128 - 1


def test_each_score_depends_on_its_own_pixel_only():
    net = PixelDiscriminator(ndf=4).eval()
    x = torch.randn(1, 3, 5, 5)
    y = x.clone()
    y[0, :, 2, 3] += 1
    changed = (net(x) != net(y))[0, 0]
    assert changed[2, 3] and changed.sum() == 1
