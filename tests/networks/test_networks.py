import pytest
import torch

from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator, init_weights
from lit_gan.networks.init import WEIGHT_INITS
from lit_gan.networks.norm import NORM_LAYERS


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    ("net", "expected"),
    [
        (lambda: ResnetGenerator(n_blocks=9), 11_378_179),
        (lambda: ResnetGenerator(n_blocks=6), 7_837_699),
        (lambda: PatchGANDiscriminator(), 2_764_737),
        (lambda: PatchGANDiscriminator(in_channels=6, norm="batch"), 2_768_705),
    ],
    ids=["resnet_9blocks", "resnet_6blocks", "patchgan_3layers", "patchgan_pix2pix"],
)
def test_parameter_counts_match_reference(net, expected):
    assert n_params(net()) == expected


@pytest.mark.parametrize("norm", sorted(NORM_LAYERS))
@pytest.mark.parametrize("padding_type", ["reflect", "replicate", "zero"])
def test_resnet_generator_shapes_and_backward(norm, padding_type):
    net = ResnetGenerator(ngf=4, n_blocks=2, norm=norm, padding_type=padding_type, use_dropout=True)
    x = torch.randn(2, 3, 32, 48)
    y = net(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
def test_patchgan_output_map(n_layers):
    net = PatchGANDiscriminator(ndf=4, n_layers=n_layers)
    out = net(torch.randn(2, 3, 64, 64))
    assert out.shape[:2] == (2, 1) and out.shape[2] > 1  # a map of patch scores, not one score


def test_patchgan_70px_receptive_field_output_size():
    # 256 px input -> 30x30 patch map for the reference 70x70 PatchGAN.
    assert PatchGANDiscriminator(ndf=8)(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize("init_type", sorted(WEIGHT_INITS))
def test_init_weights(init_type):
    torch.manual_seed(0)
    net = init_weights(PatchGANDiscriminator(ndf=8, norm="batch"), init_type, 0.02)
    first = net.model[0]
    assert torch.all(first.bias == 0)
    if init_type == "normal":
        assert abs(first.weight.std().item() - 0.02) < 0.005
    bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    assert abs(bn.weight.mean().item() - 1.0) < 0.02 and torch.all(bn.bias == 0)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="norm"):
        ResnetGenerator(norm="group")
    with pytest.raises(ValueError, match="init_type"):
        init_weights(ResnetGenerator(ngf=2, n_blocks=0), "uniform")
