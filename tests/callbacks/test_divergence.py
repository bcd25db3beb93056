"""The divergence guard: a NaN stops the run with the loss term and the step, and no checkpoint of broken weights."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import Callback

from lit_gan.callbacks import DivergenceGuard, TrainingDiverged
from lit_gan.cli import main
from lit_gan.networks.shapes import first_conv
from tests.helpers import tiny_args

EVERY_STEP = ["--checkpoint.every_n_train_steps=1", "--samples.every_n_steps=0", "--metrics.enabled=false"]


class BreakWeights(Callback):
    """Fills the first convolution of the A->B generator with NaN: before step `at` (its losses are NaN), or, with
    `after`, once step `at` is done (its losses are finite, the weights it leaves are not)."""

    def __init__(self, at: int, after: bool = False) -> None:
        self.at, self.after = at, after

    def _break(self, pl_module) -> None:
        first_conv(pl_module.generators["AtoB"]).weight.data.fill_(float("nan"))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not self.after and trainer.global_step == self.at - 1:
            self._break(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.after and trainer.global_step == self.at:
            self._break(pl_module)


def fit_until_diverged(*extra: str, breaker: Callback) -> tuple[Path, TrainingDiverged]:
    cli = main(tiny_args("--trainer.max_steps=12", *EVERY_STEP, *extra), run=False)
    cli.trainer.callbacks.insert(0, breaker)
    with pytest.raises(TrainingDiverged) as error:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return Path(cli.trainer.checkpoint_callback.dirpath), error.value


def last_good_step(checkpoints: Path) -> int:
    saved = torch.load(checkpoints / "last.ckpt", weights_only=False)
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point())
    return saved["global_step"]


@pytest.mark.parametrize("check_every", ["1", "5"])  # checked at every step, or only before each checkpoint
def test_nan_loss_stops_the_run_naming_the_term_and_step_and_keeps_the_last_good_checkpoint(check_every):
    checkpoints, error = fit_until_diverged(f"--divergence.check_every_n_steps={check_every}", breaker=BreakWeights(7))
    assert "training diverged: loss 'train/G_A' is nan at step 7 (epoch 1)" in str(error)
    assert f"The last good checkpoint is {checkpoints / 'last.ckpt'}" in str(error)
    assert last_good_step(checkpoints) == 6
    assert not (checkpoints / "step0000007.ckpt").exists()


def test_non_finite_weights_are_never_checkpointed():
    checkpoints, error = fit_until_diverged(breaker=BreakWeights(3, after=True))
    assert "training diverged: weight 'generators.AtoB.model.1.weight' is not finite at step 3" in str(error)
    assert last_good_step(checkpoints) == 2


@pytest.mark.slow  # a whole CLI run
def test_the_cli_run_fails_with_the_message_and_the_wandb_run_is_marked_failed(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    args = tiny_args("--trainer.max_steps=6", *EVERY_STEP, "--trainer.callbacks+=tests.callbacks.test_divergence.Nan4")
    proc = subprocess.run(
        [sys.executable, "-m", "lit_gan", "fit", *args],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(repo)},
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("error: training diverged: loss 'train/G_A' is nan at step 4 (epoch 0).")
    )
    assert "Traceback" not in proc.stderr
    (wandb_run,) = (tmp_path / "runs" / "wandb").glob("offline-run-*")
    wandb_cli = shutil.which("wandb", path=str(Path(sys.executable).parent)) or shutil.which("wandb")
    summary = subprocess.run([wandb_cli, "leet", "inspect", "--summary", "--json", str(wandb_run)], capture_output=True)
    assert json.loads(summary.stdout)["state"] == "failed"


class Nan4(BreakWeights):
    def __init__(self) -> None:
        super().__init__(at=4)


def test_check_every_n_steps_must_be_positive():
    with pytest.raises(ValueError, match="divergence.check_every_n_steps must be >= 1 or null, got 0"):
        DivergenceGuard(check_every_n_steps=0)
