"""Where a run resumed from a checkpoint continues, read from (and written into) Lightning's loop progress.

Lightning restores its loops from the progress counters in a checkpoint and decides from them where training goes on.
Two things here must agree with that decision: the training order (`resume_position`, read by the data module to
skip the batches already trained) and the counters of checkpoints written at an epoch's end
(`epoch_end_as_last_batch`, applied when a checkpoint is written), which Lightning misreads when training is limited
by `max_steps`. Both are checked, for every model and every place a checkpoint can be written, by
`tests/test_resume_boundaries.py`.
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
    batches = fit_loop.epoch_loop.batch_progress
    saved_in_batch_end = batches.total.completed == batches.total.processed - 1  # `completed` comes after the hooks
    if saved_in_batch_end and batches.is_last_batch:
        return epoch + 1, 0
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
