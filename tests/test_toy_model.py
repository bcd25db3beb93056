"""A model defined here, and nowhere else, passes the generic tests that every model of the catalogue runs: the model
API (`GANModule`) is all a new model needs. A least-squares GAN that learns a style's images from noise, with a
tiny MLP generator and a tiny convolutional discriminator, both defined here too."""

import pytest
import torch
from jsonargparse import lazy_instance
from torch import Tensor, nn

import tests.callbacks.test_metrics as metrics_tests
import tests.models.test_gan_module as module_tests
import tests.test_performance as performance_tests
import tests.test_resume_boundaries as resume_tests
from lit_gan.losses import GeneratorStep, gan_loss
from lit_gan.models import GANModule, SmokeTest
from lit_gan.models.base import FromNoise
from tests.helpers import fit, tiny_args


class ToyGenerator(nn.Module):
    """Noise (B, nz) -> (B, 3, image_size, image_size) images in [-1, 1] through one hidden layer."""

    def __init__(self, nz: int = 8, image_size: int = 32, hidden: int = 16) -> None:
        super().__init__()
        self.nz, self.image_size = nz, image_size
        self.net = nn.Sequential(nn.Linear(nz, hidden), nn.ReLU(), nn.Linear(hidden, 3 * image_size**2), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, 3, self.image_size, self.image_size)  # any batch size, also exported


class ToyDiscriminator(nn.Module):
    """(B, 3, H, W) images -> (B, 1, h, w) scores."""

    def __init__(self, ndf: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(ndf, 1, 4, 2, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ToyLSGAN(FromNoise, GANModule):
    """A least-squares GAN on noise: D on real and generated images, then G; samples from fixed noise.

    Args:
        generator: noise -> image network with `nz` and `image_size`.
        discriminator: image -> scores network.
    """

    smoke_test = SmokeTest(
        model={"generator": {"class_path": f"{__name__}.ToyGenerator"}},
        data={"mode": "single", "load_size": 32, "batch_size": 2},
    )

    def __init__(
        self,
        generator: nn.Module = lazy_instance(ToyGenerator),
        discriminator: nn.Module = lazy_instance(ToyDiscriminator),
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.add_networks({"samples": generator}, {"A": discriminator})
        self.gan_loss = gan_loss("lsgan")
        self.nz: int = self.generators["samples"].nz  # FromNoise: directions, generate, G and D from it
        self.register_buffer("fixed_noise", torch.randn(4, self.nz))

    @property
    def image_size(self) -> int:
        return self.generators["samples"].image_size

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real = batch["A"]
        G, D = self.generators["samples"], self.discriminators["A"]
        opt_g, opt_d = self.optimizers()
        fake = G(torch.randn(len(real), G.nz, device=self.device, dtype=real.dtype))
        d_loss = self.discriminator_loss(D, real, fake)  # with R1 and adaptive augmentation, when configured
        self.step_discriminator(opt_d, d_loss)
        with opt_g.toggle_model():
            g_losses = self.generator_losses_against(GeneratorStep(fake, real, None, D, fake, real, False), "G")
            self.step_generator(opt_g, sum(g_losses.values()))
        self.log_losses({**g_losses, "D": d_loss}, batch_size=len(real))

    def evaluation_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"D_real": self.gan_loss.real(self.discriminators["A"](batch["A"]))}

    def sample_images(self, batch: dict[str, Tensor] | None = None) -> dict[str, list[Tensor]]:
        return {"samples": [self.translator("samples")(self.fixed_noise)]}


def test_fits_logs_and_writes_sample_grids(tmp_path):
    cli = fit(tiny_args("--trainer.max_epochs=1", model=ToyLSGAN))
    assert cli.trainer.global_step == 3  # 6 images, batch 2
    assert {"train/G", "train/D", "train/lr_G", "val/D_real", "val/fid", "val/kid_mean"} <= set(
        cli.trainer.callback_metrics
    )
    assert list((tmp_path / "runs").rglob("samples/step_0000003_samples.png"))


@pytest.mark.slow  # resume at every boundary
@pytest.mark.parametrize("limit", sorted(resume_tests.LIMITS))
def test_resumes_exactly_at_every_place_in_an_epoch(limit):
    resume_tests.test_resuming_at_every_place_in_an_epoch_ends_as_the_uninterrupted_run(ToyLSGAN, limit)


def test_metrics_do_not_depend_on_the_batch_size():
    metrics_tests.test_results_do_not_depend_on_the_batch_size(ToyLSGAN)


def test_bf16_mixed_precision():
    performance_tests.test_bf16_mixed_precision_trains_every_model(ToyLSGAN)


def test_no_host_synchronisation_in_training_steps(monkeypatch):
    performance_tests.test_training_steps_do_not_read_tensors_back_between_logging_steps(ToyLSGAN, monkeypatch)


def test_ema_follows_the_decay_formula(tmp_path):
    module_tests.test_ema_follows_the_decay_formula_for_each_generator_and_is_saved(ToyLSGAN, tmp_path)
