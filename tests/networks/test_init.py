import pytest
import torch
from torch import nn

from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator, UnetGenerator, init_weights
from lit_gan.networks.init import WEIGHT_INITS


@pytest.mark.parametrize("init_type", sorted(WEIGHT_INITS))
def test_init_weights(init_type):
    torch.manual_seed(0)
    net = init_weights(PatchGANDiscriminator(ndf=8, norm="batch"), init_type, 0.02)
    first = net.model[0]
    assert torch.all(first.bias == 0)
    if init_type == "normal":
        assert abs(first.weight.std().item() - 0.02) < 0.005
    bn = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)][0]
    assert abs(bn.weight.mean().item() - 1.0) < 0.02 and torch.all(bn.bias == 0)


def test_sync_batch_norm_is_initialized_like_batch_norm():
    torch.manual_seed(0)
    net = init_weights(UnetGenerator(ngf=8, num_downs=5, norm="syncbatch"))
    norms = [m for m in net.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert norms
    for m in norms:
        assert not torch.all(m.weight == 1) and abs(m.weight.mean().item() - 1.0) < 0.02 and torch.all(m.bias == 0)


def test_unknown_init_type_is_rejected():
    with pytest.raises(ValueError, match="init_type"):
        init_weights(ResnetGenerator(ngf=2, n_blocks=0), "uniform")
