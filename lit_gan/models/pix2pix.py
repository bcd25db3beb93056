"""pix2pix (Isola et al. 2017): paired image-to-image translation with a conditional GAN."""

from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse import lazy_instance
from torch import Tensor, nn

from lit_gan.contracts import Direction
from lit_gan.losses import GeneratorStep, gan_loss
from lit_gan.losses.gan import GANLossName
from lit_gan.models.base import GANModule, SmokeTest
from lit_gan.networks import PatchGANDiscriminator, UnetGenerator
from lit_gan.networks.shapes import first_conv, last_conv


class Pix2Pix(GANModule):
    """A generator translating input images to targets, trained with L1 to the paired target, and a conditional
    discriminator that judges (input, output) pairs concatenated on channels.

    Training follows the reference code: per iteration one optimizer step of D on (input, target) as real and
    (input, G(input)) as fake, D loss (real + fake) / 2, then one step of G on the adversarial loss plus
    `lambda_L1` * L1(G(input), target). "plateau" LR policies monitor val/L1. The shared arguments (lr, optimizers,
    lr_policy, ema_decay, init_type, init_gain, generator_losses) are `GANModule`'s; `FeatureMatching` is
    pix2pixHD's paired feature matching here.

    Args:
        generator: generator architecture (the reference: U-Net 256 with batch norm and dropout).
        discriminator: conditional discriminator; its first convolution must take input + output channels (6 for
            RGB to RGB).
        direction: "AtoB" translates the dataset's A images into its B images; "BtoA" the other way.
        gan_mode: adversarial loss.
        lambda_L1: weight of the L1 loss between the translation and the target.
        dropout_at_inference: keep the generator's dropout active in eval mode, as the original pix2pix does at test
            time (its noise source); samples then vary from call to call.
    """

    val_metric = "val/L1"
    smoke_test = SmokeTest(
        model={
            "generator": {"class_path": "lit_gan.networks.UnetGenerator", "init_args": {"num_downs": 5, "ngf": 4}},
            "discriminator": {
                "class_path": "lit_gan.networks.PatchGANDiscriminator",
                "init_args": {"in_channels": 6, "ndf": 4, "n_layers": 2, "norm": "batch"},
            },
        },
        data={"mode": "aligned"},
    )

    def __init__(
        self,
        generator: nn.Module = lazy_instance(UnetGenerator),
        discriminator: nn.Module = lazy_instance(PatchGANDiscriminator, in_channels=6, norm="batch"),
        direction: Literal["AtoB", "BtoA"] = "AtoB",
        gan_mode: GANLossName = "vanilla",
        lambda_L1: float = 100.0,
        dropout_at_inference: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
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
        self.direction, self.target = direction, self.directions()[direction].target
        self.add_networks({direction: generator}, {self.target: discriminator})
        self.gan_loss = gan_loss(gan_mode)

    def train(self, mode: bool = True) -> "Pix2Pix":
        super().train(mode)
        if not mode and self.hparams.dropout_at_inference:
            for net in (self.generators[self.direction], self.translator(self.direction)):
                for module in net.modules():
                    if isinstance(module, nn.Dropout):
                        module.train()
        return self

    def directions(self) -> dict[str, Direction]:
        source, target = self.hparams.direction.split("to")
        return {self.hparams.direction: Direction(source, target)}

    def pair(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(input, target) of a batch, following `direction`."""
        return (batch["A"], batch["B"]) if self.direction == "AtoB" else (batch["B"], batch["A"])

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real_in, real_out = self.pair(batch)
        opt_g, opt_d = self.optimizers()
        G, D = self.generators[self.direction], self.discriminators[self.target]
        fake_out = G(real_in)  # (B, C, H, W)
        real, fake = torch.cat([real_in, real_out], 1), torch.cat([real_in, fake_out], 1)  # (B, 2C, H, W)

        # D first, as the reference: (real + fake) / 2 on (input, output) pairs, plus any penalty (WGAN-GP)
        d_loss = self.discriminator_loss(D, real, fake, weight=0.5)
        self.step_discriminator(opt_d, d_loss)

        with self.frozen(self.discriminators):  # the discriminator is frozen while the generator learns
            step = GeneratorStep(fake_out, real_out, real_in, D, d_fake=fake, d_real=real, paired=True)
            adversarial = self.generator_losses_against(step, "G_GAN")
            g_losses = {
                "G_GAN": adversarial.pop("G_GAN"),
                "G_L1": F.l1_loss(fake_out, real_out) * self.hparams.lambda_L1,
            }
            g_losses.update(adversarial)
            self.step_generator(opt_g, sum(g_losses.values()))

        self.log_losses({**g_losses, "D": d_loss}, batch_size=real_in.shape[0])

    def evaluation_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real_in, real_out = self.pair(batch)
        return {"L1": F.l1_loss(self(real_in), real_out)}

    def sample_images(self, batch: dict[str, Tensor]) -> dict[str, list[Tensor]]:
        """Columns of the sample grid: input | translation | target, each (N, C, H, W)."""
        real_in, real_out = self.pair(batch)
        return {self.direction: [real_in, self(real_in), real_out]}
