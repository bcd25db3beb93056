"""Checkpoints written before the model API (networks named by attribute, flat LR settings) still load: for export and
stylize (`load_checkpoint`) and to resume training (`--ckpt_path`), with the same weights."""

import pytest
import torch

from lit_gan.cli import main
from lit_gan.models.loading import load_checkpoint
from tests.helpers import TINY_MODELS, tiny_args

# How the old code named each network (and the image pools), by the new names.
OLD_NAMES = {
    "cyclegan": {"generators.AtoB": "G_A", "generators.BtoA": "G_B", "discriminators.B": "D_A",
                 "discriminators.A": "D_B", "ema.AtoB": "ema.G_A", "ema.BtoA": "ema.G_B"},
    "pix2pix": {"generators.BtoA": "G", "discriminators.A": "D"},
    "dcgan": {"generators.samples": "G", "discriminators.A": "D"},
}  # fmt: skip
EXTRA = {"cyclegan": ["--model.ema_decay=0.9"], "pix2pix": ["--model.direction=BtoA"], "dcgan": []}


def as_written_before(checkpoint: dict, model: str) -> dict:
    """`checkpoint` as the code before the model API wrote it (the format of lit_gan's checkpoints until then)."""
    state = {}
    for key, value in checkpoint["state_dict"].items():
        new = next((n for n in OLD_NAMES[model] if key.startswith(f"{n}.")), None)
        state[key if new is None else OLD_NAMES[model][new] + key[len(new) :]] = value
    hp = dict(checkpoint["hyper_parameters"])
    policy = hp.pop("lr_policy") or {}
    hp.update(lr_policy=policy.get("policy", "linear"), n_epochs=policy.get("n_epochs", 100))
    hp.update(n_epochs_decay=policy.get("n_epochs_decay", 100), lr_step_epochs=policy.get("step_epochs", 50))
    hp.update(betas=[0.5, 0.999], lambda_feature_matching=0.0)
    for key in ("optimizer_G", "optimizer_D", "generator_losses"):
        hp.pop(key)
    states = [{**s, "pools": {f"pool_{k}": v for k, v in s["pools"].items()}} for s in checkpoint["rank_states"]]
    return {**checkpoint, "state_dict": state, "hyper_parameters": hp, "rank_states": states}


@pytest.mark.parametrize("model", list(OLD_NAMES))
def test_a_checkpoint_written_before_the_model_api_loads_and_resumes(model, tmp_path, trained_checkpoint):
    assert set(OLD_NAMES) <= set(TINY_MODELS)  # the models that existed before (later ones have no old checkpoints)
    new_path = trained_checkpoint(model, *EXTRA[model])
    new = torch.load(new_path, weights_only=True)
    old_path = tmp_path / "old.ckpt"
    torch.save(as_written_before(new, model), old_path)

    loaded, _ = load_checkpoint(old_path)
    assert loaded.state_dict().keys() == new["state_dict"].keys()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, new["state_dict"][key]), key

    args = tiny_args("--trainer.max_steps=4", "--metrics.enabled=false", *EXTRA[model], model=model)
    ends = []
    for path in (new_path, old_path):
        cli = main(args, run=False)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=path)
        assert cli.trainer.global_step == 4
        ends.append({k: v.clone() for k, v in cli.model.state_dict().items()})
    for key, value in ends[0].items():
        assert torch.equal(value, ends[1][key]), key
