"""Where a run resumed from a checkpoint continues, read from (and written into) Lightning's loop progress.

Lightning restores its loops from the progress counters in a checkpoint and decides from them where training goes on.
What must agree with that decision: the training order (`resume_position`, read by the data module to skip the
batches already trained); the counters of checkpoints written at an epoch's end (`epoch_end_as_last_batch`, applied
when a checkpoint is written), which Lightning misreads when training is limited by `max_steps`; and the counters of
the epoch a run resumed from an epoch's last batch goes on with (`count_epoch_started_after_last_batch`, which
Lightning leaves short). Checked, for every model and every place a checkpoint can be written, by
`tests/test_resume_boundaries.py` and, with real processes killed, `tests/test_fault_injection.py`.
"""

from typing import Any


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
    if not (epochs and batches and "_batches_that_stepped" in stepped):
        return
    total = epochs["total"]
    in_epoch_end = total["ready"] == total["started"] == total["processed"] == total["completed"] + 1
    if not (in_epoch_end and batches["is_last_batch"] and batches["current"]["completed"] > 0):
        return
    for counts in (epochs["total"], epochs["current"]):
        counts["processed"] -= 1  # not yet past the training batches ...
    for counts in (batches["total"], batches["current"]):
        counts["completed"] -= 1  # ... of which the last is in its `on_train_batch_end`
    stepped["_batches_that_stepped"] -= 1  # counted after that hook; Lightning adds it back on restore


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
