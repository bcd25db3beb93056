import pytest
import torch
import torch.nn.functional as F

from lit_gan.networks import init_weights
from lit_gan.networks.color import LUMA, BilateralColorGenerator
from lit_gan.networks.patch_sampler import PatchSampler


def test_it_starts_as_the_identity_at_any_size():
    net = init_weights(BilateralColorGenerator())  # the reference initialisation, then the network's own last word
    for size in [(32, 32), (128, 96), (37, 201)]:
        x = torch.rand(2, 3, *size) * 2 - 1
        torch.testing.assert_close(net(x), x, atol=1e-6, rtol=0)


def set_grid(net: BilateralColorGenerator, matrix: torch.Tensor, bias: torch.Tensor, per_luma=None) -> None:
    """Make the grid one affine transform [matrix | bias] everywhere (or, with `per_luma`, a bias per brightness
    level), whatever the image."""
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        transform = torch.cat([matrix, bias[:, None]], dim=1).flatten() - net.identity.flatten()  # (12,)
        bins = net.luma_bins
        levels = torch.zeros(12, bins) if per_luma is None else per_luma
        net.output.bias.copy_((transform[:, None] + levels).flatten())


def test_every_pixel_is_its_own_colour_through_the_grid_s_affine_transform():
    net = BilateralColorGenerator()
    matrix = torch.tensor([[0.5, 0.1, 0.0], [0.0, 0.8, 0.1], [0.2, 0.0, 0.9]])
    bias = torch.tensor([0.1, -0.05, 0.2])
    set_grid(net, matrix, bias)
    x = torch.rand(1, 3, 24, 40) * 1.2 - 0.6
    expected = (torch.einsum("ij,njhw->nihw", matrix, x) + bias[None, :, None, None]).clamp(-1, 1)
    torch.testing.assert_close(net(x), expected, atol=1e-5, rtol=0)


def test_the_transform_follows_the_brightness_of_each_pixel():
    # A bias that grows with the grid's brightness level: a dark and a bright pixel side by side get their own biases
    # (the grid follows the edge between them instead of blurring it, as a purely spatial grid would).
    net = BilateralColorGenerator(luma_bins=2)
    per_luma = torch.zeros(12, 2)
    per_luma[3::4, 1] = 0.3  # the bias rows (3, 7, 11) at the bright level
    set_grid(net, torch.eye(3), torch.zeros(3), per_luma)
    x = torch.full((1, 3, 16, 16), -1.0)
    x[..., 8:] = 1.0  # left half black (brightness -1: level 0), right half white (brightness 1: level 1)
    y = net(x)
    torch.testing.assert_close(y[..., :8], x[..., :8])  # no change where it is dark
    torch.testing.assert_close(y[..., 8:], torch.ones_like(y[..., 8:]))  # + 0.3, clamped at 1
    grey = torch.zeros(1, 3, 4, 4)  # brightness 0: halfway between the levels
    torch.testing.assert_close(net(grey), torch.full_like(grey, 0.15))
    assert sum(LUMA) == pytest.approx(1.0)


def test_it_learns_a_palette_from_the_first_step():
    # Kaiming-initialised guide network, zero output: the output layer gets a gradient at the first step.
    net = init_weights(BilateralColorGenerator())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    F.mse_loss(net(x), torch.zeros_like(x)).backward()
    assert net.output.weight.grad.abs().sum() > 0 and net.output.bias.grad.abs().sum() > 0


def test_cut_reads_its_guide_features():
    net = BilateralColorGenerator(guide_size=32, grid_size=8, width=4)
    x = torch.rand(2, 3, 48, 40) * 2 - 1
    feats = net.features(x, [0, 1, 2, 3])
    assert [tuple(f.shape) for f in feats] == [(2, 3, 32, 32), (2, 4, 16, 16), (2, 8, 8, 8), (2, 8, 8, 8)]
    assert [f.shape for f in net.features(x, [1, 3])] == [feats[1].shape, feats[3].shape]
    sampler = PatchSampler(channels=16).build([f.shape[1] for f in feats])
    patches, _ = sampler(feats, 10)
    assert [tuple(p.shape) for p in patches] == [(20, 16)] * 4


def test_bad_sizes_are_refused_with_the_rule():
    with pytest.raises(ValueError, match="guide_size = 4 x grid_size"):
        BilateralColorGenerator(guide_size=64, grid_size=8)
    with pytest.raises(ValueError, match="in/out channels 3"):
        BilateralColorGenerator(in_channels=1)


def test_it_exports_with_dynamic_sizes():
    # `lit_gan export` writes .pt2 and ONNX with batch, height and width dynamic: nothing in the grid's slicing may
    # fix them to the example's.
    net = init_weights(BilateralColorGenerator(guide_size=32, grid_size=8, width=4)).eval()
    with torch.no_grad():
        net.output.bias.normal_(0, 0.1)  # not the identity
    dims = {
        "x": {0: torch.export.Dim("batch", max=64), 2: torch.export.Dim("h", min=2), 3: torch.export.Dim("w", min=2)}
    }
    exported = torch.export.export(net, (torch.rand(2, 3, 32, 32) * 2 - 1,), dynamic_shapes=dims)
    x = torch.rand(1, 3, 45, 70) * 2 - 1
    torch.testing.assert_close(exported.module()(x), net(x))
