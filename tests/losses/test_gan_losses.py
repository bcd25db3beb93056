import functools
import typing

import pytest
import torch
import torch.nn.functional as F

from lit_gan.losses import GAN_LOSSES, gan_loss, gradient_penalty, register_gan_loss
from lit_gan.losses.gan import GANLossName, LSGANLoss
from lit_gan.networks import PatchGANDiscriminator


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


def test_hinge_values():
    loss = gan_loss("hinge")
    pred = torch.tensor([-2.0, 0.5, 3.0])
    assert loss.real(pred).item() == pytest.approx((3.0 + 0.5 + 0.0) / 3)
    assert loss.fake(pred).item() == pytest.approx((0.0 + 1.5 + 4.0) / 3)
    assert loss.generator(pred).item() == pytest.approx(-1.5 / 3)


def test_wasserstein_terms():
    loss = gan_loss("wgangp")
    pred = torch.tensor([-2.0, 0.5, 3.0])
    assert loss.real(pred).item() == pytest.approx(-0.5)
    assert loss.fake(pred).item() == pytest.approx(0.5)
    assert loss.generator(pred).item() == pytest.approx(-0.5)


def test_drift_term_adds_epsilon_times_the_mean_squared_real_score():
    loss = gan_loss("wgangp_drift")
    pred = torch.tensor([-2.0, 0.5, 3.0])
    assert loss.real(pred).item() == pytest.approx(-0.5 + 0.001 * (4.0 + 0.25 + 9.0) / 3)
    assert loss.fake(pred).item() == pytest.approx(0.5)
    assert loss.generator(pred).item() == pytest.approx(-0.5)


@pytest.mark.parametrize("name", sorted(set(GAN_LOSSES) - {"wgangp", "wgangp_drift"}))
def test_only_wgangp_has_a_penalty(name):
    real = torch.randn(2, 3, 4, 4)
    assert gan_loss(name).penalty(lambda x: x.mean((1, 2, 3)), real, real) is None


def test_gradient_penalty_of_a_linear_critic_is_exact():
    # D(x) = <w, x>: its gradient is w everywhere, so the penalty is (||w|| - 1)^2 on any interpolate.
    w = torch.randn(3, 4, 4)

    def critic(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)
    unit = w / w.norm()
    assert gradient_penalty(lambda x: (x * unit).flatten(1).sum(1), real, fake).item() == pytest.approx(0, abs=1e-10)
    assert gan_loss("wgangp").penalty(critic, real, fake).item() == pytest.approx(10 * (w.norm().item() - 1) ** 2)


@pytest.mark.parametrize("k", [1, 4])
def test_gradient_penalty_of_downscaled_images_is_the_full_resolution_one(k):
    """The Progressive GAN's official critic takes the R x R image and box-downscales it to r x r first: the penalty on
    the r x r images with `downscaled=k` must equal the one taken literally on the upscaled images, at every k."""
    w = torch.randn(3, 4, 4)

    def critic(x):  # on r x r images
        return (x * w).flatten(1).sum(1)

    def full_resolution_critic(x):  # on R x R images, R = k r
        return critic(F.avg_pool2d(x, k))

    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    torch.manual_seed(0)
    ours = gradient_penalty(critic, real, fake, downscaled=k).item()
    torch.manual_seed(0)  # the same interpolation weights
    up = functools.partial(F.interpolate, scale_factor=k, mode="nearest")
    literal = gradient_penalty(full_resolution_critic, up(real), up(fake)).item()
    assert ours == pytest.approx(literal, rel=1e-5)
    assert ours == pytest.approx((w.norm().item() / k - 1) ** 2, rel=1e-5)  # the linear critic's exact penalty
    assert gan_loss("wgangp").penalty(critic, real, fake, k).item() == pytest.approx(10 * ours, rel=1e-5)


def test_gradient_penalty_changes_the_critics_gradients():
    torch.manual_seed(0)
    critic = PatchGANDiscriminator(ndf=4, n_layers=2, norm="none")
    real, fake = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    loss = gan_loss("wgangp")

    def grads(with_penalty: bool) -> list[torch.Tensor]:
        critic.zero_grad()
        total = loss.real(critic(real)) + loss.fake(critic(fake))
        if with_penalty:
            total = total + loss.penalty(critic, real, fake)
        total.backward()
        return [p.grad.clone() for p in critic.parameters()]

    without, with_gp = grads(False), grads(True)
    assert all(torch.isfinite(g).all() for g in with_gp)
    assert any(not torch.allclose(a, b) for a, b in zip(without, with_gp, strict=True))


@pytest.mark.parametrize("name", sorted(GAN_LOSSES))
def test_discriminator_loss_is_weighted_terms_plus_penalty(name):
    torch.manual_seed(0)
    critic = PatchGANDiscriminator(ndf=4, n_layers=2, norm="none")
    real, fake = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32, requires_grad=True)
    loss = gan_loss(name)
    torch.manual_seed(1)  # the penalty's interpolation draws
    total = loss.discriminator(critic, real, fake, weight=0.5)
    torch.manual_seed(1)
    penalty = loss.penalty(critic, real, fake.detach())
    expected = (loss.real(critic(real)) + loss.fake(critic(fake.detach()))) * 0.5
    expected = expected if penalty is None else expected + penalty
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    total.backward()
    assert fake.grad is None  # the discriminator's loss never reaches the generator
