"""The stabilisers every model of the catalogue has (GANModule's options): R1 with lazy regularization, the EMA's
ramp-up, two time-scale learning rates, and the raw generators' scores beside the EMA's. Each test fails if its
stabiliser is silently off."""

import math

import pytest
import torch
from torch import nn

from lit_gan.callbacks import MetricsCallback
from lit_gan.losses.gan import r1_penalty
from lit_gan.models.base import GANModule
from lit_gan.models.ema import EMA
from tests.helpers import TINY_MODELS, fit, tiny_args

MODELS = list(TINY_MODELS)


# -- R1 ---------------------------------------------------------------------------------------------------------------


def test_r1_of_a_linear_patch_discriminator_is_its_weights_squared_norm_per_pixel():
    D = nn.Conv2d(3, 1, 1, bias=True)  # a 1x1 patch discriminator: D(x)[b, 0, i, j] = w . x[b, :, i, j] + bias
    real = torch.randn(4, 3, 8, 6)
    # grad_x sum D(x) is w at every pixel, so ||grad||^2 = H * W * ||w||^2 for every image
    assert r1_penalty(D, real).item() == pytest.approx(8 * 6 * D.weight.square().sum().item(), rel=1e-6)


def test_r1_of_a_linear_scalar_discriminator_and_its_gradient_trains_the_discriminator():
    D = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1))
    penalty = r1_penalty(D, torch.randn(5, 3, 4, 4))
    w = D[1].weight
    assert penalty.item() == pytest.approx(w.square().sum().item(), rel=1e-6)
    (grad,) = torch.autograd.grad(penalty, w)
    torch.testing.assert_close(grad, 2 * w.detach())  # d ||w||^2 / dw


@pytest.mark.parametrize("model", MODELS)
def test_r1_is_added_to_every_discriminator_loss_on_every_nth_iteration(model, monkeypatch):
    gamma, every = 3.0, 2
    seen: list[tuple[int, float, float]] = []  # (iteration, loss with R1 - loss without, gamma / 2 * every * R1)
    original = GANModule.discriminator_loss

    def checked(self, D, real, fake, weight=1.0, downscaled=1):
        before = torch.get_rng_state()  # the same random draws (WGAN-GP's interpolation) in both calls
        loss = original(self, D, real, fake, weight, downscaled)
        after, self.r1_gamma = torch.get_rng_state(), 0.0
        try:
            torch.set_rng_state(before)
            without = original(self, D, real, fake, weight, downscaled)
        finally:
            self.r1_gamma = gamma
            torch.set_rng_state(after)
        seen.append((self._iteration, (loss - without).item(), gamma / 2 * every * r1_penalty(D, real).item()))
        return loss

    weighted: list[int] = []  # the iterations of every weighted R1 term, whatever loss a model's discriminators use
    original_weighted = GANModule.weighted_r1

    def recorded(self, penalty):
        weighted.append(self._iteration)
        return original_weighted(self, penalty)

    monkeypatch.setattr(GANModule, "discriminator_loss", checked)
    monkeypatch.setattr(GANModule, "weighted_r1", recorded)
    args = [
        "--trainer.max_steps=3",
        f"--model.r1_gamma={gamma}",
        f"--model.r1_every={every}",
        "--trainer.log_every_n_steps=1",
    ]
    cli = fit(tiny_args(*args, "--metrics.enabled=false", model=model))
    assert sorted(set(weighted)) == [0, 2]
    steps = sorted({step for step, _, _ in seen})
    assert steps == [0, 1, 2] or not seen  # not seen: StarGAN v2's own D loss, its R1 checked against its reference
    for step, added, expected in seen:
        if step % every == 0:
            assert expected > 0 and added == pytest.approx(expected, rel=1e-4, abs=1e-7), (step, added, expected)
        else:
            assert added == 0.0, step  # lazy: no penalty in between
    assert "train/R1" in cli.trainer.logged_metrics


def test_r1_settings_are_checked():
    with pytest.raises(ValueError, match="model.r1_gamma"):
        fit(tiny_args("--model.r1_gamma=-1", "--trainer.max_steps=1"))
    with pytest.raises(ValueError, match="model.r1_every"):
        fit(tiny_args("--model.r1_every=0", "--trainer.max_steps=1"))


# -- EMA ramp-up ------------------------------------------------------------------------------------------------------


