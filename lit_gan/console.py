"""What a run prints before its first progress bar: what helps (where it logs, what it evaluates, how to sync) and
not what does not apply to lit_gan's runs. Each line dropped here is named, with why; nothing else is touched, so a
user's own warnings and errors, and every other library message, still show.
"""

import logging
import re
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

LIGHTNING_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero")
DROPPED = re.compile(
    r"💡 Tip:"  # Lightning's suggestions to install its cloud products (litlogger, litmodels)
    r"|(TPU|HPU) available: False"  # accelerators the machine does not have (the GPU line stays)
)


class DropAdvertisements(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing litlogger/litmodels" lines and its lines about TPUs and HPUs
    when there are none."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not DROPPED.match(str(record.msg))


def quiet_startup() -> None:
    """Install the filters (idempotent).

    - Lightning's product tips at every start (the W&B logger and lit_gan's checkpoints are what these runs use),
      and its "TPU available: False" and "HPU available: False" lines.
    - Lightning's warning for `ModelCheckpoint(every_n_train_steps=N)` under manual optimization ("The checkpoint
      will contain the model state AFTER optimization ... save the model state in training_step"): it concerns a
      checkpoint read as the state *before* step N. lit_gan's checkpoints written after step N hold the weights,
      optimizer states, random streams and loop counters after step N, and resuming from one continues with step
      N + 1 exactly (`tests/test_resume_boundaries.py`, every model, every place a checkpoint is written); nothing
      is lost or repeated, so the warning's advice does not apply.
    - The deprecation of `LeafSpec` that Lightning's own `_pytree` helper triggers under torch 2.14 (Lightning's
      code, not the user's; fixed in Lightning, not here).
    """
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropAdvertisements) for f in logger.filters):
            logger.addFilter(DropAdvertisements())
    warnings.filterwarnings(
        "ignore", message="Using ModelCheckpoint with manual optimization and every_n_train_steps", category=UserWarning
    )
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


def parameter_line(model: "torch.nn.Module") -> str:
    """The model's size in one line, in place of Lightning's parameter table (whose FLOPs column is zeros without an
    example input): its class, the parameters trained, per top-level part, and the averaged (EMA) copies."""
    from pytorch_lightning.utilities.model_summary import get_human_readable_count as count

    parts, trained = [], 0
    for name, child in model.named_children():
        n_trained = sum(p.numel() for p in child.parameters() if p.requires_grad)
        n_frozen = sum(p.numel() for p in child.parameters() if not p.requires_grad)
        trained += n_trained
        if n_trained:
            parts.append(f"{name} {count(n_trained)}")
        elif n_frozen:
            parts.append(f"{name} {count(n_frozen)} not trained")
    return f"model: {type(model).__name__}, {count(trained)} parameters trained ({', '.join(parts)})"
