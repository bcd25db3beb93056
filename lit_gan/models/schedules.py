"""Learning-rate policies by name: those of the reference implementations, stepped once per epoch, and one that
follows the run's progress at every step.

Each policy is a torch scheduler: "linear" (the reference's: constant, then linear decay to zero), "step" (x0.1
every `step_epochs`), "plateau" (x0.2 when the monitored validation metric stops improving), "cosine" (cosine
annealing to zero over the whole run), "constant", and "progress" (constant, then linear decay to zero over the last
`decay_fraction` of the run). "progress" is set before every training step from `run_progress`: the part of the run
done, by whichever of trainer.max_steps, max_epochs and max_time ends it first, so that the rate reaches zero as the
run ends, a time budget's too (e.g. `--model.lr_policy progress --trainer.max_time 00:00:10:00`).
"""

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Timer
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, ReduceLROnPlateau, StepLR

LRPolicyName = Literal["linear", "step", "plateau", "cosine", "constant", "progress"]


@dataclass(frozen=True)
class LRPolicy:
    """How the learning rate changes, once per epoch, or at every step by the run's progress (`model.lr_policy` in
    configs: e.g. `--model.lr_policy.policy cosine` or `--model.lr_policy.n_epochs 50`).

    Args:
        policy: "linear" (the references': constant for `n_epochs`, then linear decay to zero over
            `n_epochs_decay`), "step" (x0.1 every `step_epochs`), "plateau" (x0.2 when the model's validation metric
            stops improving), "cosine" (cosine annealing to zero over `n_epochs + n_epochs_decay`), "constant", or
            "progress": constant, then linear decay to zero over the last `decay_fraction` of the run, whose length is
            the trainer's: the part done is the largest of global_step / trainer.max_steps, epochs (with the current
            one's batches) / trainer.max_epochs and training time / trainer.max_time, of those set (one must be), so
            the rate reaches zero when the first of them ends the run: a time budget too, on any machine. Set before
            every training step; the training time is Lightning's `Timer`'s, which checkpoints keep.
        n_epochs: epochs at the initial rate ("linear"); with `n_epochs_decay`, the length of the run ("cosine").
        n_epochs_decay: epochs of linear decay to zero after `n_epochs` ("linear").
        step_epochs: epochs between two x0.1 decays ("step"; the reference's lr_decay_iters, 50).
        decay_fraction: the last part of the run over which "progress" decays the rate to zero, in (0, 1]: 0.5 halves
            the run into a constant and a decaying half, 1 decays from the first step.
    """

    policy: LRPolicyName = "linear"
    n_epochs: int = 100
    n_epochs_decay: int = 100
    step_epochs: int = 50
    decay_fraction: float = 0.5


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


def progress_decay_factor(progress: float, decay_fraction: float) -> float:
    """The "progress" policy's factor of the initial rate when `progress` (in [0, 1]) of the run is done: 1 up to
    `1 - decay_fraction`, then linear decay to 0 at the run's end."""
    if progress <= 1.0 - decay_fraction:
        return 1.0
    return max(0.0, (1.0 - progress) / decay_fraction)


class ProgressDecay(LambdaLR):
    """The "progress" policy's scheduler: the initial rate times `progress_decay_factor(progress, decay_fraction)`,
    where the module sets `progress` (`run_progress`) before every training step with `step_to`. Its state (saved in
    checkpoints) holds the last progress; `decay_fraction` comes from the config, as the "linear" policy's settings.
    """

    def __init__(self, optimizer: Optimizer, decay_fraction: float) -> None:
        self.progress = 0.0
        super().__init__(optimizer, lambda _: progress_decay_factor(self.progress, decay_fraction))

    def step_to(self, progress: float) -> None:
        """Set the learning rates for a run `progress` done (in [0, 1])."""
        self.progress = progress
        if self.last_epoch > 0:
            self.step()
            return
        with warnings.catch_warnings():  # a run's first call comes before its first optimizer step, by design
            warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before", UserWarning)
            self.step()


def run_progress(trainer: "pl.Trainer", batch_idx: int) -> float:
    """The part of the run done before training batch `batch_idx` of the current epoch, in [0, 1]: the largest of
    global_step / trainer.max_steps, (epoch + batch_idx / batches per epoch) / trainer.max_epochs and the training
    time of the trainer's `Timer` (trainer.max_time) / its duration, of the limits set. In a distributed run, every
    process takes rank 0's training time, so that all train with the same rates.

    Raises:
        ValueError: naming the trainer's limits, if it has none (`check_run_length`).
    """
    done = []
    if trainer.max_steps not in (None, -1):
        done.append(trainer.global_step / max(trainer.max_steps, 1))
    if trainer.max_epochs not in (None, -1):
        epochs = trainer.current_epoch + batch_idx / max(trainer.num_training_batches, 1)
        done.append(epochs / max(trainer.max_epochs, 1))
    timer = run_timer(trainer)
    if timer is not None:
        remaining, elapsed = timer.time_remaining("train"), timer.time_elapsed("train")  # duration: their sum
        done.append(trainer.strategy.broadcast(elapsed / (elapsed + remaining) if elapsed + remaining > 0 else 1.0))
    if not done:
        check_run_length(trainer)  # raises: the run has no length (found here, not by scanning every step)
    return min(1.0, max(done))


def check_run_length(trainer: "pl.Trainer") -> None:
    """Check that the trainer limits the run, so that the "progress" policy knows its length.

    Raises:
        ValueError: naming the policy and the trainer's limits, if none of them is set.
    """
    if trainer.max_steps in (None, -1) and trainer.max_epochs in (None, -1) and run_timer(trainer) is None:
        raise ValueError(
            "model.lr_policy.policy 'progress' decays the learning rate over the run, which has no length: set "
            "trainer.max_steps, trainer.max_epochs or trainer.max_time (e.g. --trainer.max_time 00:00:10:00), "
            "or choose another policy"
        )


def run_timer(trainer: "pl.Trainer") -> Timer | None:
    """The trainer's `Timer` with a duration (Lightning adds one for trainer.max_time), or None."""
    timers = (c for c in trainer.callbacks if isinstance(c, Timer) and c.time_remaining("train") is not None)
    return next(timers, None)


LR_POLICIES: dict[str, Callable[[Optimizer, LRPolicy], LRScheduler | ReduceLROnPlateau]] = {
    "linear": lambda opt, s: linear_decay(opt, s.n_epochs, s.n_epochs_decay),
    "step": lambda opt, s: StepLR(opt, step_size=s.step_epochs, gamma=0.1),
    # The reference's settings; stepped with the monitored validation metric at the end of each validation.
    "plateau": lambda opt, s: ReduceLROnPlateau(opt, mode="min", factor=0.2, threshold=0.01, patience=5),
    "cosine": lambda opt, s: CosineAnnealingLR(opt, T_max=max(1, s.n_epochs + s.n_epochs_decay), eta_min=0),
    "constant": lambda opt, s: LambdaLR(opt, lambda epoch: 1.0),
    # Stepped before every training step with the part of the run done (`GANModule.on_train_batch_start`).
    "progress": lambda opt, s: ProgressDecay(opt, s.decay_fraction),
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
    if not 0.0 < schedule.decay_fraction <= 1.0:
        raise ValueError(f"lr_policy.decay_fraction must be in (0, 1] (e.g. 0.5), got {schedule.decay_fraction}")
    return LR_POLICIES[schedule.policy](optimizer, schedule)
