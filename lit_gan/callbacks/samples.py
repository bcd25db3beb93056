"""Sample grids of a fixed batch of held-out images, logged to the logger and saved as PNG in the run folder."""

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor
from torchvision.utils import make_grid, save_image

from lit_gan.contracts import ImageGenerator, SampleData
from lit_gan.metric_keys import SAMPLES
from lit_gan.runs import atomic_write, run_dir


class SampleGridCallback(pl.Callback):
    """Every `every_n_steps` training steps, every `every_n_epochs` epochs and at the end of training, run the model's
    `sample_images` on the same held-out images (the data module's `sample_batch`) and save one grid per direction.

    In each grid a row is one image and the columns are what the model returns, e.g. for CycleGAN
    real A | fake B | reconstructed A. Grids go to `<run folder>/samples/step_<step>_<name>.png` and, when the
    logger can log images (W&B), to the key `samples/<name>`.

    Args:
        every_n_steps: interval in training steps (0: none by steps).
        num_images: held-out images per grid.
        every_n_epochs: also at the end of every this many epochs (0: none by epochs), e.g. 1 for a grid per phase of
            a progressive GAN.
    """

    def __init__(self, every_n_steps: int = 100, num_images: int = 4, every_n_epochs: int = 0) -> None:
        super().__init__()
        if every_n_steps < 0 or num_images < 1 or every_n_epochs < 0:
            raise ValueError(
                "samples: need every_n_steps >= 0, num_images >= 1 and every_n_epochs >= 0, got "
                f"{every_n_steps}, {num_images}, {every_n_epochs}"
            )
        self.every_n_steps, self.every_n_epochs = every_n_steps, every_n_epochs
        self.num_images = num_images
        self._batch: dict[str, Tensor] | None = None
        self._last_step = -1

    def _sample_batch(self, trainer: pl.Trainer) -> dict[str, Tensor]:
        if self._batch is None:
            datamodule = trainer.datamodule
            if not isinstance(datamodule, SampleData):
                raise TypeError(
                    f"{type(self).__name__} needs a data module with a sample_batch(num_images) method "
                    "(lit_gan.contracts.SampleData), e.g. StyleDataModule"
                )
            self._batch = datamodule.sample_batch(self.num_images)
        return self._batch

    @rank_zero_only
    def log_samples(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Render, save and log the grids for the current step."""
        step = trainer.global_step
        if step == self._last_step:
            return
        self._last_step = step
        if not isinstance(pl_module, ImageGenerator):
            name = type(pl_module).__name__
            raise TypeError(f"{type(self).__name__}: {name} has no sample_images() (lit_gan.contracts.ImageGenerator)")
        batch = {k: v.to(pl_module.device) for k, v in self._sample_batch(trainer).items()}
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                columns = pl_module.sample_images(batch)
        finally:
            pl_module.train(was_training)
        for name, images in columns.items():
            grid = _grid(images)
            path = run_dir(trainer) / "samples" / f"step_{step:07d}_{name}.png"
            atomic_write(path, lambda tmp, grid=grid: save_image(grid, tmp, format="png"))
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):  # from the file: the run's journal refers to it
                    logger.log_image(key=f"{SAMPLES}{name}", images=[str(path)], step=step)
                elif hasattr(logger, "log_image"):
                    logger.log_image(key=f"{SAMPLES}{name}", images=[grid], step=step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self.log_samples(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.log_samples(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.log_samples(trainer, pl_module)


def _grid(columns: list[Tensor]) -> Tensor:
    """Columns of (N, C, H, W) images in [-1, 1] -> one (C, H', W') grid in [0, 1], a row per image."""
    rows = torch.stack(columns, dim=1).flatten(0, 1)  # (N * columns, C, H, W), row-major
    return make_grid(rows.float().cpu(), nrow=len(columns), padding=2, normalize=True, value_range=(-1, 1))
