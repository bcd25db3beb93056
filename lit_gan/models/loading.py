"""Loading a trained model from a checkpoint written by the CLI, for inference (predict, export)."""

import os
import pickle

import torch

from lit_gan.models.base import GANModule
from lit_gan.runs import import_class


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or holds no lit_gan model."""


def load_checkpoint(path: str | os.PathLike) -> tuple[GANModule, dict]:
    """The GAN module of a checkpoint written by `python -m lit_gan fit` (which records the model's class and its
    networks' configs), on the CPU in eval mode, and the data module's hyperparameters (crop size, ...).

    The checkpoint is unpickled (`weights_only=False`, as Lightning does): load only checkpoints you trust. A model
    built in Python records no network configs: load it with its class, e.g.
    `CycleGAN.load_from_checkpoint(path, generator=..., discriminator=...)`.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} not found (e.g. runs/lit_gan/<id>/checkpoints/last.ckpt)")
    try:  # mmap: reading the hyperparameters does not load the tensors
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as err:
        raise CheckpointError(f"{path} is not a PyTorch checkpoint: {err}") from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a Lightning checkpoint")
    class_path = (checkpoint.get("hyper_parameters") or {}).get("_class_path")
    if not isinstance(class_path, str):
        raise CheckpointError(
            f"{path} does not name its model class (hyper_parameters._class_path): it was not written by "
            "`python -m lit_gan fit`; load it with its class, e.g. CycleGAN.load_from_checkpoint(path, "
            "generator=..., discriminator=...)"
        )
    cls = import_class(class_path)
    if not (isinstance(cls, type) and issubclass(cls, GANModule)):
        raise CheckpointError(f"{path} holds a {class_path}, which is not a lit_gan GAN model")
    data_hparams = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    del checkpoint
    return cls.load_from_checkpoint(path, map_location="cpu").eval(), data_hparams
