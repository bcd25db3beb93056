import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from lit_gan.networks import (
    DCGANDiscriminator,
    PatchGANDiscriminator,
    PixelDiscriminator,
    apply_spectral_norm,
    init_weights,
)

SPECTRAL_DISCRIMINATORS = [
    lambda: PatchGANDiscriminator(ndf=8, norm="batch", use_spectral_norm=True),
    lambda: DCGANDiscriminator(ndf=8, image_size=32, use_spectral_norm=True),
    lambda: PixelDiscriminator(ndf=8, use_spectral_norm=True),
]


def convs(net: nn.Module) -> list[nn.Conv2d]:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


def largest_singular_value(conv: nn.Conv2d) -> float:
    return torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2).item()


def test_wraps_every_conv2d_once():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 4, 3), nn.Sequential(nn.Conv2d(4, 1, 1)))
    assert apply_spectral_norm(apply_spectral_norm(net)) is net
    assert [parametrize.is_parametrized(m, "weight") for m in (net[0], net[1], net[2][0])] == [True, False, True]
    assert len(net[0].parametrizations.weight) == 1


@pytest.mark.parametrize("build", SPECTRAL_DISCRIMINATORS, ids=["patchgan", "dcgan", "pixel"])
def test_init_weights_draws_the_stored_weight_and_refreshes_the_estimate(build):
    """init_weights writes `parametrizations.weight.original` and re-runs the power iteration, so that even in eval
    mode (no power iteration) each normalized weight has spectral norm ~1."""
    torch.manual_seed(0)
    net = init_weights(build()).eval()
    originals = [conv.parametrizations.weight.original for conv in convs(net)]
    assert abs(torch.cat([w.flatten() for w in originals]).std().item() - 0.02) < 0.002
    assert all(conv.bias is None or torch.all(conv.bias == 0) for conv in convs(net))
    for conv in convs(net):
        assert 1 - 1e-4 < largest_singular_value(conv) < 1.1


@pytest.mark.parametrize("build", SPECTRAL_DISCRIMINATORS, ids=["patchgan", "dcgan", "pixel"])
def test_copies_initialize_independently_and_reload(build):
    """The CycleGAN model deep-copies one discriminator per domain and initializes each copy."""
    torch.manual_seed(0)
    prototype = build()
    first, second = (init_weights(copy.deepcopy(prototype)).eval() for _ in range(2))
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(first(x), second(x))
    second.load_state_dict(first.state_dict())
    torch.testing.assert_close(second(x), first(x))
