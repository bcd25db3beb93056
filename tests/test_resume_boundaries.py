"""Resuming from a checkpoint written at each place in an epoch (mid-epoch, on the epoch's last batch, at the epoch's
end) continues as the uninterrupted run, with `max_epochs` and with `max_steps`: same final step and epoch, same
weights. The places are those of `lit_gan.compat.resume_position`; SIGKILLs at other moments: test_fault_injection."""

from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from tests.helpers import TINY_MODELS, batches_per_epoch, fit, tiny_args

pytestmark = pytest.mark.slow  # resume at every boundary

STEPS_PER_EPOCH = 6
# lit_gan's checkpoints every 4 steps (step 4 is mid-epoch; 12, the last batch of epoch 1, is written at the epoch's
# end), Lightning's plain ModelCheckpoint every 4 steps (plain-step12: written in on_train_batch_end of the last
# batch, before the epoch's validation, as a user's own checkpoint callback does) and at each epoch's end (end-step6).
CHECKPOINTS = [
    "--checkpoint.every_n_train_steps=4",
    "--checkpoint.save_top_k=-1",
    "--samples.every_n_steps=0",
    "--metrics.enabled=false",
    "--model.lr_policy.n_epochs=1",  # the learning rate changes every epoch: a resume one epoch off would show
    "--model.lr_policy.n_epochs_decay=3",
]
LIMITS = {"max_epochs": ["--trainer.max_epochs=3"], "max_steps": ["--trainer.max_steps=18", "--trainer.max_epochs=-1"]}
WORKERS = {"cyclegan": ["--data.num_workers=1"]}  # a worker draws its first indices before Lightning's set_epoch


def extra_checkpoints() -> list[ModelCheckpoint]:
    names = {"filename": "{step:07d}", "auto_insert_metric_name": False, "save_top_k": -1}
    return [
        ModelCheckpoint(**{**names, "filename": "end-step{step:07d}"}),
        ModelCheckpoint(**{**names, "filename": "plain-step{step:07d}"}, every_n_train_steps=4),
    ]


def final_state(cli) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in cli.model.state_dict().items()}


@pytest.mark.parametrize("limit", sorted(LIMITS))
@pytest.mark.parametrize("model", list(TINY_MODELS))
def test_resuming_at_every_place_in_an_epoch_ends_as_the_uninterrupted_run(model, limit):
    extra = [*LIMITS[limit], *CHECKPOINTS, batches_per_epoch(model, STEPS_PER_EPOCH), *WORKERS.get(model, [])]
    args = tiny_args(*extra, model=model)
    straight = fit(args, callbacks=extra_checkpoints())
    assert straight.trainer.num_training_batches == STEPS_PER_EPOCH
    expected = final_state(straight)
    folder = Path(straight.trainer.checkpoint_callback.dirpath)
    names = {p.name for p in folder.glob("*step*.ckpt")}
    assert names >= {"step0000004.ckpt", "end-step0000006.ckpt", "step0000008.ckpt"}
    # lit_gan's checkpoint of an epoch's last step comes after the epoch's validation, Lightning's plain one before.
    validated = {
        name: torch.load(folder / f"{name}.ckpt", weights_only=True)["loops"]["fit_loop"][
            "epoch_loop.val_loop.batch_progress"
        ]["total"]["completed"]
        for name in ("step0000012", "plain-step0000012")
    }
    assert validated["step0000012"] > 0 and validated["plain-step0000012"] == 0, validated

    for name, place in [
        ("step0000004", "mid-epoch"),
        ("end-step0000006", "epoch end"),
        ("step0000008", "mid-epoch of the second epoch (ProGAN: mid-fade-in)"),
        ("plain-step0000012", "last batch, before validation"),
        ("step0000012", "last batch, at the epoch's end"),
    ]:
        resumed = fit(args, callbacks=extra_checkpoints(), ckpt_path=folder / f"{name}.ckpt")
        where = f"resumed from {name} ({place})"
        assert resumed.trainer.global_step == straight.trainer.global_step == 18, where
        assert resumed.trainer.current_epoch == straight.trainer.current_epoch == 3, where
        assert_same_weights(final_state(resumed), expected, where)

    # Resumed again from a checkpoint that a resumed run wrote on an epoch's last batch (its epoch counters are the
    # ones Lightning left after the first resume).
    first = fit(args, callbacks=extra_checkpoints(), ckpt_path=folder / "end-step0000006.ckpt")
    second_folder = Path(first.trainer.checkpoint_callback.dirpath)
    for name in ("plain-step0000012", "step0000012"):
        again = fit(args, callbacks=extra_checkpoints(), ckpt_path=second_folder / f"{name}.ckpt")
        where = f"resumed from {name} of a resumed run"
        assert (again.trainer.global_step, again.trainer.current_epoch) == (18, 3), where
        assert_same_weights(final_state(again), expected, where)


def assert_same_weights(final: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], where: str) -> None:
    assert final.keys() == expected.keys(), where
    for key, value in expected.items():  # EMA copies, pools' networks and batch-norm statistics included
        torch.testing.assert_close(final[key], value, rtol=1e-4, atol=1e-6, msg=f"{key}, {where}")


@pytest.mark.parametrize("limit", ["max_epochs", "max_steps"])
def test_a_finished_run_resumed_again_then_extended_ends_as_the_longer_run(limit):
    # `--ckpt_path last` of a finished run does nothing but write last.ckpt again at its end; extending that run by an
    # epoch must then train exactly the uninterrupted longer run's last epoch.
    two, three = {"max_epochs": (["--trainer.max_epochs=2"], ["--trainer.max_epochs=3"])}.get(
        limit,
        (["--trainer.max_steps=12", "--trainer.max_epochs=-1"], ["--trainer.max_steps=18", "--trainer.max_epochs=-1"]),
    )
    args = [arg for arg in CHECKPOINTS if "every_n_train_steps" not in arg]  # lit_gan's default: at each epoch's end
    longer = fit(tiny_args(*three, *args))
    first = fit(tiny_args(*two, *args))
    last = Path(first.trainer.checkpoint_callback.dirpath) / "last.ckpt"
    again = fit(tiny_args(*two, *args), ckpt_path=last)
    assert again.trainer.global_step == 12
    last_again = Path(again.trainer.checkpoint_callback.dirpath) / "last.ckpt"
    extended = fit(tiny_args(*three, *args), ckpt_path=last_again if last_again.exists() else last)
    assert (extended.trainer.global_step, extended.trainer.current_epoch) == (18, 3)
    assert_same_weights(final_state(extended), final_state(longer), f"extended ({limit})")
