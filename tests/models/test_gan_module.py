"""What the three models share (GANModule): EMA of the generators, LR policies through training."""

import math

import pytest
import torch

from tests.helpers import fit, tiny_args

MODELS = ["cyclegan", "pix2pix", "dcgan"]
GENERATORS = {"cyclegan": ["G_A", "G_B"], "pix2pix": ["G"], "dcgan": ["G"]}


@pytest.mark.parametrize("model", MODELS)
def test_ema_tracks_each_generator_and_is_saved(model, tmp_path):
    cli = fit(tiny_args("--trainer.max_steps=3", "--model.ema_decay=0.9", model=model))
    for name in GENERATORS[model]:
        ema = cli.model.ema[name]
        assert int(ema.n_averaged) == 3
        assert cli.model.inference_generator(name) is ema.module
        live, averaged = dict(getattr(cli.model, name).named_parameters()), dict(ema.module.named_parameters())
        assert any(not torch.allclose(live[k], averaged[k]) for k in live)
    ckpt = torch.load(next((tmp_path / "runs").rglob("last.ckpt")), weights_only=False)
    assert any(key.startswith("ema.") for key in ckpt["state_dict"])


@pytest.mark.parametrize("model", MODELS)
def test_ema_is_off_by_default(model):
    cli = fit(tiny_args("--trainer.max_steps=1", model=model))
    assert cli.model.ema is None
    name = GENERATORS[model][0]
    assert cli.model.inference_generator(name) is getattr(cli.model, name)


@pytest.mark.parametrize(("model", "metric"), [("cyclegan", "val/cycle"), ("pix2pix", "val/L1")])
def test_plateau_policy_steps_with_the_validation_metric(model, metric):
    cli = fit(tiny_args("--trainer.max_epochs=2", "--model.lr_policy=plateau", model=model))
    schedulers = cli.model.lr_schedulers()
    assert all(s.last_epoch == 2 for s in schedulers)  # stepped once per validation, with the metric
    assert all(math.isfinite(s.best) for s in schedulers) and metric in cli.trainer.callback_metrics


@pytest.mark.parametrize("policy", ["step", "cosine", "constant"])
def test_every_policy_trains(policy):
    cli = fit(tiny_args("--trainer.max_epochs=2", f"--model.lr_policy={policy}", "--model.lr_step_epochs=1"))
    lr = cli.model.optimizers()[0].param_groups[0]["lr"]  # in the second epoch
    expected = {"step": 2e-5, "cosine": 2e-4 * 0.5 * (1 + math.cos(math.pi / 200)), "constant": 2e-4}[policy]
    assert lr == pytest.approx(expected, rel=1e-6)
