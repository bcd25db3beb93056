"""SIGKILL a real training process at chosen moments, one moment per process, for the fault-injection tests.

`LIT_GAN_KILL_PLAN` names the moments in the order the run reaches them (comma-separated names of `MOMENTS`); each
process arms the first one not yet in `kills_done.txt` (in the working folder), appends its name there when it fires,
and kills itself with SIGKILL: no handler, no flush, no cleanup, as a preempted machine would. Add `KillAt` to the run
with `--trainer.callbacks+=tests.fault_injection.KillAt`, and `KillableExtractor` as the metrics' feature extractor
for the kill during the metrics evaluation.
"""

import io
import os
import signal
from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback

from tests.helpers import TinyExtractor

PLAN_ENV = "LIT_GAN_KILL_PLAN"
DONE_FILE = "kills_done.txt"
STEPS_PER_EPOCH = 6
EPOCHS = 4

MOMENTS = {  # name -> the global step at which it fires (the step trained last, or being trained)
    "mid_epoch": 4,  # at the start of step 5 of 6; the last checkpoint is step 3's
    "first_step_after_resume": 4,  # right after a resumed process's first step, before its checkpoint
    "writing_samples": 5,  # halfway through writing step 5's sample grid PNG
    "writing_checkpoint": 6,  # halfway through writing step 6's checkpoint (the last batch's: at the epoch's end)
    "epoch_end": 6,  # in on_train_epoch_end of epoch 0, after its validation and metrics, before its checkpoint
    "after_last_batch_checkpoint": 12,  # just after the checkpoint of epoch 1's last batch, at the start of epoch 2
    "during_validation": 18,  # at the first validation batch after epoch 2
    "during_metrics": 24,  # while the metrics of epoch 3 encode images
}


def armed_moment() -> str | None:
    """The moment this process kills itself at: the first of the plan that has not fired yet."""
    done = Path(DONE_FILE).read_text().split() if Path(DONE_FILE).exists() else []
    plan = [name for name in os.environ.get(PLAN_ENV, "").split(",") if name]
    unknown = set(plan) - set(MOMENTS)
    if unknown:
        raise ValueError(f"{PLAN_ENV}: unknown moments {sorted(unknown)}; valid: {', '.join(MOMENTS)}")
    return next((name for name in plan if name not in done), None)


def kill_now(moment: str) -> None:
    with open(DONE_FILE, "a") as file:
        file.write(moment + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


def write_half_then_die(moment: str, write, obj, file, *args, **kwargs) -> None:
    """Write half of the bytes that `write(obj, file, ...)` would write, then die, as a kill mid-write would."""
    buffer = io.BytesIO()
    write(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    if isinstance(file, str | os.PathLike):
        Path(file).write_bytes(data)
    else:
        file.write(data)
        file.flush()
    kill_now(moment)


class KillAt(Callback):
    """Kills the process at the armed moment of `LIT_GAN_KILL_PLAN` (see the module docstring)."""

    step: int | None = None  # the current global step, for `KillableExtractor`

    def __init__(self) -> None:
        self.moment = armed_moment()
        self.target = MOMENTS.get(self.moment)
        self.resumed = False

    def _at(self, moment: str, trainer) -> bool:
        return self.moment == moment and trainer.global_step == self.target and not trainer.sanity_checking

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.resumed = True

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.moment == "writing_checkpoint":
            real_save = torch.save

            def save(obj, file, *args, **kwargs):
                if isinstance(obj, dict) and obj.get("global_step") == self.target and "loops" in obj:
                    write_half_then_die(self.moment, real_save, obj, file, *args, **kwargs)
                return real_save(obj, file, *args, **kwargs)

            torch.save = save  # the process dies with it
        if self.moment == "writing_samples":
            import lit_gan.callbacks.samples as samples

            real_image_save = samples.save_image

            def save_image(grid, file, *args, **kwargs):
                if trainer.global_step == self.target:
                    write_half_then_die(self.moment, real_image_save, grid, file, *args, **kwargs)
                return real_image_save(grid, file, *args, **kwargs)

            samples.save_image = save_image

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._at("mid_epoch", trainer) or self._at("after_last_batch_checkpoint", trainer):
            kill_now(self.moment)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # Callbacks run before the checkpoint callbacks: the step is trained, its checkpoint not written.
        if self._at("first_step_after_resume", trainer) and self.resumed:
            kill_now(self.moment)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._at("epoch_end", trainer):
            kill_now(self.moment)

    def on_validation_start(self, trainer, pl_module) -> None:
        KillAt.step = None if trainer.sanity_checking else trainer.global_step

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._at("during_validation", trainer):
            kill_now(self.moment)


class KillableExtractor(TinyExtractor):
    """The tests' stand-in for InceptionV3, dying in the metrics evaluation when "during_metrics" is armed."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if armed_moment() == "during_metrics" and KillAt.step == MOMENTS["during_metrics"]:
            kill_now("during_metrics")
        return super().forward(x)
