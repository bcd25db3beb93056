"""The one place where lit_gan reaches into private Lightning and torch API (torch-only internals that the
plain-torch layers need, networks and losses, are in `lit_gan.compat_torch`, which does not load Lightning).

Each function wraps one internal for which no public mechanism exists, says what is missing, and names the version
it was checked against: pytorch_lightning 2.6.6 and torch 2.14. `tests/test_compat.py` checks every one of them on
the installed versions and fails naming the internal when Lightning or torch changes it; it also fails on any
private access (`x._name`, `from m import _name`) elsewhere in the package.

Where a public mechanism exists the code uses it instead: a run's name is `lit_gan.loggers.WandbLogger.run_name`,
paths are typed `str | os.PathLike`, and `BestCheckpoint` skips through ModelCheckpoint's public hooks.
"""

import functools
from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.core.mixins.hparams_mixin import _given_hyperparameters
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultMetric
from torch import Tensor, nn

# -- LightningModule, logging, CLI --------------------------------------------------------------------------------


def attached_trainer(module: pl.LightningModule) -> "pl.Trainer | None":
    """The Trainer `module` is attached to, or None; the public `module.trainer` raises when there is none.

    Missing publicly: a way to ask whether a module is attached without catching `RuntimeError`.
    """
    return module._trainer


def should_log_this_step(trainer: "pl.Trainer") -> bool:
    """Whether Lightning writes this step's `self.log` values to the loggers (`log_every_n_steps`, counted in
    `_batches_that_stepped`, plus the step the run stops at): the exact test of Lightning's logging step.

    Missing publicly: the count Lightning applies `log_every_n_steps` to (not `global_step` under manual optimization).
    """
    return trainer._logger_connector.should_update_logs


def hyperparameters_given_by_cli() -> bool:
    """Whether the LightningModule being constructed is instantiated by LightningCLI, which hands its parsed
    config (networks as `class_path`/`init_args`) to `save_hyperparameters`.

    Missing publicly: any signal of it; LightningCLI sets the context variable `_given_hyperparameters`.
    """
    return _given_hyperparameters.get() is not None


def skip_needless_result_moves() -> None:
    """Make `self.log` skip moving a logged key's stored result to the device its tensors are already on (idempotent;
    lit_gan calls it when its models are imported).

    Why: every `self.log(name, value)` calls `_ResultMetric.to(value.device)` on the key's stored result, which walks
    the whole object with `apply_to_collection`, deep-copying its metadata dataclasses on the way: about 0.3 ms per
    key per call on a 2-core CPU, 3 ms per step for a model that logs 10 loss terms, while its tensors are on that
    device already on every call after the first. The move is skipped only when every tensor the result holds (one
    level into its dicts, lists and tuples, e.g. the defaults `reset` restores) is on the device; results holding a
    torchmetrics `Metric` (logged metric objects) and any other call take Lightning's own path. The values logged are
    the same either way (`tests/test_compat.py`).

    Missing publicly: any way to log without this walk (`log_dict` calls `log` per key).
    """
    if getattr(_ResultMetric.to, "skips_needless_moves", False):
        return
    move = _ResultMetric.to

    @functools.wraps(move)
    def to(self: _ResultMetric, *args: Any, **kwargs: Any) -> _ResultMetric:
        device = args[0] if len(args) == 1 and not kwargs else None
        if isinstance(device, torch.device) and self.is_tensor and _all_on(self.__dict__.values(), device):
            return self
        return move(self, *args, **kwargs)

    to.skips_needless_moves = True
    _ResultMetric.to = to


def _all_on(values: Any, device: torch.device) -> bool:
    """Whether every tensor among `values` (and one level into dicts, lists and tuples among them) is on `device`;
    False if any is a module (e.g. a torchmetrics `Metric`, which Lightning moves as a whole)."""
    for value in _one_level_in(values):
        if isinstance(value, nn.Module) or (isinstance(value, Tensor) and value.device != device):
            return False
    return True


def _one_level_in(values: Any) -> Iterator[Any]:
    for value in values:
        yield value
        if isinstance(value, dict):
            yield from value.values()
        elif isinstance(value, list | tuple):
            yield from value


