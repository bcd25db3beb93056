"""The baseline of `train_speed.py`: each model's training iteration as a hand-written PyTorch loop.

Each loop runs on deep copies of a lit_gan LightningModule's networks (same architecture and initial weights) with
the module's hyperparameters, the same `lit_gan.losses` GAN loss, L1 terms and lambdas, one Adam over the
generators and one over the discriminators (the module's lr and betas), the same `ImagePool`s, and the order of G
and D steps and the `requires_grad` freezing of the reference code. Given the same seed and batches, a loop's
weights after N iterations equal the module's after N `Trainer.fit` steps, bit for bit on CPU.
"""

import copy

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gan.image_pool import ImagePool
from lit_gan.losses import gan_loss
from lit_gan.models.optim import GANAdam


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def detached(losses: dict[str, Tensor]) -> dict[str, Tensor]:
    """The loss terms without their graphs (kept for logging, as lit_gan keeps them)."""
    return {name: value.detach() for name, value in losses.items()}


class PlainLoop:
    """Copies of a module's networks `names` (same architecture and initial weights), its GAN loss, and one Adam
    over the generators and one over the discriminators with the module's lr and betas. `step` does one training
    iteration and returns its loss terms."""

    def __init__(self, module: pl.LightningModule, device: str) -> None:
        hp = self.hp = module.hparams
        # The module's generators, then its discriminators, in their order (their names: "generators.AtoB", ...).
        self.nets = {
            f"{kind}.{key}": copy.deepcopy(net).to(device).train()
            for kind, nets in (("generators", module.generators), ("discriminators", module.discriminators))
            for key, net in nets.items()
        }
        self.gan = gan_loss(hp.gan_mode)
        self.device = device
        g = [p for name, net in self.nets.items() if name.startswith("generators.") for p in net.parameters()]
        d = [p for name, net in self.nets.items() if name.startswith("discriminators.") for p in net.parameters()]
        self.opt_g = GANAdam(g, lr=hp.lr)  # the models' default optimizer: Adam, betas (0.5, 0.999)
        self.opt_d = GANAdam(d, lr=hp.lr)

    @staticmethod
    def update(opt: torch.optim.Optimizer, loss: Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def max_difference(self, module: pl.LightningModule) -> float:
        """The largest absolute difference between a weight of these networks and the module's: 0 after the same
        iterations on the same batches and seeds (on CPU; CUDA kernels may differ in rounding)."""
        pairs = [zip(module.get_submodule(name).parameters(), net.parameters()) for name, net in self.nets.items()]
        return max((a - b).abs().max().item() for pair in pairs for a, b in pair)


class PlainCycleGAN(PlainLoop):
    """The reference iteration: G_A and G_B (adversarial, cycle, identity) with the discriminators frozen, then D_A
    and D_B on fakes from the image pools, each D loss (real + fake) / 2."""

    def __init__(self, module: pl.LightningModule, device: str) -> None:
        super().__init__(module, device)
        pool_A, pool_B = module.pools["A"], module.pools["B"]
        self.pool_A = ImagePool(pool_A.pool_size, seed=pool_A.seed)  # the module's sizes and seeds
        self.pool_B = ImagePool(pool_B.pool_size, seed=pool_B.seed)

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        hp, real_A, real_B = self.hp, batch["A"], batch["B"]
        G_A, G_B, D_A, D_B = self.nets.values()  # A->B, B->A; D_A judges B, D_B judges A
        set_requires_grad([D_A, D_B], False)
        fake_B, fake_A = G_A(real_A), G_B(real_B)  # (B, 3, H, W)
        g = {
            "G_A": self.gan.generator(D_A(fake_B)),
            "G_B": self.gan.generator(D_B(fake_A)),
            "cycle_A": F.l1_loss(G_B(fake_B), real_A) * hp.lambda_A,
            "cycle_B": F.l1_loss(G_A(fake_A), real_B) * hp.lambda_B,
        }
        if hp.lambda_identity > 0:
            g["idt_A"] = F.l1_loss(G_A(real_B), real_B) * hp.lambda_B * hp.lambda_identity
            g["idt_B"] = F.l1_loss(G_B(real_A), real_A) * hp.lambda_A * hp.lambda_identity
        self.update(self.opt_g, sum(g.values()))
        set_requires_grad([D_A, D_B], True)
        d = {
            "D_A": self.gan.discriminator(D_A, real_B, self.pool_B.query(fake_B), weight=0.5),
            "D_B": self.gan.discriminator(D_B, real_A, self.pool_A.query(fake_A), weight=0.5),
        }
        self.update(self.opt_d, d["D_A"] + d["D_B"])
        return detached({**g, **d})


class PlainPix2Pix(PlainLoop):
    """The reference iteration: D on (input, target) against (input, G(input)), (real + fake) / 2; then G
    (adversarial + lambda_L1 * L1) with D frozen."""

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        G, D = self.nets.values()
        real_in, real_out = (batch["A"], batch["B"]) if self.hp.direction == "AtoB" else (batch["B"], batch["A"])
        fake_out = G(real_in)  # (B, 3, H, W)
        set_requires_grad([D], True)
        real, fake = torch.cat([real_in, real_out], 1), torch.cat([real_in, fake_out], 1)  # (B, 6, H, W)
        d_loss = self.gan.discriminator(D, real, fake, weight=0.5)
        self.update(self.opt_d, d_loss)
        set_requires_grad([D], False)
        l1 = F.l1_loss(fake_out, real_out) * self.hp.lambda_L1
        g = {"G_GAN": self.gan.generator(D(torch.cat([real_in, fake_out], 1))), "G_L1": l1}
        self.update(self.opt_g, sum(g.values()))
        return detached({**g, "D": d_loss})


class PlainDCGAN(PlainLoop):
    """The PyTorch DCGAN example's iteration: D on a real batch and on fakes from fresh noise, then G on the same
    fakes with D frozen."""

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        G, D = self.nets.values()
        real = batch["A"]  # (B, C, S, S)
        fake = G(torch.randn(real.shape[0], G.nz, device=self.device, dtype=real.dtype))
        set_requires_grad([D], True)
        d_loss = self.gan.discriminator(D, real, fake)
        self.update(self.opt_d, d_loss)
        set_requires_grad([D], False)
        g = {"G": self.gan.generator(D(fake))}
        self.update(self.opt_g, sum(g.values()))
        return detached({**g, "D": d_loss})


PLAIN_LOOPS: dict[str, type[PlainLoop]] = {"cyclegan": PlainCycleGAN, "pix2pix": PlainPix2Pix, "dcgan": PlainDCGAN}
