import math

import pytest
import torch
from torch import nn

from lit_gan.networks import ResnetGenerator, UnetGenerator, init_weights
from lit_gan.networks.init import WEIGHT_INITS


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    """torch's (and the reference's) fan_in and fan_out: dim 1 and dim 0 times the kernel size (for a transposed
    convolution, whose weight is (C_in, C_out, k, k), dim 1 is its output channels, as torch counts it)."""
    receptive = weight[0][0].numel()
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def _expected_std(init_type: str, weight: torch.Tensor, gain: float) -> float:
    fan_in, fan_out = _fans(weight)
    return {
        "normal": gain,
        "xavier": gain * math.sqrt(2.0 / (fan_in + fan_out)),
        "kaiming": math.sqrt(2.0 / fan_in),  # a=0, mode fan_in; the reference ignores the gain here
    }[init_type]


def _layers() -> nn.Sequential:
    """One of each kind init_weights draws: convolution, transposed convolution, linear, batch norm, with torch's
    default (nonzero) biases and batch-norm parameters set to values no initializer would leave."""
    net = nn.Sequential(
        nn.Conv2d(16, 32, 3), nn.ConvTranspose2d(32, 16, 4), nn.Linear(64, 128), nn.BatchNorm2d(1024)
    )  # fmt: skip
    with torch.no_grad():
        net[3].weight.fill_(3.0)
        net[3].bias.fill_(3.0)
    return net


@pytest.mark.parametrize("gain", [0.02, 0.5])
@pytest.mark.parametrize("init_type", sorted(WEIGHT_INITS))
def test_init_weights(init_type, gain):
    """Each init type draws the distribution the reference code draws: normal N(0, gain); xavier normal with std
    gain * sqrt(2 / (fan_in + fan_out)); kaiming normal (fan_in) with std sqrt(2 / fan_in), whatever the gain;
    orthogonal with W W^T = gain^2 I for the (C_out, C_in * k * k) matrix (W^T W where it has more rows). Every bias
    is zero; batch norm's weights are N(1, gain), its biases zero."""
    torch.manual_seed(0)
    net = init_weights(_layers(), init_type, gain)
    for layer in net[:3]:
        w = layer.weight.detach()
        assert torch.all(layer.bias == 0), type(layer).__name__
        if init_type == "orthogonal":
            rows = w.flatten(1)  # (dim 0, the rest): the matrix torch's orthogonal_ makes orthogonal
            gram = rows @ rows.T if rows.shape[0] <= rows.shape[1] else rows.T @ rows
            torch.testing.assert_close(gram, gain**2 * torch.eye(len(gram)), atol=gain**2 * 1e-4, rtol=0)
            continue
        std = _expected_std(init_type, w, gain)
        n = w.numel()  # 4608 .. 8192 draws: the sample std is within ~1% of the true one
        assert abs(w.mean().item()) < 4 * std / math.sqrt(n), type(layer).__name__
        assert w.std().item() == pytest.approx(std, rel=0.06), type(layer).__name__
        within_one_std = (w.abs() < std).float().mean().item()  # normal: 0.683; a uniform draw would give 0.577
        assert within_one_std == pytest.approx(0.683, abs=0.03), type(layer).__name__
    bn = net[3]
    assert torch.all(bn.bias == 0)
    assert abs(bn.weight.mean().item() - 1.0) < 4 * gain / math.sqrt(bn.num_features)
    assert (bn.weight - 1).std().item() == pytest.approx(gain, rel=0.1)


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