# -- W&B logger ---------------------------------------------------------------------------------------------------


def wandb_init_settings(logger: WandbLogger) -> dict[str, Any]:
    """The keyword arguments Lightning's WandbLogger will pass to `wandb.init` (mutable until the run starts).

    Missing publicly: changing them after construction (our `continue_run`), and leaving out `anonymous=None`.
    """
    return logger._wandb_init


def set_wandb_run_id(logger: WandbLogger, run_id: str) -> None:
    """Make `logger` start (or resume) the W&B run `run_id`, and report it as its `version` until then."""
    logger._id = logger._wandb_init["id"] = run_id


def started_wandb_run(logger: WandbLogger) -> Any:
    """The W&B run of `logger`, or None before it started; the public `logger.experiment` would start it."""
    return logger._experiment


def forget_wandb_run(logger: WandbLogger) -> None:
    """Detach the (finished) W&B run from `logger`, so that its next use starts or resumes a run of its own."""
    logger._experiment = None


# -- DDP ----------------------------------------------------------------------------------------------------------


def ddp_kwargs(strategy: DDPStrategy) -> dict[str, Any]:
    """The keyword arguments `strategy` will pass to `DistributedDataParallel` (mutable until the model is set up).

    Missing publicly: changing them on a strategy Lightning built from a name (`ddp`, or `auto` with several
    devices); the public names (`ddp_find_unused_parameters_true`) and `DDPStrategy(...)` only cover explicit choices.
    """
    return strategy._ddp_kwargs


# -- training loop progress ---------------------------------------------------------------------------------------
# Lightning's loops and their progress counters (`trainer.fit_loop`, `_FitLoop`, `_TrainingEpochLoop`, `_Progress`)
# are internal since Lightning 2.0; no public API says where a run resumed from a checkpoint goes on.
#
# Lightning restores its loops from the progress counters in a checkpoint and decides from them where training goes
# on. What must agree with that decision: the training order (`resume_position`, read by the data module to skip the
# batches already trained); the counters of checkpoints written at an epoch's end (`epoch_end_as_last_batch`, applied
# when a checkpoint is written), which Lightning misreads when training is limited by `max_steps`; and the counters
# of the epoch a run resumed from an epoch's last batch goes on with (`count_epoch_started_after_last_batch`, which
# Lightning leaves short). Checked, for every model and every place a checkpoint can be written, by
# `tests/test_resume_boundaries.py` and, with real processes killed, `tests/test_fault_injection.py`.


BATCHES_THAT_STEPPED = "_batches_that_stepped"  # key of the epoch loop's state: the steps `log_every_n_steps` counts


def is_last_batch(trainer: "pl.Trainer") -> bool:
    """Whether the training batch being trained is the last of its epoch."""
    return trainer.fit_loop.epoch_loop.batch_progress.is_last_batch


def train_batch_idx(trainer: "pl.Trainer") -> int:
    """The index, in its epoch, of the last training batch started."""
    return trainer.fit_loop.epoch_loop.batch_idx


def sampler_epoch(trainer: "pl.Trainer") -> int:
    """The epoch whose data the training loader serves: the one Lightning passes to the sampler's `set_epoch`
    (`fit_loop.epoch_progress.current.processed`). It is `current_epoch`, except after resuming a run that stopped
    at max_steps mid-epoch: Lightning then counts the cut epoch as processed and serves the next epoch's data while
    `current_epoch` stays."""
    return trainer.fit_loop.epoch_progress.current.processed


