"""`BestCheckpoint`: Lightning's ModelCheckpoint, tolerant of a metric that is not computed at every validation."""

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_warn


class BestCheckpoint(ModelCheckpoint):
    """ModelCheckpoint (all its arguments) that keeps the best checkpoints by `monitor`.

    Unlike ModelCheckpoint, a validation that did not log `monitor` skips the update instead of failing the run:
    FID (`val/fid`, the monitor of lit_gan's `best_checkpoint`) is computed every `metrics.every_n_epochs` epochs
    only, and not at all with `metrics.enabled false`. The CLI's other checkpoint (`checkpoint`) keeps the latest
    state and `last.ckpt` regardless.
    """

    def _save_topk_checkpoint(self, trainer, monitor_candidates) -> None:
        if self.monitor is not None and self.monitor not in monitor_candidates:
            return  # not computed at this validation; `on_train_end` says so if it never was
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def on_train_end(self, trainer, pl_module) -> None:
        super().on_train_end(trainer, pl_module)
        if self.monitor is not None and self.save_top_k != 0 and not self.best_model_path:
            rank_zero_warn(
                f"best_checkpoint.monitor {self.monitor!r} was never logged, so no best checkpoint was kept "
                f"(last.ckpt was). Set best_checkpoint.monitor to a logged metric, e.g. val/cycle (CycleGAN) or "
                f"val/L1 (pix2pix), or best_checkpoint.save_top_k 0."
            )
