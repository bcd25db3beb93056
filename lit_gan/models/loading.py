"""Loading a trained model from a checkpoint written by the CLI, for inference (predict, export)."""

import io
import os

import torch

from lit_gan.models.base import GANModule
from lit_gan.models.legacy import is_legacy, upgrade_checkpoint
from lit_gan.runs import CheckpointError, import_class, read_checkpoint


def load_checkpoint(path: str | os.PathLike) -> tuple[GANModule, dict]:
    """The GAN module of a checkpoint written by `python -m lit_gan fit` (which records the model's class and its
    networks' configs), on the CPU in eval mode, and the data module's hyperparameters (crop size, ...).

    The checkpoint is read weights-only (tensors and plain values; see `lit_gan.runs.read_checkpoint`): a file that
    holds anything else, such as objects whose unpickling would run code, is refused before anything is built. A model
    built in Python records no network configs: load it with its class, e.g.
    `CycleGAN.load_from_checkpoint(path, generator=..., discriminator=..., weights_only=True)`.

    Raises:
        CheckpointError: naming the file, if it is missing, refused (`CheckpointRefused`), not a PyTorch checkpoint or
            not one of a lit_gan model written by the CLI.
    """
    checkpoint = read_checkpoint(path)  # mmap: reading the hyperparameters does not load the tensors
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
    source: str | os.PathLike | io.BytesIO = path
    if is_legacy(checkpoint):  # written before the model API: upgraded in memory (lit_gan.models.legacy)
        upgrade_checkpoint(checkpoint, cls.__name__)
        source = io.BytesIO()
        torch.save(checkpoint, source)
        source.seek(0)
    del checkpoint
    return cls.load_from_checkpoint(source, map_location="cpu", weights_only=True).eval(), data_hparams
