import pytest
import torch

from lit_gan.networks import PatchGANDiscriminator


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
def test_patchgan_output_map(n_layers):
    net = PatchGANDiscriminator(ndf=4, n_layers=n_layers)
    out = net(torch.randn(2, 3, 64, 64))
    assert out.shape[:2] == (2, 1) and out.shape[2] > 1  # a map of patch scores, not one score


def test_patchgan_70px_receptive_field_output_size():
    # 256 px input -> 30x30 patch map for the reference 70x70 PatchGAN.
    assert PatchGANDiscriminator(ndf=8)(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_spectral_norm_flag_is_last_so_positional_calls_keep_working():
    net = PatchGANDiscriminator(3, 4, 2, "batch")
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in net.modules())
    with pytest.raises(ValueError, match="n_layers"):
        PatchGANDiscriminator(n_layers=0)
