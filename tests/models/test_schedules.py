import math
import typing
import warnings
from types import SimpleNamespace

import pytest
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.callbacks import timer as timer_module

from lit_gan.cli import main
from lit_gan.models.schedules import (
    LR_POLICIES,
    LRPolicy,
    LRPolicyName,
    build_scheduler,
    linear_decay,
    linear_decay_factor,
    progress_decay_factor,
    run_progress,
)
from tests.helpers import fit, tiny_args


def reference_lambda_rule(epoch, n_epochs, n_epochs_decay, epoch_count=1):
    # As written in the reference CycleGAN code (networks.get_scheduler, lr_policy == 'linear').
    return 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)


@pytest.mark.parametrize(("n_epochs", "n_epochs_decay"), [(100, 100), (3, 5), (0, 4), (2, 0)])
def test_linear_policy_matches_reference_formula(n_epochs, n_epochs_decay):
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched = linear_decay(opt, n_epochs, n_epochs_decay)
    for epoch in range(n_epochs + n_epochs_decay + 3):
        if epoch >= n_epochs + n_epochs_decay + 1:  # past the schedule the reference goes negative; we stop at 0
            assert opt.param_groups[0]["lr"] == 0.0
            continue
        expected = 2e-4 * reference_lambda_rule(epoch, n_epochs, n_epochs_decay)
        assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12, abs=1e-18)
        assert linear_decay_factor(epoch, n_epochs, n_epochs_decay) == reference_lambda_rule(
            epoch, n_epochs, n_epochs_decay
        )
        opt.step()
        sched.step()


def lrs(policy: str, epochs: int, **settings) -> list[float]:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, LRPolicy(policy, **settings))
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_policy_names_match_the_registry():
    assert set(typing.get_args(LRPolicyName)) == set(LR_POLICIES)


def test_step_cosine_and_constant_policies():
    assert lrs("step", 7, step_epochs=3) == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01])
    cosine = lrs("cosine", 5, n_epochs=2, n_epochs_decay=2)
    assert cosine == pytest.approx([0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(5)])
    assert cosine[-1] == pytest.approx(0, abs=1e-12)
    assert lrs("constant", 4) == [1.0] * 4


def test_plateau_policy_uses_the_reference_settings():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, LRPolicy("plateau"))
    for _ in range(7):  # patience 5: the 7th epoch without a 1% improvement cuts the rate by 0.2
        sched.step(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)


def test_unknown_policy_is_named():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="unknown lr_policy.policy 'warmup'; valid: constant, cosine, linear"):
        build_scheduler(opt, LRPolicy("warmup"))


# -- "progress": linear decay to zero over the last part of the run, whichever limit ends it -------------------------


@pytest.mark.parametrize(
    ("progress", "decay_fraction", "factor"),
    [(0.0, 0.5, 1.0), (0.5, 0.5, 1.0), (0.75, 0.5, 0.5), (0.9, 0.5, 0.2), (1.0, 0.5, 0.0), (0.0, 1.0, 1.0),
     (0.25, 1.0, 0.75), (0.95, 0.1, 0.5), (1.0, 1.0, 0.0)],
)  # fmt: skip
def test_progress_factor(progress, decay_fraction, factor):
    assert progress_decay_factor(progress, decay_fraction) == pytest.approx(factor, abs=1e-12)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = build_scheduler(opt, LRPolicy("progress", decay_fraction=decay_fraction))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's warning of a first scheduler step before the optimizer's
        sched.step_to(progress)  # set before the step, by design
    assert opt.param_groups[0]["lr"] == pytest.approx(2.0 * factor, abs=1e-12)
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]] and sched.state_dict()["progress"] == progress


@pytest.mark.parametrize("decay_fraction", [0.0, -0.5, 1.5])
def test_progress_decay_fraction_is_checked(decay_fraction):
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match=rf"lr_policy.decay_fraction must be in \(0, 1\].*got {decay_fraction}"):
        build_scheduler(opt, LRPolicy("progress", decay_fraction=decay_fraction))


def test_progress_needs_a_run_length():
    message = r"model.lr_policy.policy 'progress' .* set trainer.max_steps, trainer.max_epochs or trainer.max_time"
    with pytest.raises(ValueError, match=message):
        fit(tiny_args("--trainer.max_epochs=-1", "--model.lr_policy=progress", *FAST))


