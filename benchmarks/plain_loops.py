"""The baseline of `train_speed.py`: each model's training iteration as a hand-written PyTorch loop.

Each loop runs on deep copies of a lit_gan LightningModule's networks (same architecture and initial weights) with
the module's hyperparameters, the same `lit_gan.losses` GAN loss, L1 terms and lambdas, one Adam over the
generators and one over the discriminators (the module's lr and betas), the same `ImagePool`s, and the order of G
and D steps and the `requires_grad` freezing of the reference code. Given the same seed and batches, a loop's
weights after N iterations equal the module's after N `Trainer.fit` steps, bit for bit on CPU.
"""

import copy
from itertools import chain

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gan.compat import should_log_this_step
from lit_gan.image_pool import ImagePool
from lit_gan.losses import gan_loss
from lit_gan.losses.patchnce import patch_nce_loss


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def detached(losses: dict[str, Tensor]) -> dict[str, Tensor]:
    """The loss terms without their graphs (kept for logging, as lit_gan keeps them)."""
    return {name: value.detach() for name, value in losses.items()}


class PlainLoop:
    """Copies of a module's networks (same architecture and initial weights), its GAN loss, and one optimizer over
    the generators (and `trained_with_generators`) and one over the discriminators: the module's optimizer classes
    (Adam with the reference's betas) at its lr. `step` does one training iteration and returns its loss terms."""

    trained_with_generators: tuple[str, ...] = ()
    """Other networks of the module (attribute names) that the generators' optimizer trains, e.g. CUT's sampler."""

    def __init__(self, module: pl.LightningModule, device: str) -> None:
        hp = self.hp = module.hparams
        # The module's generators, then its discriminators, in their order (their names: "generators.AtoB", ...).
        self.nets = {
            f"{kind}.{key}": copy.deepcopy(net).to(device).train()
            for kind, nets in (("generators", module.generators), ("discriminators", module.discriminators))
            for key, net in nets.items()
        }
        self.nets.update(
            {name: copy.deepcopy(module.get_submodule(name)).to(device) for name in self.trained_with_generators}
        )
        self.gan = gan_loss(hp.gan_mode)
        self.device = device
        d = [p for name, net in self.nets.items() if name.startswith("discriminators.") for p in net.parameters()]
        g = [p for name, net in self.nets.items() if not name.startswith("discriminators.") for p in net.parameters()]
        self.opt_g = module.optimizer_G(g, lr=hp.lr)  # the model's default: GANAdam, betas (0.5, 0.999), ...
        self.opt_d = module.optimizer_D(d, lr=hp.lr)  # ... ProGAN's: betas (0, 0.99)

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


class PlainCUT(PlainLoop):
    """The CUT reference's iteration (cut_model.py): G on real A (and real B, for identity NCE) in one pass (flipped
    with flip equivariance, FastCUT); D on real B against the detached fake B, (real + fake) / 2; then, D frozen,
    lambda_GAN * G's adversarial loss plus the mean of PatchNCE(A, G(A)) and PatchNCE(B, G(B)), each averaged over
    `nce_layers`, with patches embedded by the patch sampler, which the generator's optimizer trains."""

    trained_with_generators = ("sampler",)

    def nce(self, source: Tensor, output: Tensor, flipped: bool) -> Tensor:
        hp, G, sampler = self.hp, self.nets["generators.AtoB"], self.nets["sampler"]
        layers = list(hp.nce_layers)
        queries = G.features(output, layers)  # [(B, C_l, H_l, W_l)]
        if flipped:
            queries = [q.flip(3) for q in queries]
        keys, ids = sampler(G.features(source, layers), hp.num_patches)
        queries, _ = sampler(queries, hp.num_patches, ids)
        groups = 1 if hp.negatives_from_minibatch else source.shape[0]
        terms = [(patch_nce_loss(q, k, groups, hp.nce_T) * hp.lambda_NCE).mean() for q, k in zip(queries, keys)]
        return sum(terms) / len(layers)

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        hp, real_A, real_B = self.hp, batch["A"], batch["B"]
        G, D = self.nets["generators.AtoB"], self.nets["discriminators.B"]
        n = real_A.shape[0]
        real = torch.cat([real_A, real_B]) if hp.nce_idt else real_A  # (n or 2n, C, H, W)
        flipped = hp.flip_equivariance and bool(torch.rand(()) < 0.5)
        if flipped:
            real = real.flip(3)
        fake = G(real)
        fake_B = fake[:n]
        set_requires_grad([D], True)
        d_loss = self.gan.discriminator(D, real_B, fake_B, weight=0.5)
        self.update(self.opt_d, d_loss)
        set_requires_grad([D], False)
        g = {"G_GAN": self.gan.generator(D(fake_B)) * hp.lambda_GAN}
        nce = {"NCE": self.nce(real_A, fake_B, flipped)}
        if hp.nce_idt:
            nce["NCE_Y"] = self.nce(real_B, fake[n:], flipped)
        self.update(self.opt_g, g["G_GAN"] + sum(nce.values()) / len(nce))
        return detached({**g, **nce, "D": d_loss})


