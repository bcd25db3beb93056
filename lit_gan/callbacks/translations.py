"""Per-image translations of a few held-out images at each evaluation: a W&B Table (runs compared image by image in
W&B's UI) and the same rows in the run folder (for `compare`'s offline page)."""

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor, nn
from torchvision.utils import save_image

from lit_gan.callbacks.metrics import MetricsCallback, evaluation_due
from lit_gan.contracts import Direction, HeldOutData, ImageGenerator, PairedHeldOutData
from lit_gan.metric_keys import TRANSLATIONS
from lit_gan.metrics import similarity
from lit_gan.runs import atomic_write, run_dir

FOLDER = "translations"  # in the run folder: translations/step_<step>/<direction>.json and its images
MIN_SSIM_SIZE = 11  # SSIM's window


class TranslationTableCallback(pl.Callback):
    """At each evaluation (the metrics' schedule: every `every_n_epochs` epochs, the last one, `validate`, `test`),
    translate the first `num_images` held-out images in each of the model's directions and log one W&B Table per
    direction, `translations/<direction>`, a row per image: the step, the image's number, the input, the target
    (paired data), the translation, the reconstruction (when the model has the reverse direction, as CycleGAN) and
    per-image scores: `ssim` of the translation to its target (paired) or its input, `psnr` and `L1` to the target
    (paired), `lpips` as `ssim` when the metrics callback has LPIPS (`metrics.lpips`), `reconstruction_L1` to the
    input. A model that generates from noise (DCGAN) gets its fixed samples
    0..num_images-1 (column `output`), without scores.

    The same rows go to `<run folder>/translations/step_<step>/<direction>.json`, the images beside it as PNG files:
    `python -m lit_gan compare` shows them for each run's best step.

    Args:
        enabled: log the translations at all.
        num_images: held-out images (or noise samples) per direction and evaluation: the table's rows.
        every_n_epochs: during fit, every this many epochs and at the last one (0: only at the end of training).
    """

    def __init__(self, enabled: bool = True, num_images: int = 4, every_n_epochs: int = 1) -> None:
        super().__init__()
        if num_images < 1 or every_n_epochs < 0:
            raise ValueError(
                f"translations: need num_images >= 1 and every_n_epochs >= 0, got {num_images}, {every_n_epochs}"
            )
        self.enabled, self.num_images, self.every_n_epochs = enabled, num_images, every_n_epochs
        self._last_step = -1

    # -- when: as the metrics callback ------------------------------------------------------------------------------

    def _active(self, trainer: pl.Trainer) -> bool:
        return self.enabled and not trainer.sanity_checking and not trainer.fast_dev_run

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fitting = trainer.state.fn == TrainerFn.FITTING
        if self._active(trainer) and (not fitting or evaluation_due(trainer, self.every_n_epochs)):
            self.log_translations(trainer, pl_module)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._active(trainer):
            self.log_translations(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._active(trainer) and self._last_step != trainer.global_step:  # stopped between validations
            self.log_translations(trainer, pl_module)

    # -- what -----------------------------------------------------------------------------------------------------

    @rank_zero_only
    def log_translations(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Translate, score, save and log the rows of every direction at the current step."""
        if not isinstance(pl_module, ImageGenerator):
            raise TypeError(
                f"translations: {type(pl_module).__name__} makes no images (lit_gan.contracts.ImageGenerator: "
                "directions(), generate()); set translations.enabled false"
            )
        if not isinstance(trainer.datamodule, HeldOutData):
            raise TypeError(
                "translations: need a data module with held_out_images() (lit_gan.contracts.HeldOutData), e.g. "
                "StyleDataModule; or set translations.enabled false"
            )
        step = self._last_step = trainer.global_step
        was_training = pl_module.training
        pl_module.eval()
        cuda = [pl_module.device] if pl_module.device.type == "cuda" else []
        try:  # training's random stream stays as it was
            with torch.no_grad(), torch.random.fork_rng(devices=cuda):
                tables = {name: self.rows(trainer, pl_module, name) for name in pl_module.directions()}
        finally:
            pl_module.train(was_training)
        for name, rows in tables.items():
            folder = run_dir(trainer) / FOLDER / f"step_{step:07d}"
            save_rows(folder, name, step, rows)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):  # from the saved files: the run's journal refers to them
                    logger.log_metrics({f"{TRANSLATIONS}{name}": wandb_table(step, rows, folder, name)}, step=step)

    def rows(self, trainer: pl.Trainer, pl_module: pl.LightningModule, name: str) -> list[dict[str, object]]:
        """Direction `name`'s rows: {"image": i, column: (C, H, W) image in [-1, 1] or score}, one per image."""
        directions = pl_module.directions()
        source, target = directions[name]
        if source is None:  # from noise: the fixed samples
            samples = pl_module.generate(name, torch.arange(self.num_images))  # (N, C, H, W)
            return [{"image": i, "output": image} for i, image in enumerate(samples)]
        datamodule = trainer.datamodule
        inputs, _ = datamodule.held_out_images(source, self.num_images)
        paired = isinstance(datamodule, PairedHeldOutData) and datamodule.held_out_pairs
        targets = datamodule.held_out_images(target, self.num_images)[0] if paired else None
        reverse = next((r for r, d in directions.items() if d == Direction(target, source)), None)
        lpips = next((c.lpips_network for c in trainer.callbacks if isinstance(c, MetricsCallback)), None)
        rows = []
        for i in range(len(inputs)):
            x = inputs[i]["A"].unsqueeze(0).to(pl_module.device)  # (1, C, H, W)
            y = targets[i]["A"].unsqueeze(0).to(pl_module.device) if targets is not None else None
            rows.append(self._row(pl_module, name, reverse, lpips, i, x, y))
        return rows

    def _row(
        self,
        pl_module: ImageGenerator,
        name: str,
        reverse: str | None,
        lpips: nn.Module | None,
        i: int,
        x: Tensor,
        y: Tensor | None,
    ) -> dict[str, object]:
        """One image's row: its input (and target), the translation (and reconstruction), their scores."""
        fake = pl_module.generate(name, x)  # (1, C, H, W)
        row: dict[str, object] = {"image": i, "input": x[0]}
        if y is not None:
            row["target"] = y[0]
        row["translation"] = fake[0]
        reference = x if y is None else y
        if min(fake.shape[-2:]) >= MIN_SSIM_SIZE and fake.shape[-2:] == reference.shape[-2:]:
            row["ssim"] = float(similarity.ssim(fake, reference)[0])
        if y is not None:
            row["psnr"] = float(similarity.psnr(fake, y)[0])
            row["L1"] = float((fake - y).abs().mean())
        if lpips is not None:
            row["lpips"] = float(similarity.lpips(lpips.to(fake.device), fake, reference)[0])
        if reverse is not None:
            back = pl_module.generate(reverse, fake)
            row["reconstruction"] = back[0]
            row["reconstruction_L1"] = float((back - x).abs().mean())
        return row


def columns(rows: list[dict[str, object]]) -> list[str]:
    """The columns of `rows`, in the order of the first row."""
    return list(rows[0]) if rows else []


def wandb_table(step: int, rows: list[dict[str, object]], folder: Path, name: str):
    """The W&B Table of `rows` as `save_rows(folder, name, ...)` saved them: a `step` column, then the rows'
    columns, images as `wandb.Image` of their PNG files."""
    import wandb

    def cell(row: dict[str, object], column: str) -> object:
        value = row.get(column)
        return wandb.Image(str(folder / image_file(name, row, column))) if isinstance(value, Tensor) else value

    names = columns(rows)
    data = [[step, *(cell(row, c) for c in names)] for row in rows]
    return wandb.Table(columns=["step", *names], data=data)


def image_file(name: str, row: dict[str, object], column: str) -> str:
    """The file name of the image in `column` of direction `name`'s `row` (`save_rows`)."""
    return f"{name}_{row['image']}_{column}.png"


def _unit(image: Tensor) -> Tensor:
    """(C, H, W) in [-1, 1] -> float in [0, 1] on the CPU."""
    return ((image.detach().float().cpu() + 1) / 2).clamp(0, 1)


def save_rows(folder: Path, name: str, step: int, rows: list[dict[str, object]]) -> None:
    """Write `rows` as `<folder>/<name>.json` ({"step", "direction", "columns", "images", "rows"}; image cells are the
    file names of PNGs beside it, `<name>_<i>_<column>.png`), each file atomically."""
    images = [c for c in columns(rows) if isinstance(rows[0][c], Tensor)] if rows else []
    records = []
    for row in rows:
        record = {}
        for column, value in row.items():
            if isinstance(value, Tensor):
                file = image_file(name, row, column)
                atomic_write(folder / file, lambda tmp, v=value: save_image(_unit(v), tmp, format="png"))
                value = file
            record[column] = value
        records.append(record)
    text = json.dumps({"step": step, "direction": name, "columns": columns(rows), "images": images, "rows": records})
    atomic_write(folder / f"{name}.json", lambda tmp: tmp.write_text(text))
