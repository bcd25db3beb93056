"""CycleGAN and pix2pix against condensed retyped copies of the reference training steps (junyanz/pytorch-CycleGAN-and-
pix2pix: models/cycle_gan_model.py, models/pix2pix_model.py, models/networks.py, util/image_pool.py), written from the
reference and independent of lit_gan's code: from the same weights and batches, three whole training steps give the
same losses (every term, every step) and the same updated networks, in float64.

Covered: the cycle weights lambda_A and lambda_B (given different values, so that a swap shows), the identity loss
(which generator sees which domain, and its weight lambda_B * lambda_identity / lambda_A * lambda_identity), the
discriminators' (real + fake) / 2, the image pool (filled in the first step, swapping at random after), pix2pix's
(input, output) pairs, its L1 weight and its dropout; the optimizers' order (CycleGAN: G then D; pix2pix: D then G).
"""

import contextlib

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lit_gan.models import CycleGAN, Pix2Pix
from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator, UnetGenerator
from tests.models.test_cut import RefResnetBlock

STEPS = 3
LR = 2e-4

# -- the reference networks, condensed but unchanged in what they compute ------------------------------------------


def instance_norm(channels):
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class RefResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, n_blocks, norm_layer=instance_norm, use_bias=True):
        super().__init__()
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                norm_layer(ngf * mult * 2), nn.ReLU(True),
            ]  # fmt: skip
        model += [RefResnetBlock(ngf * 4) for _ in range(n_blocks)]  # the same block in CUT's reference
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                   bias=use_bias),
                norm_layer(ngf * mult // 2), nn.ReLU(True),
            ]  # fmt: skip
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


class RefNLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf, n_layers, norm_layer, use_bias):
        super().__init__()
        seq = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            seq += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=use_bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=use_bias),
            norm_layer(ndf * mult),
            nn.LeakyReLU(0.2, True),
        ]
        seq += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


class RefUnetBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 use_dropout=False):  # fmt: skip
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=False)  # batch norm: no bias
        downrelu, downnorm = nn.LeakyReLU(0.2, True), nn.BatchNorm2d(inner_nc)
        uprelu, upnorm = nn.ReLU(True), nn.BatchNorm2d(outer_nc)
        if outermost:
            model = [downconv, submodule, uprelu, nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1), nn.Tanh()]
        elif innermost:
            model = [downrelu, downconv, uprelu, nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=False), upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=False)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            model += [nn.Dropout(0.5)] if use_dropout else []
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, use_dropout):
        super().__init__()
        block = RefUnetBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = RefUnetBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout)
        block = RefUnetBlock(ngf * 4, ngf * 8, submodule=block)
        block = RefUnetBlock(ngf * 2, ngf * 4, submodule=block)
        block = RefUnetBlock(ngf, ngf * 2, submodule=block)
        self.model = RefUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)

    def forward(self, x):
        return self.model(x)


class RefImagePool:
    """util/image_pool.py; its `random.uniform(0, 1)` and `random.randint(0, pool_size - 1)` are drawn from `draws`
    (the same stream as lit_gan's pool: a seeded torch generator, one uniform and, on a swap, one integer)."""

    def __init__(self, pool_size, draws):
        self.pool_size, self.num_imgs, self.images, self.draws = pool_size, 0, [], draws

    def query(self, images):
        return_images = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs = self.num_imgs + 1
                self.images.append(image)
                return_images.append(image)
            else:
                p = torch.rand((), generator=self.draws).item()
                if p > 0.5:
                    random_id = int(torch.randint(self.pool_size, (), generator=self.draws))
                    tmp = self.images[random_id].clone()
                    self.images[random_id] = image
                    return_images.append(tmp)
                else:
                    return_images.append(image)
        return torch.cat(return_images, 0)


def set_requires_grad(nets, requires_grad):
    for net in nets:
        for param in net.parameters():
            param.requires_grad = requires_grad


def lsgan(prediction, target_is_real):
    return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if target_is_real else 0.0))


def vanilla(prediction, target_is_real):
    return F.binary_cross_entropy_with_logits(prediction, torch.full_like(prediction, 1.0 if target_is_real else 0.0))


