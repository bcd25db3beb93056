"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation with cycle consistency."""

import copy

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from jsonargparse import lazy_instance
from torch import Tensor, nn

from lit_gan.image_pool import ImagePool
from lit_gan.losses import gan_loss
from lit_gan.losses.gan import GANLossName
from lit_gan.models.schedules import linear_decay
from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator, init_weights
from lit_gan.networks.init import InitName


class CycleGAN(pl.LightningModule):
    """Two generators (G_A: A->B, G_B: B->A) and two discriminators (D_A judges domain B, D_B judges domain A).

    Training follows the reference code: per iteration one Adam step over both generators (adversarial, cycle and
    identity losses), then one Adam step over both discriminators on fakes drawn from image pools, each D loss
    being (real + fake) / 2. `global_step` counts iterations (generator steps). Learning rates follow the
    reference "linear" policy, one value per epoch.

    Args:
        generator: generator architecture; copied for G_A and G_B and initialized independently.
        discriminator: discriminator architecture; copied for D_A and D_B and initialized independently.
        gan_mode: adversarial loss.
        lambda_A: weight of the cycle loss A -> B -> A.
        lambda_B: weight of the cycle loss B -> A -> B.
        lambda_identity: identity loss weight, relative to lambda_A/lambda_B (0 disables it).
        pool_size: fakes kept in each image pool (0 disables the pools).
        lr: initial Adam learning rate.
        betas: Adam betas.
        n_epochs: epochs at the initial learning rate.
        n_epochs_decay: epochs over which the learning rate decays linearly towards zero.
        init_type: weight initialization of all four networks.
        init_gain: scale of the weight initialization.
    """

    def __init__(
        self,
        generator: nn.Module = lazy_instance(ResnetGenerator),
        discriminator: nn.Module = lazy_instance(PatchGANDiscriminator),
        gan_mode: GANLossName = "lsgan",
        lambda_A: float = 10.0,
        lambda_B: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        init_type: InitName = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["generator", "discriminator"], logger=False)
        self.automatic_optimization = False
        self.G_A = init_weights(copy.deepcopy(generator), init_type, init_gain)
        self.G_B = init_weights(copy.deepcopy(generator), init_type, init_gain)
        self.D_A = init_weights(copy.deepcopy(discriminator), init_type, init_gain)
        self.D_B = init_weights(copy.deepcopy(discriminator), init_type, init_gain)
        self.gan_loss = gan_loss(gan_mode)
        seed = torch.initial_seed()  # the run's seed after seed_everything
        self.pool_A = ImagePool(pool_size, seed=seed)  # fakes of domain A, for D_B
        self.pool_B = ImagePool(pool_size, seed=seed + 1)  # fakes of domain B, for D_A

    def forward(self, x: Tensor, direction: str = "AtoB") -> Tensor:
        """Translate (B, 3, H, W) images in [-1, 1] from A to B ("AtoB") or from B to A ("BtoA")."""
        return self.G_A(x) if direction == "AtoB" else self.G_B(x)

    def configure_optimizers(self):
        hp = self.hparams
        opt_g = torch.optim.Adam([*self.G_A.parameters(), *self.G_B.parameters()], lr=hp.lr, betas=hp.betas)
        opt_d = torch.optim.Adam([*self.D_A.parameters(), *self.D_B.parameters()], lr=hp.lr, betas=hp.betas)
        return [opt_g, opt_d], [linear_decay(opt, hp.n_epochs, hp.n_epochs_decay) for opt in (opt_g, opt_d)]

    def generator_losses(self, real_A: Tensor, real_B: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Generator loss terms, and the fakes (fake_A, fake_B) for the discriminator step."""
        hp = self.hparams
        fake_B = self.G_A(real_A)  # (B, 3, H, W)
        fake_A = self.G_B(real_B)
        losses = {
            "G_A": self.gan_loss.generator(self.D_A(fake_B)),
            "G_B": self.gan_loss.generator(self.D_B(fake_A)),
            "cycle_A": F.l1_loss(self.G_B(fake_B), real_A) * hp.lambda_A,
            "cycle_B": F.l1_loss(self.G_A(fake_A), real_B) * hp.lambda_B,
        }
        if hp.lambda_identity > 0:
            losses["idt_A"] = F.l1_loss(self.G_A(real_B), real_B) * hp.lambda_B * hp.lambda_identity
            losses["idt_B"] = F.l1_loss(self.G_B(real_A), real_A) * hp.lambda_A * hp.lambda_identity
        return losses, fake_A, fake_B

    def discriminator_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """(real + fake) / 2 for one discriminator; `fake` is detached."""
        return (self.gan_loss.real(D(real)) + self.gan_loss.fake(D(fake.detach()))) * 0.5

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real_A, real_B = batch["A"], batch["B"]
        opt_g, opt_d = self.optimizers()

        with opt_g.toggle_model():  # discriminators frozen while the generators learn
            g_losses, fake_A, fake_B = self.generator_losses(real_A, real_B)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(sum(g_losses.values()))
            opt_g.step()  # counted: global_step advances once per iteration

        with opt_d.toggle_model():
            d_losses = {
                "D_A": self.discriminator_loss(self.D_A, real_B, self.pool_B.query(fake_B)),
                "D_B": self.discriminator_loss(self.D_B, real_A, self.pool_A.query(fake_A)),
            }
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_losses["D_A"] + d_losses["D_B"])
            # Stepped through the strategy (precision plugins included) but not counted as a training step.
            self.trainer.strategy.optimizer_step(opt_d.optimizer, closure=lambda: None)

        logs = {f"train/{k}": v.detach() for k, v in {**g_losses, **d_losses}.items()}
        logs["train/lr_G"] = opt_g.param_groups[0]["lr"]
        logs["train/lr_D"] = opt_d.param_groups[0]["lr"]
        self.log_dict(logs, batch_size=real_A.shape[0])

    def on_train_epoch_start(self) -> None:
        # Bring the per-epoch schedules to the current epoch. Doing it here rather than at epoch end keeps them
        # right when an epoch is cut short by max_steps and resumed mid-epoch from a checkpoint.
        for scheduler in self.lr_schedulers():
            while scheduler.last_epoch < self.current_epoch:
                scheduler.step()

    def _eval_step(self, batch: dict[str, Tensor], prefix: str) -> None:
        real_A, real_B = batch["A"], batch["B"]
        fake_B, fake_A = self.G_A(real_A), self.G_B(real_B)
        self.log_dict(
            {
                f"{prefix}/cycle_A": F.l1_loss(self.G_B(fake_B), real_A),
                f"{prefix}/cycle_B": F.l1_loss(self.G_A(fake_A), real_B),
            },
            batch_size=real_A.shape[0],
        )

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    @torch.no_grad()
    def sample_images(self, batch: dict[str, Tensor]) -> dict[str, list[Tensor]]:
        """Columns of a sample grid per direction: real | translated | reconstructed, each (N, 3, H, W)."""
        real_A, real_B = batch["A"], batch["B"]
        fake_B, fake_A = self.G_A(real_A), self.G_B(real_B)
        return {"AtoB": [real_A, fake_B, self.G_B(fake_B)], "BtoA": [real_B, fake_A, self.G_A(fake_A)]}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["image_pools"] = {"A": self.pool_A.state_dict(), "B": self.pool_B.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "image_pools" in checkpoint:
            self.pool_A.load_state_dict(checkpoint["image_pools"]["A"])
            self.pool_B.load_state_dict(checkpoint["image_pools"]["B"])
