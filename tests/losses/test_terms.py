"""Generator loss terms from the config (`model.generator_losses`): each one's value, weight and name."""

import pytest
import torch
import torch.nn.functional as F

from lit_gan.losses import FeatureMatching, GeneratorStep
from lit_gan.models import CycleGAN, Pix2Pix
from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator, UnetGenerator


def activations(D: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """D's LeakyReLU outputs on x, in call order (written out here, independently of the hooks in lit_gan)."""
    out, found = x, []
    for layer in D.model:
        out = layer(out)
        if isinstance(layer, torch.nn.LeakyReLU):
            found.append(out)
    return found


def channel_means(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(0, 2, 3))


@pytest.mark.parametrize("paired", [True, False])
def test_feature_matching_has_its_weight_times_the_reference_distance(paired):
    torch.manual_seed(0)
    weight = 7.0
    if paired:  # pix2pix: L1 between the features of each (input, target) and (input, translation) pair
        model = Pix2Pix(
            UnetGenerator(num_downs=5, ngf=4),
            PatchGANDiscriminator(in_channels=6, ndf=4, n_layers=2, norm="instance"),
            generator_losses=[FeatureMatching(weight)],
        )
        D, source, real = model.discriminators["B"], torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
        fake = model.generators["AtoB"](source)
        d_fake, d_real = torch.cat([source, fake], 1), torch.cat([source, real], 1)
    else:  # CycleGAN: squared distance between the features' channel means
        G, D0 = ResnetGenerator(ngf=4, n_blocks=1), PatchGANDiscriminator(ndf=4, n_layers=2)
        model = CycleGAN(G, D0, generator_losses=[FeatureMatching(weight)])
        D, source, real = model.discriminators["B"], torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
        fake = d_fake = model.generators["AtoB"](source)
        d_real = real
    step = GeneratorStep(fake, real, source, D, d_fake=d_fake, d_real=d_real, paired=paired)
    losses = model.generator_losses_against(step, "adv", suffix="_x")

    fake_features, real_features = activations(D, d_fake), activations(D, d_real)
    if paired:
        distances = [F.l1_loss(f, r) for f, r in zip(fake_features, real_features, strict=True)]
    else:
        distances = [((channel_means(f) - channel_means(r)) ** 2).mean() for f, r in zip(fake_features, real_features)]
    assert set(losses) == {"adv", "feature_matching_x"}
    torch.testing.assert_close(losses["feature_matching_x"], weight * torch.stack(distances).mean())
    torch.testing.assert_close(losses["adv"], model.gan_loss.generator(D(d_fake)))  # the same pass as without it
    losses["feature_matching_x"].backward()
    assert fake.grad_fn is not None and any(p.grad is not None for p in model.generators.parameters())


def test_a_term_with_weight_zero_is_left_out():
    model = CycleGAN(
        ResnetGenerator(ngf=4, n_blocks=1), PatchGANDiscriminator(ndf=4, n_layers=2),
        generator_losses=[FeatureMatching(0.0)],
    )  # fmt: skip
    x = torch.randn(1, 3, 32, 32)
    D = model.discriminators["A"]
    step = GeneratorStep(x, x, x, D, d_fake=x, d_real=x, paired=False)
    assert set(model.generator_losses_against(step, "adv")) == {"adv"}


def test_weight_must_not_be_negative():
    with pytest.raises(ValueError, match="FeatureMatching: weight must be >= 0"):
        FeatureMatching(-1.0)
