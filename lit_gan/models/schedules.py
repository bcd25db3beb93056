"""Learning-rate policies of the reference implementations, by name, stepped once per epoch.

Each policy is a torch scheduler: "linear" (the reference's: constant, then linear decay to zero), "step" (x0.1
every `step_epochs`), "plateau" (x0.2 when the monitored validation metric stops improving), "cosine" (cosine
annealing to zero over the whole run) and "constant".
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, ReduceLROnPlateau, StepLR

LRPolicyName = Literal["linear", "step", "plateau", "cosine", "constant"]


@dataclass(frozen=True)
class LRPolicy:
    """How the learning rate changes, once per epoch (`model.lr_policy` in configs: e.g.
    `--model.lr_policy.policy cosine` or `--model.lr_policy.n_epochs 50`).

    Args:
        policy: "linear" (the references': constant for `n_epochs`, then linear decay to zero over
            `n_epochs_decay`), "step" (x0.1 every `step_epochs`), "plateau" (x0.2 when the model's validation metric
            stops improving), "cosine" (cosine annealing to zero over `n_epochs + n_epochs_decay`) or "constant".
        n_epochs: epochs at the initial rate ("linear"); with `n_epochs_decay`, the length of the run ("cosine").
        n_epochs_decay: epochs of linear decay to zero after `n_epochs` ("linear").
        step_epochs: epochs between two x0.1 decays ("step"; the reference's lr_decay_iters, 50).
    """

    policy: LRPolicyName = "linear"
    n_epochs: int = 100
    n_epochs_decay: int = 100
    step_epochs: int = 50


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


LR_POLICIES: dict[str, Callable[[Optimizer, LRPolicy], LRScheduler | ReduceLROnPlateau]] = {
    "linear": lambda opt, s: linear_decay(opt, s.n_epochs, s.n_epochs_decay),
    "step": lambda opt, s: StepLR(opt, step_size=s.step_epochs, gamma=0.1),
    # The reference's settings; stepped with the monitored validation metric at the end of each validation.
    "plateau": lambda opt, s: ReduceLROnPlateau(opt, mode="min", factor=0.2, threshold=0.01, patience=5),
    "cosine": lambda opt, s: CosineAnnealingLR(opt, T_max=max(1, s.n_epochs + s.n_epochs_decay), eta_min=0),
    "constant": lambda opt, s: LambdaLR(opt, lambda epoch: 1.0),
}


def build_scheduler(optimizer: Optimizer, schedule: LRPolicy) -> LRScheduler | ReduceLROnPlateau:
    """The scheduler for `schedule.policy`.

    Raises:
        ValueError: naming the valid policies, if the policy is unknown.
    """
    if schedule.policy not in LR_POLICIES:
        raise ValueError(f"unknown lr_policy.policy {schedule.policy!r}; valid: {', '.join(sorted(LR_POLICIES))}")
    if schedule.step_epochs < 1:
        raise ValueError(f"lr_policy.step_epochs must be >= 1, got {schedule.step_epochs}")
    return LR_POLICIES[schedule.policy](optimizer, schedule)
