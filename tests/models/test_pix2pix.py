import copy

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from lit_gan.cli import main
from lit_gan.losses.gan import gradient_penalty
from lit_gan.models import Pix2Pix
from lit_gan.networks import PatchGANDiscriminator, UnetGenerator
from tests.helpers import fit, tiny_args


def pix2pix(*extra):
    return tiny_args(*extra, model="pix2pix")


def test_discriminator_steps_before_generator_and_global_step_counts_iterations():
    cli = main(pix2pix("--trainer.max_epochs=1", "--trainer.limit_train_batches=3"), run=False)
    calls = []
    for name in ("step_discriminator", "step_generator"):
        original = getattr(cli.model, name)
        setattr(cli.model, name, lambda *a, _o=original, _n=name: (calls.append(_n[5]), _o(*a))[1])
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert calls == ["d", "g"] * 3
    assert cli.trainer.global_step == 3
    logged = set(cli.trainer.logged_metrics)
    assert {"train/G_GAN", "train/G_L1", "train/D", "train/lr_G", "train/lr_D", "val/L1"} <= logged


def test_direction_picks_input_and_target():
    batch = {"A": torch.randn(2, 3, 32, 32), "B": torch.randn(2, 3, 32, 32)}
    G, D = UnetGenerator(num_downs=5, ngf=4), PatchGANDiscriminator(in_channels=6, ndf=4, n_layers=2, norm="batch")
    ab, ba = Pix2Pix(G, D, direction="AtoB"), Pix2Pix(G, D, direction="BtoA")
    assert ab.pair(batch)[0] is batch["A"] and ba.pair(batch)[0] is batch["B"]
    columns = ba.eval().sample_images(batch)["BtoA"]
    assert columns[0] is batch["B"] and columns[2] is batch["A"] and columns[1].shape == (2, 3, 32, 32)


def test_discriminator_must_see_input_and_output():
    with pytest.raises(ValueError, match="set its in_channels to 6"):
        Pix2Pix(UnetGenerator(num_downs=5, ngf=4), PatchGANDiscriminator(in_channels=3, ndf=4))


@pytest.mark.parametrize("keep", [True, False])
def test_dropout_at_inference_as_the_original(keep):
    torch.manual_seed(0)
    G = UnetGenerator(num_downs=6, ngf=4)  # dropout sits in the num_downs - 5 innermost blocks
    D = PatchGANDiscriminator(in_channels=6, ndf=4, n_layers=2, norm="batch")
    model = Pix2Pix(G, D, dropout_at_inference=keep).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.equal(first, second) != keep
    assert not model.generators["AtoB"].training  # batch norm stays in eval mode either way
    model.train()
    assert all(m.training for m in model.modules())


def test_feature_matching_is_logged_and_in_the_generator_loss():
    fm = '--model.generator_losses=[{"class_path": "lit_gan.losses.FeatureMatching", "init_args": {"weight": 10}}]'
    cli = main(pix2pix("--trainer.max_steps=2", fm), run=False)
    stepped = []
    original = cli.model.step_generator
    cli.model.step_generator = lambda opt, loss: (stepped.append(loss.detach()), original(opt, loss))[1]
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    terms = {k: v for k, v in cli.model.step_losses.items() if k != "train/D"}
    assert set(terms) == {"train/G_GAN", "train/G_L1", "train/feature_matching"}
    assert float(terms["train/feature_matching"]) > 0
    torch.testing.assert_close(stepped[-1], sum(terms.values()))  # what the generator's optimizer stepped on


class FirstStep(pl.Callback):
    """Seeds the first step and keeps the networks and the batch as they were before it."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            torch.manual_seed(5)
            self.batch = {k: v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}
            self.G = copy.deepcopy(pl_module.generators["AtoB"])
            self.D = copy.deepcopy(pl_module.discriminators["B"])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.losses = dict(pl_module.step_losses)


@pytest.mark.parametrize("gan_mode", ["lsgan", "hinge", "wgangp", "vanilla"])
def test_trains_with_every_loss_and_logs_its_values(gan_mode):
    """The first step's D and G_GAN are the chosen loss's, recomputed from the networks before the step (the same
    dropout masks and gradient-penalty draws): (real + fake) / 2 on (input, output) pairs, plus WGAN-GP's penalty."""
    recorder = FirstStep()
    cli = fit(pix2pix("--trainer.max_steps=2", f"--model.gan_mode={gan_mode}"), callbacks=[recorder])
    G, D, batch = recorder.G, recorder.D, recorder.batch
    torch.manual_seed(5)
    fake = G(batch["A"])
    real_pair, fake_pair = torch.cat([batch["A"], batch["B"]], 1), torch.cat([batch["A"], fake.detach()], 1)
    expected_D = (GAN_TERMS[gan_mode][0](D(real_pair)) + GAN_TERMS[gan_mode][1](D(fake_pair))) * 0.5
    if gan_mode == "wgangp":
        expected_D = expected_D + 10 * gradient_penalty(D, real_pair, fake_pair)
    torch.testing.assert_close(recorder.losses["train/D"], expected_D.detach(), rtol=1e-4, atol=1e-6)
    assert torch.isfinite(cli.trainer.logged_metrics["train/D"])


GAN_TERMS = {  # (real term, fake term) of the discriminator, written out
    "lsgan": (lambda p: ((p - 1) ** 2).mean(), lambda p: (p**2).mean()),
    "vanilla": (lambda p: F.softplus(-p).mean(), lambda p: F.softplus(p).mean()),
    "hinge": (lambda p: F.relu(1 - p).mean(), lambda p: F.relu(1 + p).mean()),
    "wgangp": (lambda p: -p.mean(), lambda p: p.mean()),
}