class PlainProGAN(PlainLoop):
    """The official Progressive GAN iteration at one resolution (the benchmark trains at start_resolution =
    image_size, one phase: no fade-in): the critic on a real batch against G(z), WGAN-GP + drift; then G on new
    latents with the critic frozen; then the generator's EMA (one foreach lerp). Also counts the images seen."""

    def __init__(self, module: pl.LightningModule, device: str) -> None:
        super().__init__(module, device)
        G = self.nets["generators.samples"]
        self.decay = self.hp.ema_decay
        self.ema = [t.detach().clone() for t in chain(G.parameters(), G.buffers())] if self.decay else []
        self.averaged = False
        self.seen = torch.zeros((), dtype=torch.long, device=device)

    @torch.no_grad()
    def update_ema(self) -> None:
        G = self.nets["generators.samples"]
        current = [t.detach() for t in chain(G.parameters(), G.buffers())]
        if self.averaged:
            torch._foreach_lerp_(self.ema, current, 1 - self.decay)
        else:  # the first update copies, as torch's AveragedModel
            torch._foreach_copy_(self.ema, current)
            self.averaged = True

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        G, D = self.nets["generators.samples"], self.nets["discriminators.A"]
        real = batch["A"]  # (B, C, S, S)
        n = real.shape[0]
        fake = G(torch.randn(n, G.nz, device=self.device, dtype=real.dtype))
        set_requires_grad([D], True)
        d_loss = self.gan.discriminator(D, real, fake)
        self.update(self.opt_d, d_loss)
        set_requires_grad([D], False)
        fake = G(torch.randn(n, G.nz, device=self.device, dtype=real.dtype))  # new latents, as official
        g = {"G": self.gan.generator(D(fake))}
        self.update(self.opt_g, g["G"])
        if self.decay:
            self.update_ema()
        self.seen += n
        progress = {
            "alpha": torch.tensor(1.0),
            "resolution": torch.tensor(float(G.resolution)),
            "images_seen": self.seen.float(),
        }
        return detached({**g, "D": d_loss, **progress})


PLAIN_LOOPS: dict[str, type[PlainLoop]] = {
    "cyclegan": PlainCycleGAN,
    "pix2pix": PlainPix2Pix,
    "dcgan": PlainDCGAN,
    "cut": PlainCUT,
    "fastcut": PlainCUT,
    "progan": PlainProGAN,
}


class InLightning(pl.LightningModule):
    """A plain loop's iteration run by Lightning, as a user's own manual-optimization LightningModule would run it:
    the loop's networks and optimizers, each backward through `manual_backward`, each update through Lightning's
    optimizer wrapper, and the loss terms and learning rates logged with `self.log_dict` on the steps Lightning
    writes. What it adds to the plain loop is Lightning's own cost per iteration; what lit_gan adds beyond it is
    lit_gan's. Lightning counts both optimizer steps, so run it for one epoch of the iterations (not `max_steps`)."""

    def __init__(self, loop: PlainLoop) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.loop = loop
        self.nets = nn.ModuleDict({name.replace(".", "_"): net for name, net in loop.nets.items()})
        loop.update = self.update  # the loop's G and D updates, through Lightning

    def configure_optimizers(self):
        return [self.loop.opt_g, self.loop.opt_d]

    def update(self, opt: torch.optim.Optimizer, loss: Tensor) -> None:
        wrapped = self.optimizers()[0 if opt is self.loop.opt_g else 1]
        wrapped.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        wrapped.step()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        losses = self.loop.step(batch)
        if should_log_this_step(self.trainer):
            lrs = {
                "train/lr_G": self.loop.opt_g.param_groups[0]["lr"],
                "train/lr_D": self.loop.opt_d.param_groups[0]["lr"],
            }
            self.log_dict({**{f"train/{k}": v for k, v in losses.items()}, **lrs}, batch_size=len(batch["A"]))
