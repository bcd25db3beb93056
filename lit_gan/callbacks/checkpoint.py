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

    _warned = False

    def _save_topk_checkpoint(self, trainer, monitor_candidates) -> None:
        if self.monitor is not None and self.monitor not in monitor_candidates:
            if not self._warned:
                rank_zero_warn(
                    f"best_checkpoint.monitor {self.monitor!r} has not been logged yet, so no best checkpoint is "
                    f"kept until it is (last.ckpt still is). If it never will be, set best_checkpoint.monitor to a "
                    f"logged metric, e.g. val/cycle (CycleGAN) or val/L1 (pix2pix), or best_checkpoint.save_top_k 0."
                )
                self._warned = True
            return
        super()._save_topk_checkpoint(trainer, monitor_candidates)
