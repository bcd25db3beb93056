"""Stylizing images from Python, as `python -m lit_gan predict` does:

from lit_gan.predict import stylize
stylize("runs/lit_gan/<id>/checkpoints/last.ckpt", "photos/", "stylized/", domain="A")
"""

import os

import pytorch_lightning as pl

import lit_gan.models  # noqa: F401  (the classes that checkpoints name must be imported to be loaded)
from lit_gan.callbacks.predictions import PredictionWriter
from lit_gan.data import StyleDataModule
from lit_gan.data.layouts import Domain
from lit_gan.models.loading import load_checkpoint


def stylize(
    model: str | os.PathLike | pl.LightningModule,
    inputs: str | os.PathLike,
    output_dir: str | os.PathLike = "predictions",
    domain: Domain = "A",
    batch_size: int = 1,
    accelerator: str = "auto",
    num_workers: int = 0,
) -> PredictionWriter:
    """Translate the images `inputs` of `domain` with `model` and write them to `output_dir` at their own sizes, under
    their names relative to `inputs`; unreadable files are skipped and reported (see `PredictionWriter`).

    Args:
        model: a trained image-to-image model (CycleGAN, Pix2Pix), or the path of a checkpoint written by the CLI,
            read weights-only, from which `load_checkpoint` rebuilds the model.
        inputs: a folder of images (searched recursively) or one image file.
        output_dir: folder for the outputs.
        domain: the domain the images come from, "A" or "B".
        batch_size: most images per batch (only images of the same size share a batch).
        accelerator: Lightning accelerator ("auto", "cpu", "gpu", ...); one device is used.
        num_workers: data-loading worker processes (0 loads in this process).

    Returns:
        The writer: `written` lists the files written, `skipped` the (name, reason) of each file skipped.

    Raises:
        CheckpointError: naming the file, before anything else, if the checkpoint is missing or not a lit_gan
            checkpoint; `CheckpointRefused` if it holds objects that would run code when loaded.
        FileNotFoundError: naming data.predict.path, if `inputs` is missing or holds no readable image.
        ValueError: naming data.predict.domain, if the model does not translate images of `domain`.
    """
    if not isinstance(model, pl.LightningModule):
        model = load_checkpoint(model)[0]
    data = StyleDataModule(
        predict={"path": str(inputs), "domain": domain}, batch_size=batch_size, num_workers=num_workers
    )
    data.check(model, "predict")  # errors in the inputs before any model work
    writer = PredictionWriter(str(output_dir))
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[writer],
    )
    trainer.predict(model, datamodule=data, return_predictions=False)
    return writer
