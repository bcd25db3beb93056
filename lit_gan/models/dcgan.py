"""DCGAN (Radford et al. 2016): learn the distribution of one image domain (a style) from noise."""

import torch
from jsonargparse import lazy_instance
from torch import Tensor, nn

from lit_gan.contracts import FixedSizeNetwork, LatentGenerator
from lit_gan.losses import GeneratorStep, gan_loss
from lit_gan.losses.gan import GANLossName
from lit_gan.models.base import FromNoise, GANModule, SmokeTest
from lit_gan.models.schedules import LRPolicy
from lit_gan.networks import DCGANDiscriminator, DCGANGenerator
from lit_gan.networks.shapes import first_conv, last_conv


class DCGAN(FromNoise, GANModule):
    """A generator mapping noise z ~ N(0, I) to images, and a discriminator telling them from the real images of one
    domain (the data module's "A" images: `data.mode: single`).

    Training follows the PyTorch DCGAN example: per iteration one optimizer step of D on a real batch and a batch of
    fakes (D loss real + fake), then one step of G on the same fakes, at a constant learning rate by default. Sample
    grids show the same fixed noise at every step, and interpolations between fixed pairs of latents. The shared
    arguments (lr, optimizers, lr_policy, ema_decay, init_type, init_gain, generator_losses) are `GANModule`'s.

    Args:
        generator: noise -> image network; its `nz` and `image_size` set the latent size and the image size.
        discriminator: image -> logit network for images of the generator's size.
        gan_mode: adversarial loss.
        sample_grid: the fixed-noise sample grid is sample_grid x sample_grid images.
        interpolation_rows: pairs of fixed latents in the interpolation grid, one per row.
        interpolation_steps: images per row of the interpolation grid, endpoints included.
    """

    default_lr_policy = LRPolicy("constant", n_epochs_decay=0)
    smoke_test = SmokeTest(
        model={
            "generator": {
                "class_path": "lit_gan.networks.DCGANGenerator",
                "init_args": {"nz": 8, "ngf": 4, "image_size": 32},
            },
            "discriminator": {
                "class_path": "lit_gan.networks.DCGANDiscriminator",
                "init_args": {"ndf": 4, "image_size": 32},
            },
            "sample_grid": 2,
            "interpolation_rows": 2,
            "interpolation_steps": 3,
        },
        data={"mode": "single", "load_size": 32, "batch_size": 2},
    )

    def __init__(
        self,
        generator: nn.Module = lazy_instance(DCGANGenerator),
        discriminator: nn.Module = lazy_instance(DCGANDiscriminator),
        gan_mode: GANLossName = "vanilla",
        sample_grid: int = 8,
        interpolation_rows: int = 6,
        interpolation_steps: int = 8,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if sample_grid < 1 or interpolation_rows < 1 or interpolation_steps < 2:
            raise ValueError("model: need sample_grid >= 1, interpolation_rows >= 1 and interpolation_steps >= 2")
        self.add_networks({"samples": generator}, {"A": discriminator})
        _check_pair(self.G, self.D)  # after add_networks: a lazy_instance has its attributes only once built
        self.gan_loss = gan_loss(gan_mode)
        self.nz: int = self.G.nz
        rng = torch.Generator().manual_seed(torch.initial_seed())  # the run's seed: the same grids on resume
        self.register_buffer("fixed_noise", torch.randn(sample_grid**2, self.nz, generator=rng))
        self.register_buffer("interpolation_ends", torch.randn(2, interpolation_rows, self.nz, generator=rng))

    @property
    def image_size(self) -> int:
        """Height and width of the images, which the data's crop_size must equal."""
        return self.G.image_size

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real = batch["A"]  # (B, C, S, S)
        opt_g, opt_d = self.optimizers()
        fake = self.G(torch.randn(real.shape[0], self.nz, device=self.device, dtype=real.dtype))

        d_loss = self.discriminator_loss(self.D, real, fake)  # D first, as the DCGAN example: real + fake
        self.step_discriminator(opt_d, d_loss)

        with self.frozen(self.discriminators):
            step = GeneratorStep(fake, real, None, self.D, d_fake=fake, d_real=real, paired=False)
            g_losses = self.generator_losses_against(step, "G")
            self.step_generator(opt_g, sum(g_losses.values()))

        self.log_losses({**g_losses, "D": d_loss}, batch_size=real.shape[0])

    def evaluation_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The discriminator's loss on held-out real images: rising while train/D falls means D is memorising the
        training images (the overfitting that adaptive augmentation reacts to)."""
        return {"D_real": self.gan_loss.real(self.D(batch["A"]))}

    def sample_images(self, batch: dict[str, Tensor] | None = None) -> dict[str, list[Tensor]]:
        """Grid columns (each (N, C, S, S)): "samples" from the fixed noise, "interpolation" between fixed latents
        (one row per pair, spherical interpolation). `batch` (real images) is not needed."""
        G, hp = self.translator("samples"), self.hparams
        samples = G(self.fixed_noise)  # (grid^2, C, S, S), row-major
        columns = [samples[c :: hp.sample_grid] for c in range(hp.sample_grid)]
        start, end = self.interpolation_ends
        steps = torch.linspace(0, 1, hp.interpolation_steps, device=self.device)
        interpolation = [G(slerp(start, end, float(t))) for t in steps]
        return {"samples": columns, "interpolation": interpolation}


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation between latents a and b (each (N, nz)) at fraction t; stays on the Gaussian shell."""
    cos = (torch.nn.functional.normalize(a, dim=1) * torch.nn.functional.normalize(b, dim=1)).sum(1, keepdim=True)
    omega = torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7))  # (N, 1)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def _check_pair(generator: nn.Module, discriminator: nn.Module) -> None:
    """Fail early, naming the config key, if D cannot judge G's images."""
    if not isinstance(generator, LatentGenerator):
        raise ValueError("model.generator must be a noise -> image network with `nz` and `image_size` attributes")
    g_size = generator.image_size
    d_size = discriminator.image_size if isinstance(discriminator, FixedSizeNetwork) else g_size
    if g_size != d_size:
        raise ValueError(
            f"model.discriminator.image_size ({d_size}) differs from model.generator.image_size ({g_size})"
        )
    g_out, d_in = last_conv(generator).out_channels, first_conv(discriminator).in_channels
    if g_out != d_in:
        raise ValueError(
            f"model.discriminator.in_channels ({d_in}) differs from the generator's output channels ({g_out})"
        )
