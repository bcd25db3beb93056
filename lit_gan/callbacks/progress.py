"""Lightning's progress bar, redrawn by time instead of at every training step."""

import math
import time

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar


class TimedProgressBar(TQDMProgressBar):
    """Lightning's `TQDMProgressBar`, whose training bar is redrawn at most every `refresh_seconds` (and at the last
    batch of each epoch) instead of after every batch (its `refresh_rate` 1).

    Why: a redraw (the bar, its loss terms and the write to the terminal, which W&B also captures) costs about 1 ms of
    host time; at every step it was the largest per-step cost lit_gan added to a fast GPU loop, and a bar redrawn more
    than a few times a second shows nothing more. `python -m lit_gan` uses this bar in place of Lightning's default
    one; a progress bar given in `trainer.callbacks` is kept as it is.

    Args:
        refresh_seconds: the least time between two redraws of the training bar.
    """

    def __init__(self, refresh_seconds: float = 0.5, leave: bool = False) -> None:
        if not refresh_seconds >= 0:
            raise ValueError(f"refresh_seconds must be >= 0, got {refresh_seconds}")
        super().__init__(refresh_rate=1, leave=leave)
        self.refresh_seconds = refresh_seconds
        self._drawn_at = -math.inf

    def on_train_epoch_start(self, trainer: pl.Trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._drawn_at = -math.inf  # the epoch's first batch is drawn

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int):
        now = time.monotonic()
        total = self.train_progress_bar.total  # the epoch's batches (None: unknown)
        last = total is not None and batch_idx + 1 >= total
        if now - self._drawn_at < self.refresh_seconds and not last:
            return
        self._drawn_at = now
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
