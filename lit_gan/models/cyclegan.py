"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation with cycle consistency."""

import copy

import torch
import torch.nn.functional as F
from jsonargparse import lazy_instance
from torch import Tensor, nn

from lit_gan.image_pool import ImagePool
from lit_gan.losses import discriminate_and_match, gan_loss
from lit_gan.losses.gan import GANLossName
from lit_gan.models.base import GANModule
from lit_gan.models.schedules import LRPolicyName
from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator, init_weights
from lit_gan.networks.init import InitName


class CycleGAN(GANModule):
    """Two generators (G_A: A->B, G_B: B->A) and two discriminators (D_A judges domain B, D_B judges domain A).

    Training follows the reference code: per iteration one Adam step over both generators (adversarial, cycle and
    identity losses), then one Adam step over both discriminators on fakes drawn from image pools, each D loss
    being (real + fake) / 2. `global_step` counts iterations (generator steps). Learning rates follow `lr_policy`,
    one value per epoch.

    Args:
        generator: generator architecture; copied for G_A and G_B and initialized independently.
        discriminator: discriminator architecture; copied for D_A and D_B and initialized independently.
        gan_mode: adversarial loss.
        lambda_A: weight of the cycle loss A -> B -> A.
        lambda_B: weight of the cycle loss B -> A -> B.
        lambda_identity: identity loss weight, relative to lambda_A/lambda_B (0 disables it).
        lambda_feature_matching: weight of matching the discriminators' mean intermediate features of real and
            translated images (0 disables it).
        pool_size: fakes kept in each image pool (0 disables the pools).
        lr: initial Adam learning rate.
        betas: Adam betas.
        lr_policy: learning-rate policy (see `lit_gan.models.schedules`); "plateau" monitors val/cycle.
        n_epochs: epochs at the initial learning rate ("linear"); n_epochs + n_epochs_decay is the run ("cosine").
        n_epochs_decay: epochs over which the learning rate decays linearly towards zero ("linear").
        lr_step_epochs: epochs between x0.1 decays ("step").
        ema_decay: keep an exponential moving average of the generators with this decay (e.g. 0.999) and use it
            for samples and evaluation; null disables it.
        init_type: weight initialization of all four networks.
        init_gain: scale of the weight initialization.
    """

    val_metric = "val/cycle"

    def __init__(
        self,
        generator: nn.Module = lazy_instance(ResnetGenerator),
        discriminator: nn.Module = lazy_instance(PatchGANDiscriminator),
        gan_mode: GANLossName = "lsgan",
        lambda_A: float = 10.0,
        lambda_B: float = 10.0,
        lambda_identity: float = 0.5,
        lambda_feature_matching: float = 0.0,
        pool_size: int = 50,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        lr_policy: LRPolicyName = "linear",
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        lr_step_epochs: int = 50,
        ema_decay: float | None = None,
        init_type: InitName = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        self.save_config("generator", "discriminator")
        self.G_A = init_weights(copy.deepcopy(generator), init_type, init_gain)
        self.G_B = init_weights(copy.deepcopy(generator), init_type, init_gain)
        self.D_A = init_weights(copy.deepcopy(discriminator), init_type, init_gain)
        self.D_B = init_weights(copy.deepcopy(discriminator), init_type, init_gain)
        self.gan_loss = gan_loss(gan_mode)
        seed = torch.initial_seed()  # the run's seed after seed_everything
        self.pool_A = ImagePool(pool_size, seed=seed)  # fakes of domain A, for D_B
        self.pool_B = ImagePool(pool_size, seed=seed + 1)  # fakes of domain B, for D_A
        self.init_ema("G_A", "G_B")

    @property
    def size_multiple(self) -> int:
        return getattr(self.G_A, "size_multiple", 1)

    def forward(self, x: Tensor, direction: str = "AtoB") -> Tensor:
        """Translate (B, 3, H, W) images in [-1, 1] from A to B ("AtoB") or from B to A ("BtoA")."""
        return self.inference_generator(self.generator_name(direction))(x)

    def generator_name(self, direction: str) -> str:
        return {"AtoB": "G_A", "BtoA": "G_B"}[direction]

    def metric_directions(self) -> dict[str, tuple[str | None, str]]:
        return {"AtoB": ("A", "B"), "BtoA": ("B", "A")}

    def generate(self, direction: str, source: Tensor) -> Tensor:
        return self(source, direction)

    def configure_optimizers(self):
        return self.adam_pair(
            [*self.G_A.parameters(), *self.G_B.parameters()], [*self.D_A.parameters(), *self.D_B.parameters()]
        )

    def adversarial(self, D: nn.Module, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        """The generator's adversarial loss against `D`, plus feature matching against `real` when enabled."""
        lam = self.hparams.lambda_feature_matching
        if lam <= 0:
            return {"gan": self.gan_loss.generator(D(fake))}
        pred, fm = discriminate_and_match(D, fake, real, paired=False)
        return {"gan": self.gan_loss.generator(pred), "fm": fm * lam}

    def generator_losses(self, real_A: Tensor, real_B: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Generator loss terms, and the fakes (fake_A, fake_B) for the discriminator step."""
        hp = self.hparams
        fake_B = self.G_A(real_A)  # (B, 3, H, W)
        fake_A = self.G_B(real_B)
        adv_A, adv_B = self.adversarial(self.D_A, fake_B, real_B), self.adversarial(self.D_B, fake_A, real_A)
        losses = {
            "G_A": adv_A["gan"],
            "G_B": adv_B["gan"],
            "cycle_A": F.l1_loss(self.G_B(fake_B), real_A) * hp.lambda_A,
            "cycle_B": F.l1_loss(self.G_A(fake_A), real_B) * hp.lambda_B,
        }
        if "fm" in adv_A:
            losses["fm_A"], losses["fm_B"] = adv_A["fm"], adv_B["fm"]
        if hp.lambda_identity > 0:
            losses["idt_A"] = F.l1_loss(self.G_A(real_B), real_B) * hp.lambda_B * hp.lambda_identity
            losses["idt_B"] = F.l1_loss(self.G_B(real_A), real_A) * hp.lambda_A * hp.lambda_identity
        return losses, fake_A, fake_B

    def discriminator_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """(real + fake) / 2 for one discriminator, as the reference, plus the loss's penalty (WGAN-GP)."""
        return self.gan_loss.discriminator(D, real, fake, weight=0.5)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real_A, real_B = batch["A"], batch["B"]
        opt_g, opt_d = self.optimizers()

        with opt_g.toggle_model():  # discriminators frozen while the generators learn
            g_losses, fake_A, fake_B = self.generator_losses(real_A, real_B)
            self.step_generator(opt_g, sum(g_losses.values()))

        with opt_d.toggle_model():
            d_losses = {
                "D_A": self.discriminator_loss(self.D_A, real_B, self.pool_B.query(fake_B)),
                "D_B": self.discriminator_loss(self.D_B, real_A, self.pool_A.query(fake_A)),
            }
            self.step_discriminator(opt_d, d_losses["D_A"] + d_losses["D_B"])

        self.log_losses({**g_losses, **d_losses}, batch_size=real_A.shape[0])

    def _eval_step(self, batch: dict[str, Tensor], prefix: str) -> None:
        real_A, real_B = batch["A"], batch["B"]
        G_A, G_B = self.inference_generator("G_A"), self.inference_generator("G_B")
        cycle_A, cycle_B = F.l1_loss(G_B(G_A(real_A)), real_A), F.l1_loss(G_A(G_B(real_B)), real_B)
        metrics = {f"{prefix}/cycle_A": cycle_A, f"{prefix}/cycle_B": cycle_B, f"{prefix}/cycle": cycle_A + cycle_B}
        # sync_dist: the mean over every process's share, so all processes step the plateau policy alike
        self.log_dict(metrics, batch_size=real_A.shape[0], sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def sample_images(self, batch: dict[str, Tensor]) -> dict[str, list[Tensor]]:
        """Columns of a sample grid per direction: real | translated | reconstructed, each (N, 3, H, W)."""
        real_A, real_B = batch["A"], batch["B"]
        G_A, G_B = self.inference_generator("G_A"), self.inference_generator("G_B")
        fake_B, fake_A = G_A(real_A), G_B(real_B)
        return {"AtoB": [real_A, fake_B, G_B(fake_B)], "BtoA": [real_B, fake_A, G_A(fake_A)]}
