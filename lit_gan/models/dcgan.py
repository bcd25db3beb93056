"""DCGAN (Radford et al. 2016): learn the distribution of one image domain (a style) from noise."""

import copy

import torch
from jsonargparse import lazy_instance
from torch import Tensor, nn

from lit_gan.losses import discriminate_and_match, gan_loss
from lit_gan.losses.gan import GANLossName
from lit_gan.models.base import GANModule, first_conv, last_conv
from lit_gan.models.schedules import LRPolicyName
from lit_gan.networks import DCGANDiscriminator, DCGANGenerator, init_weights
from lit_gan.networks.init import InitName


class DCGAN(GANModule):
    """A generator G mapping noise z ~ N(0, I) to images, and a discriminator D telling them from the real images of
    one domain (the data module's "A" images: `data.mode: single`).

    Training follows the PyTorch DCGAN example: per iteration one Adam step of D on a real batch and a batch of
    fakes (D loss real + fake), then one Adam step of G on the same fakes. `global_step` counts iterations.
    Sample grids show the same fixed noise at every step, and interpolations between fixed pairs of latents.

    Args:
        generator: noise -> image network; its `nz` and `image_size` set the latent size and the image size.
        discriminator: image -> logit network for images of the generator's size.
        gan_mode: adversarial loss.
        lambda_feature_matching: weight of matching D's mean intermediate features of real and generated images
            (Salimans et al. 2016; 0 disables it).
        lr: initial Adam learning rate.
        betas: Adam betas.
        lr_policy: learning-rate policy (see `lit_gan.models.schedules`); DCGAN trains at a constant rate.
        n_epochs: epochs at the initial learning rate ("linear"); n_epochs + n_epochs_decay is the run ("cosine").
        n_epochs_decay: epochs over which the learning rate decays linearly towards zero ("linear").
        lr_step_epochs: epochs between x0.1 decays ("step").
        ema_decay: keep an exponential moving average of the generator with this decay (e.g. 0.999) and use it for
            samples and evaluation; null disables it.
        sample_grid: the fixed-noise sample grid is sample_grid x sample_grid images.
        interpolation_rows: pairs of fixed latents in the interpolation grid, one per row.
        interpolation_steps: images per row of the interpolation grid, endpoints included.
        init_type: weight initialization of both networks.
        init_gain: scale of the weight initialization.
    """

    def __init__(
        self,
        generator: nn.Module = lazy_instance(DCGANGenerator),
        discriminator: nn.Module = lazy_instance(DCGANDiscriminator),
        gan_mode: GANLossName = "vanilla",
        lambda_feature_matching: float = 0.0,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        lr_policy: LRPolicyName = "constant",
        n_epochs: int = 100,
        n_epochs_decay: int = 0,
        lr_step_epochs: int = 50,
        ema_decay: float | None = None,
        sample_grid: int = 8,
        interpolation_rows: int = 6,
        interpolation_steps: int = 8,
        init_type: InitName = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        self.save_config("generator", "discriminator")
        if sample_grid < 1 or interpolation_rows < 1 or interpolation_steps < 2:
            raise ValueError("model: need sample_grid >= 1, interpolation_rows >= 1 and interpolation_steps >= 2")
        self.G = init_weights(copy.deepcopy(generator), init_type, init_gain)
        self.D = init_weights(copy.deepcopy(discriminator), init_type, init_gain)
        _check_pair(self.G, self.D)  # after init_weights: a lazy_instance has its attributes only once built
        self.gan_loss = gan_loss(gan_mode)
        self.nz: int = self.G.nz
        rng = torch.Generator().manual_seed(torch.initial_seed())  # the run's seed: the same grids on resume
        self.register_buffer("fixed_noise", torch.randn(sample_grid**2, self.nz, generator=rng))
        self.register_buffer("interpolation_ends", torch.randn(2, interpolation_rows, self.nz, generator=rng))
        self.init_ema("G")

    @property
    def image_size(self) -> int:
        """Height and width of the images, which the data's crop_size must equal."""
        return self.G.image_size

    def forward(self, z: Tensor) -> Tensor:
        """(B, nz) latents -> (B, C, S, S) images in [-1, 1]."""
        return self.inference_generator("G")(z)

    def metric_directions(self) -> dict[str, tuple[str | None, str]]:
        return {"samples": (None, "A")}

    def generate(self, direction: str, source: Tensor) -> Tensor:
        seeded = (torch.Generator().manual_seed(int(i)) for i in source)  # on the CPU: alike on every device
        z = torch.stack([torch.randn(self.nz, generator=g) for g in seeded])  # (B, nz)
        return self(z.to(self.device))

    def configure_optimizers(self):
        return self.adam_pair(self.G.parameters(), self.D.parameters())

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """real + fake terms, as the DCGAN example, plus the loss's penalty (WGAN-GP)."""
        return self.gan_loss.discriminator(self.D, real, fake)

    def generator_losses(self, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        lam = self.hparams.lambda_feature_matching
        if lam <= 0:
            return {"G": self.gan_loss.generator(self.D(fake))}
        pred, fm = discriminate_and_match(self.D, fake, real, paired=False)
        return {"G": self.gan_loss.generator(pred), "G_FM": fm * lam}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real = batch["A"]  # (B, C, S, S)
        opt_g, opt_d = self.optimizers()
        fake = self.G(torch.randn(real.shape[0], self.nz, device=self.device, dtype=real.dtype))

        d_loss = self.discriminator_loss(real, fake)  # D first, as the DCGAN example
        self.step_discriminator(opt_d, d_loss)

        with opt_g.toggle_model():
            g_losses = self.generator_losses(real, fake)
            self.step_generator(opt_g, sum(g_losses.values()))

        self.log_losses({**g_losses, "D": d_loss}, batch_size=real.shape[0])

    def _eval_step(self, batch: dict[str, Tensor], prefix: str) -> None:
        """The discriminator's loss on held-out real images: rising while train/D falls means D is memorising the
        training images (the overfitting that adaptive augmentation reacts to)."""
        real = batch["A"]
        loss = self.gan_loss.real(self.D(real))
        self.log(f"{prefix}/D_real", loss, batch_size=real.shape[0], sync_dist=True)  # over all processes' shares

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def sample_images(self, batch: dict[str, Tensor] | None = None) -> dict[str, list[Tensor]]:
        """Grid columns (each (N, C, S, S)): "samples" from the fixed noise, "interpolation" between fixed latents
        (one row per pair, spherical interpolation). `batch` (real images) is not needed."""
        G, hp = self.inference_generator("G"), self.hparams
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
    for key in ("nz", "image_size"):
        if not hasattr(generator, key):
            raise ValueError(f"model.generator must be a noise -> image network with a `{key}` attribute")
    g_size, d_size = generator.image_size, getattr(discriminator, "image_size", generator.image_size)
    if g_size != d_size:
        raise ValueError(
            f"model.discriminator.image_size ({d_size}) differs from model.generator.image_size ({g_size})"
        )
    g_out, d_in = last_conv(generator).out_channels, first_conv(discriminator).in_channels
    if g_out != d_in:
        raise ValueError(
            f"model.discriminator.in_channels ({d_in}) differs from the generator's output channels ({g_out})"
        )