class StepRates(Callback):
    """Each training step's global step (after it), the rates of both optimizers and the logged `train/lr_G`."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.lrs: list[tuple[float, float]] = []
        self.logged: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append(trainer.global_step)
        self.lrs.append(tuple(opt.param_groups[0]["lr"] for opt in pl_module.optimizers()))
        self.logged.append(float(trainer.callback_metrics["train/lr_G"]))


class FakeClock(Callback):
    """Lightning's `Timer` (trainer.max_time) on a fake clock that advances `tick` seconds in every training batch,
    ahead of the Timer's check at the batch's end (so put it before the Timer in `trainer.callbacks`)."""

    def __init__(self, monkeypatch, tick: float = 1.0) -> None:
        self.now, self.tick = 1000.0, tick
        monkeypatch.setattr(timer_module, "time", SimpleNamespace(monotonic=lambda: self.now))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.now += self.tick


FAST = ["--trainer.logger=false", "--metrics.every_n_epochs=0", "--data.synthetic.train_size=6"]  # 6 batches an epoch
LR = 2e-4


def fit_with(args: list[str], *callbacks: Callback, clock: FakeClock | None = None, ckpt_path=None):
    """`tests.helpers.fit`, with `clock` (if any) first among the trainer's callbacks."""
    cli = main(args, run=False)
    cli.trainer.callbacks[:0] = [clock] if clock is not None else []
    cli.trainer.callbacks.extend(callbacks)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    return cli


@pytest.mark.parametrize(
    ("limits", "n_steps"),
    [(["--trainer.max_steps=8"], 8), (["--trainer.max_epochs=2", "--trainer.max_steps=100"], 12)],
    ids=["max_steps", "max_epochs_first"],
)
def test_progress_policy_decays_to_zero_at_the_step_or_epoch_limit(limits, n_steps):
    rates = StepRates()
    args = ["--model.lr_policy.policy=progress", "--model.lr_policy.decay_fraction=0.5", *limits]
    cli = fit_with(tiny_args(*args, "--metrics.enabled=false", *FAST), rates)
    # Step k trains at the rate of the part of the run done before it, k / n_steps: 1 for the first half, then
    # linear decay to zero at the run's end; the last step takes the last 1 / (n_steps / 2) of the rate.
    expected = [LR * min(1.0, (1 - k / n_steps) / 0.5) for k in range(n_steps)]
    assert rates.steps == list(range(1, n_steps + 1))
    assert [g for g, _ in rates.lrs] == pytest.approx(expected, rel=1e-12)
    assert [d for _, d in rates.lrs] == pytest.approx(expected, rel=1e-12) and rates.logged == pytest.approx(expected)
    assert rates.lrs[-1][0] == pytest.approx(LR / (n_steps / 2))
    assert run_progress(cli.trainer, 0) == 1.0  # as the run ends: the rate has reached zero


def test_progress_policy_decays_to_zero_at_max_time_and_the_final_model_is_evaluated(monkeypatch, evaluation_steps):
    clock, rates = FakeClock(monkeypatch, tick=0.5), StepRates()
    # 10 s at 0.5 s a step: the Timer stops the run after 20 steps, in its fourth epoch (100 epochs would be 600).
    args = ["--model.lr_policy.policy=progress", "--trainer.max_time=00:00:00:10", "--trainer.max_epochs=100"]
    cli = fit_with(tiny_args(*args, *FAST), rates, clock=clock)
    expected = [LR * min(1.0, (1 - k / 20) / 0.5) for k in range(20)]
    assert rates.steps == list(range(1, 21)) and cli.trainer.global_step == 20
    assert [g for g, _ in rates.lrs] == pytest.approx(expected, rel=1e-12)
    assert [d for _, d in rates.lrs] == pytest.approx(expected, rel=1e-12)
    assert rates.lrs[-1][0] == pytest.approx(LR / 10)  # one tick short of zero, which the clock reached as it stopped
    assert run_progress(cli.trainer, 0) == 1.0
    assert evaluation_steps == [20]  # metrics.every_n_epochs 0: the final model, once, when the Timer stopped the run
    assert "val/fid" in cli.trainer.callback_metrics


@pytest.mark.parametrize(
    ("limit", "n_steps"),
    [("--trainer.max_steps=14", 14), ("--trainer.max_epochs=3", 18), ("--trainer.max_time=00:00:00:14", 14)],
    ids=["max_steps", "max_epochs", "max_time"],
)
def test_progress_policy_resumes_exactly(limit, n_steps, tmp_path, monkeypatch):
    args = tiny_args(
        "--model.lr_policy.policy=progress", "--model.lr_policy.decay_fraction=0.75", limit, *FAST,
        "--metrics.enabled=false", "--checkpoint.every_n_train_steps=8", "--checkpoint.save_top_k=-1",
    )  # fmt: skip
    timed = "max_time" in limit  # a fake clock of 1 s a step
    straight = StepRates()
    fit_with(args, straight, clock=FakeClock(monkeypatch) if timed else None)
    assert straight.steps == list(range(1, n_steps + 1))
    (checkpoint,) = tmp_path.rglob("step0000008.ckpt")
    resumed = StepRates()
    fit_with(args, resumed, clock=FakeClock(monkeypatch) if timed else None, ckpt_path=checkpoint)
    assert resumed.steps == list(range(9, n_steps + 1))
    assert resumed.lrs == straight.lrs[8:]  # exactly: the same rates from the same progress
    assert len(set(straight.lrs[8:])) == n_steps - 8  # which change at every step
