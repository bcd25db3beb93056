"""CUT and FastCUT (Park, Efros, Zhang, Zhu, "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV
2020): one-sided unpaired translation. Instead of a second generator and a cycle, a contrastive PatchNCE loss keeps
each output patch tied to the input patch at the same place, in the generator's own encoder features."""

import copy

import torch
import torch.nn.functional as F
from jsonargparse import lazy_instance
from torch import Tensor, nn

from lit_gan.contracts import Direction, EncodesFeatures, SizedNetwork
from lit_gan.losses import GeneratorStep, gan_loss
from lit_gan.losses.gan import GANLossName
from lit_gan.losses.patchnce import patch_nce_loss
from lit_gan.models.base import GANModule, SmokeTest
from lit_gan.models.defaults import model_defaults
from lit_gan.models.schedules import LRPolicy
from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator
from lit_gan.networks.init import init_weights
from lit_gan.networks.patch_sampler import PatchSampler
from lit_gan.networks.shapes import first_conv


@model_defaults(init_type="xavier")
class CUT(GANModule):
    """A generator ("AtoB"), a discriminator of domain B ("B") and a patch sampler (`sampler`, the reference's netF).

    Training follows the reference code (models/cut_model.py): per iteration the generator translates A (and, with
    `nce_idt`, B in the same pass); one optimizer step of D on real B and the detached translations, D loss
    (real + fake) / 2; then one step of the generator and the sampler together on `lambda_GAN` * adversarial +
    PatchNCE(A, G(A)), averaged with PatchNCE(B, G(B)) when `nce_idt`. PatchNCE compares `num_patches` random
    locations of the generator's features at `nce_layers` (`generator.features`) of the input and of the output,
    through the sampler's MLPs, each a positive against the other locations of its image (or, with
    `negatives_from_minibatch`, of the whole minibatch: the reference's single-image setting) at temperature
    `nce_T`, times `lambda_NCE`, averaged over layers. No image pool. Logged: `train/G_GAN`, `train/NCE`,
    `train/NCE_Y` (nce_idt), `train/D`; held out: `val/idt` (L1 of G(B) to B) and `val/nce` (PatchNCE(A, G(A)) at
    fixed locations), which "plateau" LR policies monitor.

    The sampler's MLPs take the generator's feature channels: they are built when the model is (the generator runs
    once on a small probe image), where the reference builds them on the first batch. Their parameters are trained
    by `optimizer_G` beside the generator's (the reference's separate Adam with the same settings makes the same
    updates), and they are in every checkpoint, so a resumed run continues exactly.

    FastCUT is this model with `nce_idt` false, `lambda_NCE` 10, `flip_equivariance` true and a 150 + 50 epoch
    schedule: `configs/models/fastcut.yaml`. The shared arguments (lr, optimizers, lr_policy, ema_decay, init_gain,
    generator_losses, augment) are `GANModule`'s; `init_type` defaults to the reference's "xavier".

    Args:
        generator: a generator with `features(x, layers)` (`ResnetGenerator`; the reference: 9 blocks, anti-aliased).
        discriminator: the discriminator of domain B (the reference: 70x70 PatchGAN, anti-aliased).
        sampler: the patch sampler (`PatchSampler`, 256 channels).
        gan_mode: adversarial loss.
        lambda_GAN: weight of the adversarial loss.
        lambda_NCE: weight of the PatchNCE loss.
        nce_idt: also translate B and apply PatchNCE between B and G(B) (CUT; FastCUT does not).
        nce_layers: indices of the generator's layers whose features PatchNCE compares (see `ResnetGenerator`).
        nce_T: temperature of PatchNCE.
        num_patches: locations sampled per layer and image.
        flip_equivariance: flip each training batch horizontally with probability 1/2 before translating it, and
            compare the output's features flipped back (FastCUT's regularizer).
        negatives_from_minibatch: take each patch's negatives from every image of the minibatch, not only its own
            (single-image translation).
        init_type: weight initialization of every network (the reference's CUT: xavier).
    """

    val_metric = "val/nce"
    default_lr_policy = LRPolicy("linear", n_epochs=200, n_epochs_decay=200)
    smoke_test = SmokeTest(
        model={
            "generator": {
                "class_path": "lit_gan.networks.ResnetGenerator",
                "init_args": {"ngf": 4, "n_blocks": 1, "antialias": True},
            },
            "discriminator": {
                "class_path": "lit_gan.networks.PatchGANDiscriminator",
                "init_args": {"ndf": 4, "n_layers": 2, "antialias": True},
            },
            "sampler": {"class_path": "lit_gan.networks.patch_sampler.PatchSampler", "init_args": {"channels": 8}},
            "nce_layers": [0, 4, 8, 12],
            "num_patches": 16,
        }
    )

    def __init__(
        self,
        generator: nn.Module = lazy_instance(ResnetGenerator, antialias=True),
        discriminator: nn.Module = lazy_instance(PatchGANDiscriminator, antialias=True),
        sampler: PatchSampler = lazy_instance(PatchSampler),
        gan_mode: GANLossName = "lsgan",
        lambda_GAN: float = 1.0,
        lambda_NCE: float = 1.0,
        nce_idt: bool = True,
        nce_layers: tuple[int, ...] = (0, 4, 8, 12, 16),
        nce_T: float = 0.07,
        num_patches: int = 256,
        flip_equivariance: bool = False,
        negatives_from_minibatch: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(generator, EncodesFeatures):
            raise ValueError(
                f"model.generator: CUT compares the generator's encoder features, which {type(generator).__name__} "
                "does not give (it has no features(x, layers) method): use lit_gan.networks.ResnetGenerator"
            )
        layers = list(nce_layers)
        if not layers or layers != sorted(set(layers)) or layers[0] < 0:
            raise ValueError(f"model.nce_layers must be distinct layer indices in ascending order, got {layers}")
        if num_patches < 1 or nce_T <= 0:
            raise ValueError(f"model.num_patches must be >= 1 and model.nce_T > 0, got {num_patches} and {nce_T}")
        self.add_networks({"AtoB": generator}, {"B": discriminator})
        self.gan_loss = gan_loss(gan_mode)
        sampler = copy.deepcopy(sampler).build(self._feature_channels(self.generators["AtoB"], layers))
        self.sampler = init_weights(sampler, self.init_type, self.init_gain)

    @staticmethod
    def _feature_channels(generator: nn.Module, layers: list[int]) -> list[int]:
        """The channels of the generator's features at `layers`, from one pass over a small probe image."""
        multiple = generator.size_multiple if isinstance(generator, SizedNetwork) else 1
        size = multiple * max(1, -(-16 // multiple))
        probe = torch.zeros(1, first_conv(generator).in_channels, size, size)
        with torch.no_grad():
            feats = generator.features(probe, layers)
        if len(feats) != len(layers):
            count = len(getattr(generator, "model", ()))
            raise ValueError(
                f"model.nce_layers {layers}: the generator has layers 0 to {count - 1}; choose indices among them "
                "(the reference's 0,4,8,12,16 need an anti-aliased ResnetGenerator with at least 5 blocks)"
            )
        return [f.shape[1] for f in feats]

    def directions(self) -> dict[str, Direction]:
        return {"AtoB": Direction("A", "B")}

    def generator_parameters(self):
        """The generator's and the patch sampler's parameters: `optimizer_G` trains both (see the class docstring)."""
        yield from self.generators.parameters()
        yield from self.sampler.parameters()

    def nce_loss(
        self,
        generator: nn.Module,
        source: Tensor,
        output: Tensor,
        flipped: bool = False,
        rng: torch.Generator | None = None,
    ) -> Tensor:
        """PatchNCE between `source` images and the generator's `output` for them, times `lambda_NCE`, averaged over
        `nce_layers`; `flipped`: the output was made from the flipped source (its features are flipped back)."""
        hp = self.hparams
        layers = list(hp.nce_layers)
        queries = generator.features(output, layers)
        if flipped:
            queries = [q.flip(3) for q in queries]
        keys = generator.features(source, layers)
        key_patches, ids = self.sampler(keys, hp.num_patches, None, rng)
        query_patches, _ = self.sampler(queries, hp.num_patches, ids)
        groups = 1 if hp.negatives_from_minibatch else source.shape[0]
        total = sum(
            (patch_nce_loss(q, k, groups, hp.nce_T) * hp.lambda_NCE).mean()
            for q, k in zip(query_patches, key_patches, strict=True)
        )
        return total / len(layers)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        hp = self.hparams
        real_A, real_B = batch["A"], batch["B"]
        opt_g, opt_d = self.optimizers()
        G, D = self.generators["AtoB"], self.discriminators["B"]
        n = real_A.shape[0]
        real = torch.cat([real_A, real_B]) if hp.nce_idt else real_A  # one pass translates both
        flipped = hp.flip_equivariance and bool(torch.rand(()) < 0.5)
        if flipped:
            real = real.flip(3)
        fake = G(real)  # (n or 2n, C, H, W)
        fake_B = fake[:n]

        # D first, as the reference: (real + fake) / 2, plus any penalty
        d_loss = self.discriminator_loss(D, real_B, fake_B, weight=0.5)
        self.step_discriminator(opt_d, d_loss)

        with self.frozen(self.discriminators):  # the discriminator is frozen while the generator and the sampler learn
            losses: dict[str, Tensor] = {}
            if hp.lambda_GAN > 0 or any(term.weight > 0 for term in self.loss_terms):
                step = GeneratorStep(fake_B, real_B, real[:n], D, d_fake=fake_B, d_real=real_B, paired=False)
                adversarial = self.generator_losses_against(step, "G_GAN")
                losses["G_GAN"] = adversarial.pop("G_GAN") * hp.lambda_GAN
                losses.update(adversarial)
            nce = {"NCE": self.nce_loss(G, real_A, fake_B, flipped)}
            if hp.nce_idt:
                nce["NCE_Y"] = self.nce_loss(G, real_B, fake[n:], flipped)
            g_loss = sum(losses.values()) + sum(nce.values()) / len(nce)  # the two NCE terms averaged
            self.step_generator(opt_g, g_loss)

        self.log_losses({**losses, **nce, "D": d_loss}, batch_size=n)

    def evaluation_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        G = self.translator("AtoB")
        rng = torch.Generator().manual_seed(0)  # the same locations at every evaluation; the run's RNG untouched
        losses = {"nce": self.nce_loss(G, batch["A"], G(batch["A"]), rng=rng)}
        if "B" in batch:
            losses["idt"] = F.l1_loss(G(batch["B"]), batch["B"])
        return losses

    def sample_images(self, batch: dict[str, Tensor]) -> dict[str, list[Tensor]]:
        """Columns of the sample grid: A | translation to B, each (N, C, H, W)."""
        return {"AtoB": [batch["A"], self.translator("AtoB")(batch["A"])]}