class RefCycleGAN:
    """cycle_gan_model.py's forward, backward_G, backward_D_basic and optimize_parameters (LSGAN)."""

    def __init__(self, G_A, G_B, D_A, D_B, opt, pool_draws):
        self.netG_A, self.netG_B, self.netD_A, self.netD_B, self.opt = G_A, G_B, D_A, D_B, opt
        self.fake_A_pool = RefImagePool(opt["pool_size"], pool_draws["A"])
        self.fake_B_pool = RefImagePool(opt["pool_size"], pool_draws["B"])
        params_G = [*G_A.parameters(), *G_B.parameters()]
        self.optimizer_G = torch.optim.Adam(params_G, lr=LR, betas=(0.5, 0.999))
        self.optimizer_D = torch.optim.Adam([*D_A.parameters(), *D_B.parameters()], lr=LR, betas=(0.5, 0.999))

    def forward(self):
        self.fake_B = self.netG_A(self.real_A)
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B)
        self.rec_B = self.netG_A(self.fake_A)

    def backward_D_basic(self, netD, real, fake):
        loss_D_real = lsgan(netD(real), True)
        loss_D_fake = lsgan(netD(fake.detach()), False)
        loss_D = (loss_D_real + loss_D_fake) * 0.5
        loss_D.backward()
        return loss_D

    def backward_G(self):
        lambda_idt, lambda_A, lambda_B = self.opt["lambda_identity"], self.opt["lambda_A"], self.opt["lambda_B"]
        self.idt_A = self.netG_A(self.real_B)
        self.loss_idt_A = F.l1_loss(self.idt_A, self.real_B) * lambda_B * lambda_idt
        self.idt_B = self.netG_B(self.real_A)
        self.loss_idt_B = F.l1_loss(self.idt_B, self.real_A) * lambda_A * lambda_idt
        self.loss_G_A = lsgan(self.netD_A(self.fake_B), True)
        self.loss_G_B = lsgan(self.netD_B(self.fake_A), True)
        self.loss_cycle_A = F.l1_loss(self.rec_A, self.real_A) * lambda_A
        self.loss_cycle_B = F.l1_loss(self.rec_B, self.real_B) * lambda_B
        loss_G = self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B
        (loss_G + self.loss_idt_A + self.loss_idt_B).backward()

    def optimize_parameters(self):
        self.forward()
        set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()
        set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad()
        self.loss_D_A = self.backward_D_basic(self.netD_A, self.real_B, self.fake_B_pool.query(self.fake_B))
        self.loss_D_B = self.backward_D_basic(self.netD_B, self.real_A, self.fake_A_pool.query(self.fake_A))
        self.optimizer_D.step()

    def losses(self):
        names = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
        return {f"train/{name}": getattr(self, f"loss_{name}").detach() for name in names}