def test_ema_rampup_follows_stylegan2_adas_formula():
    ema = EMA(nn.Linear(2, 2), decay=0.999, rampup=0.05)
    assert ema.decay_at(0) == 0.0  # the first update copies the weights
    for t in (1, 10, 100, 1000, 100000):
        # ADA: ema_nimg = min(ema_kimg * 1000, cur_nimg * ema_rampup); beta = 0.5 ** (batch / ema_nimg)
        half_life_steps = min(math.log(0.5) / math.log(0.999), t * 0.05)
        assert ema.decay_at(t) == pytest.approx(0.5 ** (1 / half_life_steps), rel=1e-9)
    assert ema.decay_at(5) == 0.0625 and ema.decay_at(100000) == 0.999
    assert EMA(nn.Linear(2, 2), decay=0.999).decay_at(1) == 0.999  # without the ramp: the decay from the start


def test_ema_with_rampup_averages_at_the_ramped_decay_and_resumes_its_count():
    torch.manual_seed(0)
    live = nn.Linear(3, 2)
    ema = EMA(live, decay=0.9, rampup=0.5)
    weights = [torch.randn(2, 3) for _ in range(6)]
    expected = None
    for t, w in enumerate(weights[:4]):
        live.weight.data.copy_(w)
        ema.update_parameters(live)
        expected = w.clone() if expected is None else expected.lerp(w, 1 - ema.decay_at(t))
        torch.testing.assert_close(ema.module.weight, expected)
    resumed = EMA(nn.Linear(3, 2), decay=0.9, rampup=0.5)
    resumed.load_state_dict(ema.state_dict())  # a checkpoint: n_averaged = 4
    for t, w in enumerate(weights[4:], start=4):
        live.weight.data.copy_(w)
        resumed.update_parameters(live)
        expected = expected.lerp(w, 1 - min(0.9, 0.5 ** (1 / (t * 0.5))))
        torch.testing.assert_close(resumed.module.weight, expected)
    assert int(resumed.n_averaged) == 6


@pytest.mark.parametrize("model", MODELS)
def test_every_model_ramps_its_ema_up(model):
    decay, rampup = 0.9, 0.5
    cli = fit(tiny_args("--trainer.max_steps=3", f"--model.ema_decay={decay}", f"--model.ema_rampup={rampup}",
                        "--metrics.enabled=false", model=model))  # fmt: skip
    assert set(cli.model.ema) == set(cli.model.generators)
    for ema in cli.model.ema.values():
        assert (ema.decay, ema.rampup, int(ema.n_averaged)) == (decay, rampup, 3)
    assert cli.model.hparams.ema_rampup == rampup


def test_ema_rampup_needs_an_ema():
    with pytest.raises(ValueError, match="model.ema_rampup"):
        fit(tiny_args("--model.ema_rampup=0.05", "--trainer.max_steps=1"))


# -- two time-scale learning rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_lr_D_sets_the_discriminators_learning_rate_only(model):
    cli = fit(tiny_args("--trainer.max_steps=1", "--model.lr=0.0004", "--model.lr_D=0.0001", "--metrics.enabled=false",
                        "--model.lr_policy=constant", model=model))  # fmt: skip
    opt_g, opt_d = cli.model.optimizers()
    assert opt_g.param_groups[0]["lr"] == pytest.approx(4e-4)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_without_lr_D_both_optimizers_use_lr():
    cli = fit(tiny_args("--trainer.max_steps=1", "--model.lr=0.0003", "--metrics.enabled=false"))
    assert [opt.param_groups[0]["lr"] for opt in cli.model.optimizers()] == pytest.approx([3e-4, 3e-4])


# -- the EMA's and the raw generators' scores -------------------------------------------------------------------------


def test_metrics_score_the_raw_generators_beside_the_ema():
    cli = fit(tiny_args("--trainer.max_epochs=1", "--model.ema_decay=0.5", "--data.synthetic.test_size=5"))
    logged = cli.trainer.callback_metrics
    for key in ("fid", "kid_mean", "fid_AtoB", "kid_mean_BtoA", "ssim"):
        assert f"val/{key}_raw" in logged, key
    assert float(logged["val/fid_raw"]) != float(logged["val/fid"])  # two different generators scored
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, MetricsCallback))
    with cli.model.raw_generators():  # the raw numbers are those of the trained generators themselves
        assert cli.model.translator("AtoB") is cli.model.generators["AtoB"]
    assert cli.model.translator("AtoB") is cli.model.ema["AtoB"].module
    callback.raw_generators = False
    again = callback.evaluate(cli.trainer, cli.model)
    assert again["val/fid"] == pytest.approx(float(logged["val/fid"]), rel=1e-5)
    assert not any(key.endswith("_raw") for key in again)


def test_without_ema_nothing_raw_is_logged():
    cli = fit(tiny_args("--trainer.max_epochs=1", "--data.synthetic.test_size=5"))
    assert "val/fid" in cli.trainer.callback_metrics
    assert not any(key.endswith("_raw") for key in cli.trainer.callback_metrics)
