"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation with cycle consistency."""

import torch
import torch.nn.functional as F
from jsonargparse import lazy_instance
from torch import Tensor, nn

from lit_gan.contracts import Direction
from lit_gan.image_pool import ImagePool
from lit_gan.losses import GeneratorStep, gan_loss
from lit_gan.losses.gan import GANLossName
from lit_gan.models.base import GANModule, SmokeTest
from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator

_TINY_D = {"class_path": "lit_gan.networks.PatchGANDiscriminator", "init_args": {"ndf": 4, "n_layers": 2}}


class CycleGAN(GANModule):
    """Two generators ("AtoB", "BtoA") and two discriminators ("B" judges domain B, "A" judges domain A).

    Training follows the reference code: per iteration one optimizer step over both generators (adversarial, cycle
    and identity losses), then one over both discriminators on fakes drawn from image pools, each D loss being
    (real + fake) / 2. "plateau" LR policies monitor val/cycle. The shared arguments (lr, optimizers, lr_policy,
    ema_decay, init_type, init_gain, generator_losses) are `GANModule`'s.

    Args:
        generator: generator architecture; copied for both directions and initialized independently.
        discriminator: discriminator architecture; copied for both domains and initialized independently.
        gan_mode: adversarial loss.
        lambda_A: weight of the cycle loss A -> B -> A.
        lambda_B: weight of the cycle loss B -> A -> B.
        lambda_identity: identity loss weight, relative to lambda_A/lambda_B (0 disables it).
        pool_size: fakes kept in each image pool (0 disables the pools).
    """

    val_metric = "val/cycle"
    smoke_test = SmokeTest(
        model={
            "generator": {"class_path": "lit_gan.networks.ResnetGenerator", "init_args": {"ngf": 4, "n_blocks": 1}},
            "discriminator": _TINY_D,
            "pool_size": 3,
        }
    )

    def __init__(
        self,
        generator: nn.Module = lazy_instance(ResnetGenerator),
        discriminator: nn.Module = lazy_instance(PatchGANDiscriminator),
        gan_mode: GANLossName = "lsgan",
        lambda_A: float = 10.0,
        lambda_B: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.add_networks({"AtoB": generator, "BtoA": generator}, {"B": discriminator, "A": discriminator})
        self.gan_loss = gan_loss(gan_mode)
        seed = torch.initial_seed()  # the run's seed after seed_everything
        self.pools = {"A": ImagePool(pool_size, seed=seed), "B": ImagePool(pool_size, seed=seed + 1)}  # fakes

    def directions(self) -> dict[str, Direction]:
        return {"AtoB": Direction("A", "B"), "BtoA": Direction("B", "A")}

    def generator_losses(self, real_A: Tensor, real_B: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Generator loss terms, and the fakes (fake_A, fake_B) for the discriminator step."""
        hp, G, D = self.hparams, self.generators, self.discriminators
        fake_B = G["AtoB"](real_A)  # (B, 3, H, W)
        fake_A = G["BtoA"](real_B)
        adv_A = self.generator_losses_against(self._step(D["B"], real_A, fake_B, real_B), "G_A", "_A")
        adv_B = self.generator_losses_against(self._step(D["A"], real_B, fake_A, real_A), "G_B", "_B")
        losses = {
            "G_A": adv_A.pop("G_A"),
            "G_B": adv_B.pop("G_B"),
            "cycle_A": F.l1_loss(G["BtoA"](fake_B), real_A) * hp.lambda_A,
            "cycle_B": F.l1_loss(G["AtoB"](fake_A), real_B) * hp.lambda_B,
            **adv_A,
            **adv_B,
        }
        if hp.lambda_identity > 0:
            losses["idt_A"] = F.l1_loss(G["AtoB"](real_B), real_B) * hp.lambda_B * hp.lambda_identity
            losses["idt_B"] = F.l1_loss(G["BtoA"](real_A), real_A) * hp.lambda_A * hp.lambda_identity
        return losses, fake_A, fake_B

    @staticmethod
    def _step(D: nn.Module, source: Tensor, fake: Tensor, real: Tensor) -> GeneratorStep:
        return GeneratorStep(
            fake=fake, real=real, source=source, discriminator=D, d_fake=fake, d_real=real, paired=False
        )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real_A, real_B = batch["A"], batch["B"]
        opt_g, opt_d = self.optimizers()

        with self.frozen(self.discriminators):  # discriminators frozen while the generators learn
            g_losses, fake_A, fake_B = self.generator_losses(real_A, real_B)
            self.step_generator(opt_g, sum(g_losses.values()))

        with self.frozen(self.generators):  # (real + fake) / 2 per discriminator, as the reference, plus any penalty
            D = self.discriminators
            d_losses = {
                "D_A": self.discriminator_loss(D["B"], real_B, self.pools["B"].query(fake_B), weight=0.5),
                "D_B": self.discriminator_loss(D["A"], real_A, self.pools["A"].query(fake_A), weight=0.5),
            }
            self.step_discriminator(opt_d, d_losses["D_A"] + d_losses["D_B"])

        self.log_losses({**g_losses, **d_losses}, batch_size=real_A.shape[0])

    def evaluation_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        G_A, G_B = self.translator("AtoB"), self.translator("BtoA")
        cycle_A, cycle_B = F.l1_loss(G_B(G_A(real_A)), real_A), F.l1_loss(G_A(G_B(real_B)), real_B)
        return {"cycle_A": cycle_A, "cycle_B": cycle_B, "cycle": cycle_A + cycle_B}

    def sample_images(self, batch: dict[str, Tensor]) -> dict[str, list[Tensor]]:
        """Columns of a sample grid per direction: real | translated | reconstructed, each (N, 3, H, W)."""
        real_A, real_B = batch["A"], batch["B"]
        G_A, G_B = self.translator("AtoB"), self.translator("BtoA")
        fake_B, fake_A = G_A(real_A), G_B(real_B)
        return {"AtoB": [real_A, fake_B, G_B(fake_B)], "BtoA": [real_B, fake_A, G_A(fake_A)]}
