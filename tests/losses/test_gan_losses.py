import typing

import pytest
import torch

from lit_gan.losses import GAN_LOSSES, gan_loss, register_gan_loss
from lit_gan.losses.gan import GANLossName, LSGANLoss


def test_config_choices_match_registry():
    assert set(typing.get_args(GANLossName)) == set(GAN_LOSSES)


def test_lsgan_values():
    loss = gan_loss("lsgan")
    pred = torch.tensor([0.0, 1.0, 2.0])
    assert loss.real(pred).item() == pytest.approx((1 + 0 + 1) / 3)
    assert loss.fake(pred).item() == pytest.approx((0 + 1 + 4) / 3)
    assert loss.generator(pred).item() == pytest.approx(loss.real(pred).item())


def test_vanilla_is_bce_with_logits():
    loss = gan_loss("vanilla")
    pred = torch.tensor([-2.0, 0.5, 3.0])
    assert loss.real(pred).item() == pytest.approx(-torch.log(torch.sigmoid(pred)).mean().item(), rel=1e-6)
    assert loss.fake(pred).item() == pytest.approx(-torch.log(1 - torch.sigmoid(pred)).mean().item(), rel=1e-6)


@pytest.mark.parametrize("name", sorted(GAN_LOSSES))
def test_losses_backward(name):
    pred = torch.randn(2, 1, 6, 6, requires_grad=True)
    loss = gan_loss(name)
    (loss.real(pred) + loss.fake(pred) + loss.generator(pred)).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_registry_refuses_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="already registered"):
        register_gan_loss("lsgan")(LSGANLoss)
    with pytest.raises(ValueError, match="lsgan"):
        gan_loss("nope")
