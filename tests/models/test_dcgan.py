import pytest
import torch

from lit_gan.models import DCGAN
from lit_gan.models.dcgan import slerp
from lit_gan.networks import DCGANDiscriminator, DCGANGenerator
from tests.helpers import fit, tiny_args


def tiny_dcgan(**kwargs):
    return DCGAN(DCGANGenerator(nz=8, ngf=4, image_size=32), DCGANDiscriminator(ndf=4, image_size=32), **kwargs)


def test_trains_and_logs():
    cli = fit(tiny_args("--trainer.max_steps=3", model="dcgan"))
    assert cli.trainer.global_step == 3
    assert {"train/G", "train/D", "train/lr_G", "train/lr_D"} <= set(cli.trainer.logged_metrics)


def test_sample_grids_use_fixed_noise_and_interpolate_between_fixed_latents():
    torch.manual_seed(3)
    model = tiny_dcgan(sample_grid=3, interpolation_rows=2, interpolation_steps=4).eval()
    torch.manual_seed(3)
    again = tiny_dcgan(sample_grid=3, interpolation_rows=2, interpolation_steps=4)
    assert torch.equal(model.fixed_noise, again.fixed_noise) and model.fixed_noise.shape == (9, 8)
    with torch.no_grad():
        grids = model.sample_images()
    assert len(grids["samples"]) == 3 and grids["samples"][0].shape == (3, 3, 32, 32)
    assert len(grids["interpolation"]) == 4 and grids["interpolation"][0].shape == (2, 3, 32, 32)
    with torch.no_grad():
        start, end = model.interpolation_ends
        assert torch.allclose(grids["interpolation"][0], model(start), atol=1e-5)
        assert torch.allclose(grids["interpolation"][-1], model(end), atol=1e-5)
        assert torch.equal(grids["samples"][1][0], model(model.fixed_noise)[1])  # row-major: image 1 is column 1
    assert "fixed_noise" in model.state_dict()  # the same grids after a resume


def test_slerp_keeps_the_norm_between_orthogonal_latents():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    mid = slerp(a, b, 0.5)
    assert mid.norm().item() == pytest.approx(3.0) and torch.allclose(slerp(a, b, 0.0), a)


def test_networks_must_agree_on_image_size_and_channels():
    with pytest.raises(ValueError, match="model.discriminator.image_size"):
        DCGAN(DCGANGenerator(image_size=32), DCGANDiscriminator(image_size=64))
    with pytest.raises(ValueError, match="model.discriminator.in_channels"):
        DCGAN(DCGANGenerator(image_size=32, out_channels=1), DCGANDiscriminator(image_size=32))


def test_plateau_needs_a_validation_metric():
    with pytest.raises(ValueError, match="plateau"):
        tiny_dcgan(lr_policy="plateau").configure_optimizers()


def test_wgangp_penalty_changes_the_critics_update():
    torch.manual_seed(0)
    model = tiny_dcgan(gan_mode="wgangp")
    real, fake = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    model.D.zero_grad()
    model.gan_loss.discriminator(model.D, real, fake).backward()
    with_gp = [p.grad.clone() for p in model.D.parameters()]
    model.D.zero_grad()
    (model.gan_loss.real(model.D(real)) + model.gan_loss.fake(model.D(fake))).backward()
    without = [p.grad.clone() for p in model.D.parameters()]
    assert any(not torch.allclose(a, b) for a, b in zip(with_gp, without, strict=True))
