"""Lightning's ModelCheckpoint for lit_gan's two checkpoints: `LatestCheckpoint` (the latest state, for resuming) and
`BestCheckpoint` (the best by a metric that is not computed at every validation)."""

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_warn

from lit_gan.compat import is_last_batch, train_batch_idx
from lit_gan.metric_keys import is_evaluation_metric


class BestCheckpoint(ModelCheckpoint):
    """ModelCheckpoint (all its arguments) that keeps the best checkpoints by `monitor`.

    Unlike ModelCheckpoint, a validation that did not log `monitor` skips the update instead of failing the run:
    FID (`val/fid`, the monitor of lit_gan's `best_checkpoint`) is computed every `metrics.every_n_epochs` epochs
    only, and not at all with `metrics.enabled false`. Such a validation leaves this callback idle (its `save_last`
    too); the CLI's other checkpoint (`checkpoint`) keeps the latest state and `last.ckpt` regardless.
    """

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._monitor_logged(trainer):  # else not computed at this validation; `on_train_end` says so if never
            super().on_validation_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._monitor_logged(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def _monitor_logged(self, trainer) -> bool:
        """Whether `monitor` is among the values ModelCheckpoint compares (its logged metrics, `epoch`, `step`)."""
        return self.monitor is None or self.monitor in trainer.callback_metrics or self.monitor in ("epoch", "step")

    def on_train_end(self, trainer, pl_module) -> None:
        super().on_train_end(trainer, pl_module)
        if self.monitor is not None and self.save_top_k != 0 and not self.best_model_path:
            logged = sorted(k for k in trainer.callback_metrics if is_evaluation_metric(k))
            example = f"one of {', '.join(logged[:4])}" if logged else "a metric the run logs at its evaluations"
            rank_zero_warn(
                f"best_checkpoint.monitor {self.monitor!r} was never logged, so no best checkpoint was kept "
                f"(last.ckpt was). Set best_checkpoint.monitor to {example}, or best_checkpoint.save_top_k 0."
            )


class LatestCheckpoint(ModelCheckpoint):
    """ModelCheckpoint (all its arguments) that writes a step checkpoint (`every_n_train_steps`, `train_time_interval`)
    falling on an epoch's last batch at that epoch's end instead, after the epoch's validation, metrics and other
    epoch-end work.

    Why: written in the last batch's `on_train_batch_end`, as ModelCheckpoint does, the checkpoint comes before the
    epoch's validation, and Lightning resumes it as a finished epoch: a run killed during that validation or the FID
    evaluation, or any time before the next checkpoint, never evaluates that epoch (no val/fid, no best-checkpoint
    update for it). Written at the epoch's end it holds the finished epoch; a kill before it resumes from the
    previous checkpoint and evaluates the epoch. The step, the file name and what the checkpoint holds are the same.
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if is_last_batch(trainer):
            return  # `on_train_epoch_end` writes it
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # The best checkpoints of this epoch first (ModelCheckpoint saves them in on_train_epoch_end too when
        # validation runs once an epoch, after this callback where it comes later in the list; it skips a step it
        # has saved at): this checkpoint then holds their state after this epoch's evaluation. Written before it, it
        # held the best as it was before: a run resumed from it (killed right after) forgot that epoch's best and took
        # a later, worse evaluation for the best.
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, BestCheckpoint):
                callback.on_train_epoch_end(trainer, pl_module)
        super().on_train_epoch_end(trainer, pl_module)  # epoch-based checkpoints (`every_n_epochs`)
        batch_idx = train_batch_idx(trainer)
        super().on_train_batch_end(trainer, pl_module, None, None, batch_idx)  # the last batch's step checkpoint
