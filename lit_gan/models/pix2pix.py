"""pix2pix (Isola et al. 2017): paired image-to-image translation with a conditional GAN."""

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse import lazy_instance
from torch import Tensor, nn

from lit_gan.losses import discriminate_and_match, gan_loss
from lit_gan.losses.gan import GANLossName
from lit_gan.models.base import GANModule, first_conv, last_conv
from lit_gan.models.schedules import LRPolicyName
from lit_gan.networks import PatchGANDiscriminator, UnetGenerator, init_weights
from lit_gan.networks.init import InitName


class Pix2Pix(GANModule):
    """A generator G translating input images to targets, trained with L1 to the paired target and a conditional
    discriminator D that judges (input, output) pairs concatenated on channels.

    Training follows the reference code: per iteration one Adam step of D on (input, target) as real and
    (input, G(input)) as fake, D loss (real + fake) / 2, then one Adam step of G on the adversarial loss plus
    `lambda_L1` * L1(G(input), target). `global_step` counts iterations.

    Args:
        generator: generator architecture (the reference: U-Net 256 with batch norm and dropout).
        discriminator: conditional discriminator; its first convolution must take input + output channels (6 for
            RGB to RGB).
        direction: "AtoB" translates the dataset's A images into its B images; "BtoA" the other way.
        gan_mode: adversarial loss.
        lambda_L1: weight of the L1 loss between the translation and the target.
        lambda_feature_matching: weight of the L1 between D's intermediate features of (input, target) and of
            (input, translation), as pix2pixHD (0 disables it).
        lr: initial Adam learning rate.
        betas: Adam betas.
        lr_policy: learning-rate policy (see `lit_gan.models.schedules`); "plateau" monitors val/L1.
        n_epochs: epochs at the initial learning rate ("linear"); n_epochs + n_epochs_decay is the run ("cosine").
        n_epochs_decay: epochs over which the learning rate decays linearly towards zero ("linear").
        lr_step_epochs: epochs between x0.1 decays ("step").
        ema_decay: keep an exponential moving average of the generator with this decay (e.g. 0.999) and use it for
            samples and evaluation; null disables it.
        dropout_at_inference: keep the generator's dropout active in eval mode, as the original pix2pix does at test
            time (its noise source); samples then vary from call to call.
        init_type: weight initialization of both networks.
        init_gain: scale of the weight initialization.
    """

    val_metric = "val/L1"

    def __init__(
        self,
        generator: nn.Module = lazy_instance(UnetGenerator),
        discriminator: nn.Module = lazy_instance(PatchGANDiscriminator, in_channels=6, norm="batch"),
        direction: Literal["AtoB", "BtoA"] = "AtoB",
        gan_mode: GANLossName = "vanilla",
        lambda_L1: float = 100.0,
        lambda_feature_matching: float = 0.0,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        lr_policy: LRPolicyName = "linear",
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        lr_step_epochs: int = 50,
        ema_decay: float | None = None,
        dropout_at_inference: bool = False,
        init_type: InitName = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        self.save_config("generator", "discriminator")
        g_in, g_out, d_in = (
            first_conv(generator).in_channels,
            last_conv(generator).out_channels,
            first_conv(discriminator),
        )
        if d_in.in_channels != g_in + g_out:
            raise ValueError(
                f"model.discriminator takes {d_in.in_channels} input channels, but pix2pix's discriminator sees the "
                f"input and the output concatenated: set its in_channels to {g_in + g_out}"
            )
        self.G = init_weights(copy.deepcopy(generator), init_type, init_gain)
        self.D = init_weights(copy.deepcopy(discriminator), init_type, init_gain)
        self.gan_loss = gan_loss(gan_mode)
        self.init_ema("G")

    @property
    def size_multiple(self) -> int:
        return getattr(self.G, "size_multiple", 1)

    def train(self, mode: bool = True) -> "Pix2Pix":
        super().train(mode)
        if not mode and self.hparams.dropout_at_inference:
            for net in (self.G, self.inference_generator("G")):
                for module in net.modules():
                    if isinstance(module, nn.Dropout):
                        module.train()
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Translate (B, C, H, W) input images in [-1, 1]."""
        return self.inference_generator("G")(x)

    def metric_directions(self) -> dict[str, tuple[str | None, str]]:
        source, target = self.hparams.direction.split("to")
        return {self.hparams.direction: (source, target)}

    def generate(self, direction: str, source: Tensor) -> Tensor:
        return self(source)

    def configure_optimizers(self):
        return self.adam_pair(self.G.parameters(), self.D.parameters())

    def pair(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(input, target) of a batch, following `direction`."""
        return (batch["A"], batch["B"]) if self.hparams.direction == "AtoB" else (batch["B"], batch["A"])

    def discriminator_loss(self, real_in: Tensor, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """(real + fake) / 2 on (input, output) pairs, as the reference, plus the loss's penalty (WGAN-GP)."""
        real, fake = torch.cat([real_in, real_out], 1), torch.cat([real_in, fake_out], 1)  # (B, 6, H, W)
        return self.gan_loss.discriminator(self.D, real, fake, weight=0.5)

    def generator_losses(self, real_in: Tensor, real_out: Tensor, fake_out: Tensor) -> dict[str, Tensor]:
        hp = self.hparams
        fake = torch.cat([real_in, fake_out], 1)
        losses = {"G_L1": F.l1_loss(fake_out, real_out) * hp.lambda_L1}
        if hp.lambda_feature_matching > 0:
            pred, fm = discriminate_and_match(self.D, fake, torch.cat([real_in, real_out], 1), paired=True)
            losses["G_FM"] = fm * hp.lambda_feature_matching
        else:
            pred = self.D(fake)
        return {"G_GAN": self.gan_loss.generator(pred), **losses}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real_in, real_out = self.pair(batch)
        opt_g, opt_d = self.optimizers()
        fake_out = self.G(real_in)  # (B, C, H, W)

        d_loss = self.discriminator_loss(real_in, real_out, fake_out)  # D first, as the reference
        self.step_discriminator(opt_d, d_loss)

        with opt_g.toggle_model():  # the discriminator is frozen while the generator learns
            g_losses = self.generator_losses(real_in, real_out, fake_out)
            self.step_generator(opt_g, sum(g_losses.values()))

        self.log_losses({**g_losses, "D": d_loss}, batch_size=real_in.shape[0])

    def _eval_step(self, batch: dict[str, Tensor], prefix: str) -> None:
        real_in, real_out = self.pair(batch)
        loss = F.l1_loss(self(real_in), real_out)
        self.log(f"{prefix}/L1", loss, batch_size=real_in.shape[0], sync_dist=True)  # over all processes' shares

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def sample_images(self, batch: dict[str, Tensor]) -> dict[str, list[Tensor]]:
        """Columns of the sample grid: input | translation | target, each (N, C, H, W)."""
        real_in, real_out = self.pair(batch)
        return {self.hparams.direction: [real_in, self(real_in), real_out]}
