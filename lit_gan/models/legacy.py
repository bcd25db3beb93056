"""Checkpoints written before the model API (lit_gan up to the resume work): upgraded as they are read.

They name the networks by attribute (`G_A.`, `D.`...), the image pools `pool_A`/`pool_B`, and keep the learning-rate
settings flat (`lr_policy: "linear"`, `n_epochs`, `n_epochs_decay`, `lr_step_epochs`), Adam's `betas` and
`lambda_feature_matching` among the model's hyperparameters. `upgrade_checkpoint` rewrites them in place into the
ModuleDict names (`generators.AtoB.`, `discriminators.B.`...), the pools' domains, `lr_policy` as one object, the
optimizers' betas and the `FeatureMatching` loss term, so `--ckpt_path`, `export` and `stylize` read them as before.
"""

from typing import Any

CYCLEGAN = {"ema.G_A": "ema.AtoB", "ema.G_B": "ema.BtoA", "G_A": "generators.AtoB", "G_B": "generators.BtoA"}
CYCLEGAN |= {"D_A": "discriminators.B", "D_B": "discriminators.A"}  # D_A judged domain B
FLAT_LR_KEYS = {"lr_policy": "policy", "n_epochs": "n_epochs", "n_epochs_decay": "n_epochs_decay"}
FLAT_LR_KEYS["lr_step_epochs"] = "step_epochs"
DEFAULT_BETAS = [0.5, 0.999]


def is_legacy(checkpoint: dict[str, Any]) -> bool:
    """Whether `checkpoint` was written before the model API (flat LR settings, or networks named by attribute)."""
    hparams = checkpoint.get("hyper_parameters") or {}
    names = {key.split(".")[0] for key in checkpoint.get("state_dict") or {}}
    return "lr_step_epochs" in hparams or bool(names & {"G", "G_A"})


def upgrade_checkpoint(checkpoint: dict[str, Any], model: str) -> None:
    """Rewrite a legacy checkpoint of `model` ("CycleGAN", "Pix2Pix" or "DCGAN") in place; others are left alone."""
    if not is_legacy(checkpoint):
        return
    hparams = checkpoint.setdefault("hyper_parameters", {})
    renames = network_names(model, hparams)
    state = checkpoint.get("state_dict") or {}
    for key in list(state):
        old = next((name for name in renames if key.startswith(f"{name}.")), None)
        if old is not None:
            state[renames[old] + key[len(old) :]] = state.pop(key)
    for process in checkpoint.get("rank_states") or []:
        process["pools"] = {name.removeprefix("pool_"): pool for name, pool in process["pools"].items()}
    upgrade_hyperparameters(hparams)


def network_names(model: str, hparams: dict[str, Any]) -> dict[str, str]:
    """The old attribute names of `model`'s networks -> their names in the model API (longest first)."""
    if model == "CycleGAN":
        return CYCLEGAN
    if model == "Pix2Pix":
        direction = hparams.get("direction", "AtoB")
        return {"ema.G": f"ema.{direction}", "G": f"generators.{direction}", "D": f"discriminators.{direction[-1]}"}
    if model == "DCGAN":
        return {"ema.G": "ema.samples", "G": "generators.samples", "D": "discriminators.A"}
    return {}


def upgrade_hyperparameters(hparams: dict[str, Any]) -> None:
    """Flat LR settings -> `lr_policy`; non-default `betas` -> both optimizers'; feature matching -> a loss term."""
    policy = {new: hparams.pop(old) for old, new in FLAT_LR_KEYS.items() if old in hparams}
    if policy:
        hparams["lr_policy"] = policy
    betas = hparams.pop("betas", DEFAULT_BETAS)
    if list(betas) != DEFAULT_BETAS:
        optimizer = {"class_path": "lit_gan.models.optim.GANAdam", "init_args": {"betas": list(betas)}}
        hparams["optimizer_G"], hparams["optimizer_D"] = optimizer, dict(optimizer)
    weight = hparams.pop("lambda_feature_matching", 0.0)
    if weight:
        term = {"class_path": "lit_gan.losses.FeatureMatching", "init_args": {"weight": weight}}
        hparams["generator_losses"] = [*(hparams.get("generator_losses") or []), term]
