import copy

import pytest
import pytorch_lightning as pl
import torch

from lit_gan.cli import main
from tests.helpers import tiny_args


class Snapshot(pl.Callback):
    """Records the training state when training starts and after each batch."""

    def __init__(self):
        self.at_start = None
        self.steps = []
        self.lrs = []
        self.step_lrs = []

    def on_train_start(self, trainer, pl_module):
        self.at_start = {
            "global_step": trainer.global_step,
            "opt": [copy.deepcopy(opt.optimizer.state_dict()) for opt in pl_module.optimizers()],
            "sched": [s.state_dict() for s in pl_module.lr_schedulers()],
            "pool_A": [img.clone() for img in pl_module.pools["A"].images],
            "pool_B": [img.clone() for img in pl_module.pools["B"].images],
            "pool_rng": pl_module.pools["A"].generator.get_state().clone(),
        }

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps.append(trainer.global_step)
        self.step_lrs.append(pl_module.optimizers()[0].param_groups[0]["lr"])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:  # the learning rates the epoch trains with
            self.lrs.append([opt.param_groups[0]["lr"] for opt in pl_module.optimizers()])


def schedule(n_epochs: int, n_epochs_decay: int) -> list[str]:
    return [f"--model.lr_policy.n_epochs={n_epochs}", f"--model.lr_policy.n_epochs_decay={n_epochs_decay}"]


def fit(*extra, callbacks=(), ckpt_path=None):
    cli = main(tiny_args(*extra), run=False)
    cli.trainer.callbacks.extend(callbacks)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    return cli


def test_global_step_counts_iterations_not_optimizer_steps():
    snap = Snapshot()
    cli = fit("--trainer.max_steps=5", callbacks=[snap])
    assert snap.steps == [1, 2, 3, 4, 5]
    assert cli.trainer.global_step == 5
    # Both optimizers did step 5 times.
    for opt in cli.model.optimizers():
        assert all(state["step"].item() == 5 for state in opt.optimizer.state.values())


def test_logs_every_loss_term_and_learning_rate():
    cli = fit("--trainer.max_steps=2", "--trainer.log_every_n_steps=1")
    logged = set(cli.trainer.logged_metrics)
    for term in ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B", "lr_G", "lr_D"):
        assert f"train/{term}" in logged


def test_learning_rate_follows_linear_policy_per_epoch():
    # 6 synthetic images per epoch; n_epochs=1, n_epochs_decay=2 -> factors 1, 2/3, 1/3.
    snap = Snapshot()
    fit("--trainer.max_epochs=3", *schedule(1, 2), callbacks=[snap])
    assert [lr for lr, _ in snap.lrs] == pytest.approx([2e-4, 2e-4 * 2 / 3, 2e-4 / 3])
    assert all(g == d for g, d in snap.lrs)


def test_resume_restores_optimizers_schedule_pools_and_step(tmp_path):
    first = fit("--trainer.max_steps=8", *schedule(1, 3), "--samples.every_n_steps=0")
    ckpt = next((tmp_path / "runs").rglob("last.ckpt"))
    saved = torch.load(ckpt, weights_only=False)
    assert saved["global_step"] == 8
    model = first.model

    snap = Snapshot()
    fit(
        "--trainer.max_steps=10",
        "--model.lr_policy.n_epochs=1",
        "--model.lr_policy.n_epochs_decay=3",
        callbacks=[snap],
        ckpt_path=ckpt,
    )
    start = snap.at_start
    assert start["global_step"] == 8
    assert snap.steps == [9, 10]
    for restored, original in zip(start["opt"], [o.optimizer.state_dict() for o in model.optimizers()], strict=True):
        for key, state in original["state"].items():
            assert torch.equal(restored["state"][key]["exp_avg"], state["exp_avg"])
            assert restored["state"][key]["step"] == state["step"]
    assert [s["last_epoch"] for s in start["sched"]] == [s.last_epoch for s in model.lr_schedulers()]
    # The schedule continues as in an uninterrupted run (8 steps stop mid-epoch: 6 images per epoch).
    straight = Snapshot()
    fit("--trainer.max_steps=14", *schedule(1, 3), callbacks=[straight])
    resumed = Snapshot()
    fit("--trainer.max_steps=14", *schedule(1, 3), callbacks=[resumed], ckpt_path=ckpt)
    assert resumed.step_lrs == pytest.approx(straight.step_lrs[8:])
    assert sorted(set(straight.step_lrs)) == pytest.approx([1e-4, 1.5e-4, 2e-4])
    assert len(start["pool_A"]) == 3
    for a, b in zip(start["pool_A"], model.pools["A"].images, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(start["pool_B"], model.pools["B"].images, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(start["pool_rng"], model.pools["A"].generator.get_state())
