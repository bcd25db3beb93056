"""Learning-rate policies of the reference implementations, stepped once per epoch."""

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler


def linear_decay_factor(epoch: int, n_epochs: int, n_epochs_decay: int, epoch_count: int = 1) -> float:
    """The reference "linear" policy: constant for `n_epochs`, then linear decay towards zero over
    `n_epochs_decay`: `1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1)`, for 0-based `epoch`.

    Past `n_epochs + n_epochs_decay` the reference formula turns negative (gradient ascent); here it stays at 0.
    """
    return max(0.0, 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1))


def linear_decay(optimizer: Optimizer, n_epochs: int, n_epochs_decay: int) -> LRScheduler:
    """A `LambdaLR` following `linear_decay_factor`; call `.step()` at the end of every epoch."""
    if n_epochs < 0 or n_epochs_decay < 0:
        raise ValueError(f"n_epochs and n_epochs_decay must be >= 0, got {n_epochs} and {n_epochs_decay}")
    return LambdaLR(optimizer, lambda epoch: linear_decay_factor(epoch, n_epochs, n_epochs_decay))