class RefPix2Pix:
    """pix2pix_model.py's forward, backward_D, backward_G and optimize_parameters (vanilla GAN loss)."""

    def __init__(self, G, D, lambda_L1):
        self.netG, self.netD, self.lambda_L1 = G, D, lambda_L1
        self.optimizer_G = torch.optim.Adam(G.parameters(), lr=LR, betas=(0.5, 0.999))
        self.optimizer_D = torch.optim.Adam(D.parameters(), lr=LR, betas=(0.5, 0.999))

    def forward(self):
        self.fake_B = self.netG(self.real_A)

    def backward_D(self):
        fake_AB = torch.cat((self.real_A, self.fake_B), 1)
        self.loss_D_fake = vanilla(self.netD(fake_AB.detach()), False)
        real_AB = torch.cat((self.real_A, self.real_B), 1)
        self.loss_D_real = vanilla(self.netD(real_AB), True)
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        self.loss_D.backward()

    def backward_G(self):
        fake_AB = torch.cat((self.real_A, self.fake_B), 1)
        self.loss_G_GAN = vanilla(self.netD(fake_AB), True)
        self.loss_G_L1 = F.l1_loss(self.fake_B, self.real_B) * self.lambda_L1
        (self.loss_G_GAN + self.loss_G_L1).backward()

    def optimize_parameters(self):
        self.forward()
        set_requires_grad([self.netD], True)
        self.optimizer_D.zero_grad()
        self.backward_D()
        self.optimizer_D.step()
        set_requires_grad([self.netD], False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()

    def losses(self):
        return {f"train/{name}": getattr(self, f"loss_{name}").detach() for name in ("D", "G_GAN", "G_L1")}


# -- running both sides ---------------------------------------------------------------------------------------------


class StepRecorder(pl.Callback):
    """Seeds the global generator before each step (dropout draws from it; the reference side is seeded alike) and
    records the model's logged losses after it."""

    def __init__(self) -> None:
        self.losses: list[dict[str, torch.Tensor]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        torch.manual_seed(100 + batch_idx)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append({k: v.detach().clone() for k, v in pl_module.step_losses.items()})


def train_ours(model: pl.LightningModule, batches: list[dict]) -> StepRecorder:
    recorder = StepRecorder()
    trainer = pl.Trainer(
        max_steps=len(batches), accelerator="cpu", precision="64-true", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, callbacks=[recorder],
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=DataLoader(batches, batch_size=None))
    return recorder


@contextlib.contextmanager
def float64_default():
    """The reference side in float64 as lit_gan's side (Lightning's "64-true" precision sets the default dtype during
    the fit, so that the pools' uniform draws are float64 on both sides)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def copy_weights(pairs) -> None:
    with torch.no_grad():
        for ref, ours in pairs:
            ref_params, our_params = list(ref.parameters()), list(ours.parameters())
            assert [p.shape for p in ref_params] == [p.shape for p in our_params]
            for p_ref, p_ours in zip(ref_params, our_params, strict=True):
                p_ref.copy_(p_ours)


def assert_same_networks(pairs, running_stats: bool = True) -> None:
    """Equal weights (and batch-norm statistics) after the steps, to float64 rounding. A convolution bias followed by
    instance norm has no effect and a gradient of 0 up to rounding, which Adam turns into +-lr on either side: such a
    tensor (its whole gradient below 1e-9 of the network's largest) is left out; every other is compared whole."""
    for ref, ours in pairs:
        scale = max(float(p.grad.abs().max()) for p in ref.parameters())
        compared = 0
        for (name, p_ref), p_ours in zip(ref.named_parameters(), ours.parameters(), strict=True):
            if float(p_ref.grad.abs().max()) < 1e-9 * scale:
                assert p_ref.dim() == 1, f"{name}: only a bias may have no gradient"
                continue
            torch.testing.assert_close(p_ours.detach(), p_ref.detach(), rtol=1e-9, atol=1e-12, msg=name)
            compared += 1
        assert compared >= len(list(ref.parameters())) // 2
        for b_ref, b_ours in zip(ref.buffers(), ours.buffers(), strict=True):
            if running_stats or b_ref.dim() == 0:
                torch.testing.assert_close(b_ours, b_ref, rtol=1e-9, atol=1e-12)


def assert_same_losses(ours: list[dict], ref: list[dict]) -> None:
    assert len(ours) == len(ref) == STEPS
    for step, (mine, theirs) in enumerate(zip(ours, ref, strict=True)):
        assert set(theirs) <= set(mine), step
        for key, value in theirs.items():
            torch.testing.assert_close(mine[key], value, rtol=1e-9, atol=1e-12, msg=f"step {step}: {key}")


def batches(keys: tuple[str, ...], size: int, n: int = STEPS) -> list[dict]:
    rng = torch.Generator().manual_seed(7)
    return [
        {k: torch.rand(2, 3, size, size, generator=rng, dtype=torch.float64) * 2 - 1 for k in keys} for _ in range(n)
    ]


# -- the tests ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lambda_identity", [0.5, 0.0])
def test_cyclegan_steps_equal_the_reference(lambda_identity):
    opt = {"lambda_A": 7.0, "lambda_B": 3.0, "lambda_identity": lambda_identity, "pool_size": 2}
    torch.manual_seed(0)
    ours = CycleGAN(
        generator=ResnetGenerator(ngf=4, n_blocks=2),
        discriminator=PatchGANDiscriminator(ndf=4, n_layers=2),
        lr=LR,
        **opt,
    ).double()
    G_A, G_B = (RefResnetGenerator(3, 3, ngf=4, n_blocks=2).double() for _ in range(2))
    D_A, D_B = (RefNLayerDiscriminator(3, 4, 2, instance_norm, use_bias=True).double() for _ in range(2))
    pairs = [(G_A, ours.generators["AtoB"]), (G_B, ours.generators["BtoA"])]
    pairs += [(D_A, ours.discriminators["B"]), (D_B, ours.discriminators["A"])]  # D_A judges domain B
    copy_weights(pairs)
    data = batches(("A", "B"), 32)

    recorded = train_ours(ours, data)

    draws = {d: torch.Generator().manual_seed(ours.pools[d].seed) for d in "AB"}  # the seed each pool drew from

    ref = RefCycleGAN(G_A, G_B, D_A, D_B, opt, draws)
    ref_losses = []
    with float64_default():
        for i, batch in enumerate(data):
            torch.manual_seed(100 + i)
            ref.real_A, ref.real_B = batch["A"], batch["B"]
            ref.optimize_parameters()
            ref_losses.append(ref.losses())
    if lambda_identity == 0:  # the reference computes them all the same; lit_gan leaves them out
        ref_losses = [{k: v for k, v in step.items() if "idt" not in k} for step in ref_losses]
        assert not any("idt" in key for key in recorded.losses[0])
    assert_same_losses(recorded.losses, ref_losses)
    assert len(ref.fake_A_pool.images) == len(ours.pools["A"]) == 2
    for mine, theirs in zip(ours.pools["B"].images, ref.fake_B_pool.images, strict=True):  # the same pool contents
        torch.testing.assert_close(mine, theirs[0], rtol=1e-9, atol=1e-12)
    assert_same_networks(pairs)


def test_pix2pix_steps_equal_the_reference():
    torch.manual_seed(0)
    ours = Pix2Pix(
        generator=UnetGenerator(ngf=2, num_downs=6, use_dropout=True),
        discriminator=PatchGANDiscriminator(in_channels=6, ndf=4, n_layers=2, norm="batch"),
        lambda_L1=37.0,
        lr=LR,
    ).double()
    G = RefUnetGenerator(3, 3, num_downs=6, ngf=2, use_dropout=True).double()
    D = RefNLayerDiscriminator(6, 4, 2, nn.BatchNorm2d, use_bias=False).double()
    pairs = [(G, ours.generators["AtoB"]), (D, ours.discriminators["B"])]
    copy_weights(pairs)
    data = batches(("A", "B"), 64)

    recorded = train_ours(ours, data)

    ref = RefPix2Pix(G, D, lambda_L1=37.0)
    ref_losses = []
    with float64_default():
        for i, batch in enumerate(data):
            torch.manual_seed(100 + i)  # the same dropout masks
            ref.real_A, ref.real_B = batch["A"], batch["B"]
            ref.optimize_parameters()
            ref_losses.append(ref.losses())
    assert_same_losses(recorded.losses, ref_losses)
    assert_same_networks(pairs[:1])
    # The discriminator's batch-norm running statistics differ: the reference scores the fakes first, lit_gan the
    # reals (losses and gradients are the same; the statistics average the batches in another order). They are never
    # used: the discriminator always runs in training mode.
    assert_same_networks(pairs[1:], running_stats=False)


def test_the_reference_steps_see_a_swapped_identity_loss(monkeypatch):
    """The comparison above fails when lit_gan computes the identity loss with the generators swapped (the mutation
    this test file was written against): checked here by making that mutation."""

    def swapped(self, real_A, real_B):
        losses, fake_A, fake_B = original(self, real_A, real_B)
        G, hp = self.generators, self.hparams
        losses["idt_A"] = F.l1_loss(G["BtoA"](real_B), real_B) * hp.lambda_B * hp.lambda_identity
        losses["idt_B"] = F.l1_loss(G["AtoB"](real_A), real_A) * hp.lambda_A * hp.lambda_identity
        return losses, fake_A, fake_B

    original = CycleGAN.generator_losses
    monkeypatch.setattr(CycleGAN, "generator_losses", swapped)
    with pytest.raises(AssertionError, match="idt_A"):
        test_cyclegan_steps_equal_the_reference(0.5)
