"""Where a run resumed from a checkpoint continues: moved, with the other Lightning internals, to `lit_gan.compat`.

Kept so that `from lit_gan.resume import ...` works until its importers (`models/base.py`, `data/datamodule.py`)
import from `lit_gan.compat`; then this module goes.
"""

from lit_gan.compat import count_epoch_started_after_last_batch, epoch_end_as_last_batch, resume_position

__all__ = ["count_epoch_started_after_last_batch", "epoch_end_as_last_batch", "resume_position"]
