"""Resuming from a checkpoint written at each place in an epoch (mid-epoch, on the epoch's last batch, at the epoch's
end) continues as the uninterrupted run, with `max_epochs` and with `max_steps`: same final step and epoch, same
weights. The places are those of `lit_gan.resume`; SIGKILLs at these and other moments are in test_fault_injection."""

from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from tests.helpers import fit, tiny_args

STEPS_PER_EPOCH = 6
# Checkpoints every 4 steps (step 4 is mid-epoch, 12 the last batch of epoch 1, saved in on_train_batch_end before
# the epoch's validation) and, by a second ModelCheckpoint, at each epoch's end (end-step6, end-step12: saved in
# on_train_epoch_end, after validation).
CHECKPOINTS = [
    "--checkpoint.every_n_train_steps=4",
    "--checkpoint.save_top_k=-1",
    "--samples.every_n_steps=0",
    "--metrics.enabled=false",
    "--model.n_epochs=1",  # the learning rate changes every epoch: a resume one epoch off would show
    "--model.n_epochs_decay=3",
]
LIMITS = {"max_epochs": ["--trainer.max_epochs=3"], "max_steps": ["--trainer.max_steps=18", "--trainer.max_epochs=-1"]}
SIX_BATCHES = {"dcgan": ["--data.synthetic_train_size=12"]}  # batch size 2
WORKERS = {"cyclegan": ["--data.num_workers=1"]}  # a worker draws its first indices before Lightning's set_epoch


def epoch_end_checkpoints() -> ModelCheckpoint:
    return ModelCheckpoint(filename="end-step{step:07d}", auto_insert_metric_name=False, save_top_k=-1)


def final_state(cli) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in cli.model.state_dict().items()}


@pytest.mark.parametrize("limit", sorted(LIMITS))
@pytest.mark.parametrize("model", ["cyclegan", "pix2pix", "dcgan"])
def test_resuming_at_every_place_in_an_epoch_ends_as_the_uninterrupted_run(model, limit):
    extra = [*LIMITS[limit], *CHECKPOINTS, *SIX_BATCHES.get(model, []), *WORKERS.get(model, [])]
    args = tiny_args(*extra, model=model)
    straight = fit(args, callbacks=[epoch_end_checkpoints()])
    assert straight.trainer.num_training_batches == STEPS_PER_EPOCH
    expected = final_state(straight)
    folder = Path(straight.trainer.checkpoint_callback.dirpath)
    assert {p.name for p in folder.glob("*step*.ckpt")} >= {"step0000004.ckpt", "end-step0000006.ckpt"}

    for name, place in [
        ("step0000004", "mid-epoch"),
        ("end-step0000006", "epoch end"),
        ("step0000012", "last batch"),
        ("end-step0000012", "epoch end after its last batch's checkpoint"),
    ]:
        resumed = fit(args, callbacks=[epoch_end_checkpoints()], ckpt_path=folder / f"{name}.ckpt")
        where = f"resumed from {name} ({place})"
        assert resumed.trainer.global_step == straight.trainer.global_step == 18, where
        assert resumed.trainer.current_epoch == straight.trainer.current_epoch == 3, where
        assert_same_weights(final_state(resumed), expected, where)

    # Resumed again from a checkpoint that a resumed run wrote on an epoch's last batch (its epoch counters are the
    # ones Lightning left after the first resume).
    first = fit(args, callbacks=[epoch_end_checkpoints()], ckpt_path=folder / "end-step0000006.ckpt")
    second_folder = Path(first.trainer.checkpoint_callback.dirpath)
    for name in ("step0000012", "end-step0000012"):
        again = fit(args, callbacks=[epoch_end_checkpoints()], ckpt_path=second_folder / f"{name}.ckpt")
        where = f"resumed from {name} of a resumed run"
        assert (again.trainer.global_step, again.trainer.current_epoch) == (18, 3), where
        assert_same_weights(final_state(again), expected, where)


def assert_same_weights(final: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], where: str) -> None:
    assert final.keys() == expected.keys(), where
    for key, value in expected.items():  # EMA copies, pools' networks and batch-norm statistics included
        torch.testing.assert_close(final[key], value, rtol=1e-4, atol=1e-6, msg=f"{key}, {where}")
