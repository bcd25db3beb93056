import pytest
import torch

from lit_gan.losses import feature_matching_loss, intermediate_features
from lit_gan.networks import PatchGANDiscriminator


def test_collects_every_activation_and_removes_its_hooks():
    D = PatchGANDiscriminator(ndf=4, n_layers=2)
    with intermediate_features(D) as features:
        D(torch.randn(2, 3, 32, 32))
    assert [f.shape[1] for f in features] == [4, 8, 16]  # one LeakyReLU per layer but the output
    D(torch.randn(2, 3, 32, 32))
    assert len(features) == 3  # hooks gone
    assert all(not m._forward_hooks for m in D.modules())


@pytest.mark.parametrize("paired", [True, False])
def test_zero_for_identical_images_and_trains_the_generator_side(paired):
    D = PatchGANDiscriminator(ndf=4, n_layers=2)
    real = torch.randn(2, 3, 32, 32)
    fake = real.clone().requires_grad_(True)
    with torch.no_grad(), intermediate_features(D) as real_features:
        D(real)
    with intermediate_features(D) as fake_features:
        D(fake)
    assert feature_matching_loss(real_features, fake_features, paired).item() == pytest.approx(0, abs=1e-7)
    with intermediate_features(D) as moved:
        D(fake + 0.5)
    loss = feature_matching_loss(real_features, moved, paired)
    loss.backward()
    assert loss.item() > 0 and fake.grad.abs().sum() > 0


def test_unpaired_matches_channel_means_not_images():
    real = [torch.randn(4, 3, 5, 5)]
    shuffled = [real[0].flip(0)]  # same images, another order: same statistics
    assert feature_matching_loss(real, shuffled, paired=False).item() == pytest.approx(0, abs=1e-6)
    assert feature_matching_loss(real, shuffled, paired=True).item() > 0.1


def test_layer_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same non-zero number of layers"):
        feature_matching_loss([torch.zeros(1, 1)], [], paired=True)
