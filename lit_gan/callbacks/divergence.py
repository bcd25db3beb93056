"""Stop a diverging run: a NaN or infinite loss ends training with an error naming the loss term and the step, before
any checkpoint of the broken weights is written, so the last checkpoint stays the last good one."""

import math
import weakref

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch import Tensor

from lit_gan.contracts import ReportsStepLosses


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN or infinite."""


class DivergenceGuard(Callback):
    """Watches every training step's loss terms (`step_losses` of the GAN modules) on the device, without a host
    synchronisation per step: the first non-finite value of each term and its step are recorded on the device, and
    read back every `check_every_n_steps` steps, before every checkpoint is written (which also checks the weights)
    and at the end of training. Under DDP the check is collective, so every process stops together. A detection
    raises `TrainingDiverged`; Lightning then marks the W&B run as failed.

    Args:
        enabled: watch the losses.
        check_every_n_steps: steps between checks; null: the trainer's `log_every_n_steps` (the losses are read back
            then anyway for logging).
    """

    def __init__(self, enabled: bool = True, check_every_n_steps: int | None = None) -> None:
        if check_every_n_steps is not None and check_every_n_steps < 1:
            raise ValueError(f"divergence.check_every_n_steps must be >= 1 or null, got {check_every_n_steps}")
        self.enabled = enabled
        self.check_every_n_steps = check_every_n_steps
        self._names: list[str] = []
        self._checked_module: tuple[weakref.ref, bool] | None = None  # (module, whether it reports step losses)
        self._first_step: Tensor | None = None  # (T,) step of each term's first non-finite value, -1 while finite
        self._first_value: Tensor | None = None  # (T,) that value

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        if not self.enabled or not self._reports_losses(pl_module) or not pl_module.step_losses:
            return
        losses = pl_module.step_losses
        if list(losses) != self._names:  # the first step (or the terms changed): start recording afresh
            self._check(trainer, pl_module)
            self._names = list(losses)
            self._first_step = torch.full((len(losses),), -1, dtype=torch.long, device=pl_module.device)
            self._first_value = torch.zeros(len(losses), device=pl_module.device)
        values = torch.stack([value.reshape(()) for value in losses.values()]).float()  # (T,)
        new = torch.isfinite(values).logical_not_().logical_and_(self._first_step < 0)
        self._first_step.masked_fill_(new, trainer.global_step)  # in place: the fewest operations per step
        self._first_value = torch.where(new, values, self._first_value)
        every = self.check_every_n_steps or trainer.log_every_n_steps or 1
        if trainer.global_step % every == 0:
            self._check(trainer, pl_module)

    def _reports_losses(self, pl_module: pl.LightningModule) -> bool:
        """`isinstance(pl_module, ReportsStepLosses)`, asked once per module (a Protocol check takes ~20 us)."""
        if self._checked_module is None or self._checked_module[0]() is not pl_module:
            self._checked_module = (weakref.ref(pl_module), isinstance(pl_module, ReportsStepLosses))
        return self._checked_module[1]

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if not self.enabled:
            return
        self._check(trainer, pl_module)  # raising here leaves the previous checkpoint in place
        bad = next((name for name, value in checkpoint["state_dict"].items() if not _finite(value)), None)
        if bad is not None:
            raise TrainingDiverged(
                f"training diverged: weight {bad!r} is not finite at step {trainer.global_step} "
                f"(epoch {trainer.current_epoch}); the checkpoint was not written. {self._advice(trainer)}"
            )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled:
            self._check(trainer, pl_module)

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._first_step is None:
            return
        first = trainer.strategy.reduce(self._first_step.double(), reduce_op="max").long()  # over processes
        steps = first.tolist()  # the one host synchronisation
        bad = [(step, i) for i, step in enumerate(steps) if step >= 0]
        if not bad:
            return
        step, i = min(bad)
        value = float(self._first_value[i]) if int(self._first_step[i]) == step else math.nan
        raise TrainingDiverged(
            f"training diverged: loss {self._names[i]!r} is {value} at step {step} (epoch {trainer.current_epoch}). "
            f"{self._advice(trainer)}"
        )

    @staticmethod
    def _advice(trainer: pl.Trainer) -> str:
        last = getattr(trainer.checkpoint_callback, "last_model_path", "") or getattr(
            trainer.checkpoint_callback, "best_model_path", ""
        )
        kept = f"The last good checkpoint is {last}." if last else "No checkpoint had been written yet."
        return (
            f"{kept} Try a lower model.lr, gan_mode lsgan or hinge, or 32-bit precision, and resume with "
            "--ckpt_path last (or train from scratch)."
        )


def _finite(value: object) -> bool:
    return not isinstance(value, Tensor) or not value.is_floating_point() or bool(torch.isfinite(value).all())