def resume_position(fit_loop: Any) -> tuple[int, int]:
    """Where a fit loop restored from a checkpoint continues: (epoch, batches of that epoch already trained), as
    Lightning itself will read the restored progress; (the epoch to start, 0) when it does not resume mid-epoch.

    Call it when the training dataloader is built, i.e. before the loops' `reset` adjusts the restored counters.
    The case that needs care is a checkpoint written in `on_train_batch_end` of an epoch's *last* batch (e.g.
    `every_n_train_steps` dividing the epoch length): its counters say "N of N batches" of epoch e, and Lightning
    counts that epoch as finished and continues with epoch e + 1 from its first batch (`FitLoop.reset` increments the
    epoch, `_TrainingEpochLoop.reset` starts the batch count over). Skipping N batches there, as the raw counter
    suggests, left epoch e + 1 empty: Lightning counted it as trained and the run ended with an epoch's steps missing.
    """
    epoch = fit_loop.epoch_progress.current.processed  # the epoch Lightning passes to `set_epoch` next
    if not fit_loop.restarting:
        return epoch, 0
    # The restart stages of `FitLoop.update_restart_stage` and `_TrainingEpochLoop.update_restart_stage`, which
    # Lightning computes later, from the same counters.
    epochs, batches = fit_loop.epoch_progress.total, fit_loop.epoch_loop.batch_progress
    mid_epoch = epochs.started == epochs.ready and epochs.processed == epochs.started - 1 == epochs.completed
    in_batch_end = batches.total.completed == batches.total.processed - 1  # `completed` counts after the hooks
    if in_batch_end and batches.is_last_batch:  # Lightning starts the batch count over ...
        return (epoch + 1 if mid_epoch else epoch), 0  # ... in the next epoch, when it counts this one as done
    return epoch, batches.current.ready


def epoch_end_as_last_batch(loops: dict) -> None:
    """Rewrite, in place, the fit loop's progress of a checkpoint written in `on_train_epoch_end` (the default
    ModelCheckpoint's moment: after the epoch's validation and the other callbacks' epoch-end work) into the progress
    of the epoch's last `on_train_batch_end`, which Lightning restores as "epoch done, next epoch from its first
    batch".

    Why: with `max_steps` set, Lightning restores every checkpoint as a restart (`FitLoop.restarting` is forced), and
    an epoch-end state then runs the epoch-end hooks once more and counts an extra, empty epoch: the resumed run trains
    the following epochs one epoch late (another shuffle, another learning rate) and repeats the epoch-end work. The
    last-batch form is restored exactly with `max_steps` and with `max_epochs`; what it skips on resume (the
    finished epoch's end, the next epoch's `on_train_epoch_start`) was done before the checkpoint, or is made up by
    `GANModule.on_train_start`. Checkpoints written at any other moment are left as they are.
    """
    fit = loops.get("fit_loop") or {}
    epochs, batches = fit.get("epoch_progress"), fit.get("epoch_loop.batch_progress")
    stepped = fit.get("epoch_loop.state_dict") or {}
    if not (epochs and batches and BATCHES_THAT_STEPPED in stepped):
        return
    total = epochs["total"]
    in_epoch_end = total["ready"] == total["started"] == total["processed"] == total["completed"] + 1
    if not (in_epoch_end and batches["is_last_batch"] and batches["current"]["completed"] > 0):
        return
    for counts in (epochs["total"], epochs["current"]):
        counts["processed"] -= 1  # not yet past the training batches ...
    for counts in (batches["total"], batches["current"]):
        counts["completed"] -= 1  # ... of which the last is in its `on_train_batch_end`
    stepped[BATCHES_THAT_STEPPED] -= 1  # counted after that hook; Lightning adds it back on restore


def count_epoch_started_after_last_batch(fit_loop: Any) -> None:
    """After Lightning restored a checkpoint of an epoch's last batch (see `resume_position`), count the epoch it goes
    on with as ready and started; call it in `on_train_start`.

    Why: Lightning counts the restored epoch as finished and goes straight into the next epoch's batches, skipping
    that epoch's `increment_ready`/`increment_started` (`FitLoop.on_advance_start` does not count a restart mid-epoch
    again). The checkpoints written during that epoch then carry counters that read as "this epoch has ended": resumed
    from one of them (max_epochs), Lightning trained the epoch a second time, and the run one epoch too many.
    """
    epoch_loop = fit_loop.epoch_loop
    restored_last_batch = fit_loop.restarted_mid_epoch and epoch_loop.restarted_on_train_batch_end
    if restored_last_batch and epoch_loop.batch_progress.is_last_batch and not fit_loop.done:
        fit_loop.epoch_progress.increment_ready()
        fit_loop.epoch_progress.increment_started()
