"""What every model of the catalogue shares (GANModule): EMA of the generators, LR policies through training."""

import inspect
import math

import pytest
import torch
from pytorch_lightning.callbacks import Callback

from tests.helpers import TINY_MODELS, fit, model_class, tiny_args

MODELS = list(TINY_MODELS)


class GeneratorWeights(Callback):
    """The live generators' parameters after every training step (after the EMA update)."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append({k: v.detach().clone() for k, v in pl_module.generators.state_dict().items()})


@pytest.mark.parametrize("model", MODELS)
def test_ema_follows_the_decay_formula_for_each_generator_and_is_saved(model, tmp_path):
    decay, record = 0.9, GeneratorWeights()
    cli = fit(tiny_args("--trainer.max_steps=3", f"--model.ema_decay={decay}", model=model), callbacks=[record])
    # The first update copies the weights; each later one is ema = decay * ema + (1 - decay) * live.
    expected = dict(record.steps[0])
    for live in record.steps[1:]:
        expected = {k: v.lerp(live[k], 1 - decay) for k, v in expected.items() if v.is_floating_point()}
    assert set(cli.model.ema) == set(cli.model.generators)  # every generator (mapping network, style encoder) averaged
    for name, ema in cli.model.ema.items():
        assert int(ema.n_averaged) == 3
        assert cli.model.translator(name) is ema.module
        averaged = ema.module.state_dict()
        for key, value in averaged.items():
            if not value.is_floating_point():
                continue  # batch norm's step counter
            torch.testing.assert_close(value, expected[f"{name}.{key}"], msg=f"ema.{name}.{key}")
        live = record.steps[-1]
        assert any(not torch.equal(live[f"{name}.{k}"], v) for k, v in averaged.items())
    ckpt = torch.load(next((tmp_path / "runs").rglob("last.ckpt")), weights_only=True)
    assert {k for k in ckpt["state_dict"] if k.startswith("ema.")} >= {f"ema.{d}.n_averaged" for d in cli.model.ema}


@pytest.mark.parametrize("model", MODELS)
def test_ema_is_off_by_default_unless_the_model_says_otherwise(model):
    declared = inspect.signature(model_class(model).__init__).parameters.get("ema_decay")
    cli = fit(tiny_args("--trainer.max_steps=1", model=model))
    if declared is None or declared.default is None:  # GANModule's default
        assert cli.model.ema is None
        for name, generator in cli.model.generators.items():
            assert cli.model.translator(name) is generator
    else:  # the Progressive GAN's and StarGAN v2's 0.999, as their papers
        assert cli.model.hparams.ema_decay == declared.default
        for name, ema in cli.model.ema.items():
            assert cli.model.translator(name) is ema.module


@pytest.mark.parametrize(("model", "metric"), [("cyclegan", "val/cycle"), ("pix2pix", "val/L1")])
def test_plateau_policy_steps_with_the_validation_metric(model, metric):
    cli = fit(tiny_args("--trainer.max_epochs=2", "--model.lr_policy=plateau", model=model))
    schedulers = cli.model.lr_schedulers()
    assert all(s.last_epoch == 2 for s in schedulers)  # stepped once per validation, with the metric
    assert all(math.isfinite(s.best) for s in schedulers) and metric in cli.trainer.callback_metrics


@pytest.mark.parametrize("policy", ["step", "cosine", "constant"])
def test_every_policy_trains(policy):
    cli = fit(
        tiny_args("--trainer.max_epochs=2", f"--model.lr_policy.policy={policy}", "--model.lr_policy.step_epochs=1")
    )
    lr = cli.model.optimizers()[0].param_groups[0]["lr"]  # in the second epoch
    expected = {"step": 2e-5, "cosine": 2e-4 * 0.5 * (1 + math.cos(math.pi / 200)), "constant": 2e-4}[policy]
    assert lr == pytest.approx(expected, rel=1e-6)
