"""Resuming: a killed run continues exactly where it was, in the same W&B run; checkpoints are never truncated."""

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import Callback

from lit_gan.cli import main
from lit_gan.runs import AtomicCheckpointIO
from lit_gan.sweep.history import run_history, wandb_run_dirs
from tests.helpers import fit, tiny_args

REPO = Path(__file__).resolve().parents[1]
EVERY_STEP = ["--checkpoint.every_n_train_steps=1", "--samples.every_n_steps=0", "--metrics.every_n_epochs=2"]
# DiffAugment with ADA adjusting p every 3 discriminator steps: the resume at step 4 lands between adjustments
ADAPTIVE_AUGMENT = (
    '--model.augment={"class_path": "lit_gan.augment.DiffAugment", '
    '"init_args": {"adaptive": true, "p": 0.5, "interval": 3, "ada_kimg": 0.1}}'
)


class LossRecorder(Callback):
    """Every training step's loss terms, by global step."""

    def __init__(self) -> None:
        self.losses: dict[int, dict[str, float]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses[trainer.global_step] = {name: float(value) for name, value in pl_module.step_losses.items()}


def newest_step(folder: Path) -> int:
    """The highest step of the `step<N>.ckpt` files under `folder`, -1 without any."""
    return max((int(path.stem.removeprefix("step")) for path in folder.rglob("step*.ckpt")), default=-1)


def run_folders(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "runs" / "lit_gan").iterdir() if p.is_dir())


@pytest.mark.parametrize(
    "model, extra",
    [
        ("cyclegan", ["--data.flip=true", "--model.ema_decay=0.9"]),  # crops, flips, random pairs, pools, EMA
        ("pix2pix", ["--model.generator.use_dropout=true"]),  # dropout draws from the global generator
        ("dcgan", []),  # noise draws from the global generator
        # CUT: its patch sampler (built with the model, trained by optimizer_G), the flips and patch locations drawn
        # from the global generator; with ADA, whose probability and statistics are buffers
        pytest.param("cut", ["--model.flip_equivariance=true", ADAPTIVE_AUGMENT], id="cut-augment"),
    ],
)
def test_resuming_mid_epoch_continues_exactly_as_an_uninterrupted_run(model, extra):
    # 6 images per epoch (3 batches for DCGAN): stopping after step 4 is mid-epoch for all three.
    args = [*EVERY_STEP, *extra]
    straight = LossRecorder()
    uninterrupted = fit(tiny_args("--trainer.max_steps=8", *args, model=model), callbacks=[straight])

    cli = fit(tiny_args("--trainer.max_steps=4", *args, model=model))
    run = Path(cli.trainer.checkpoint_callback.dirpath)
    resumed = LossRecorder()
    cli = fit(tiny_args("--trainer.max_steps=8", *args, model=model), callbacks=[resumed], ckpt_path=run / "last.ckpt")

    assert sorted(resumed.losses) == [5, 6, 7, 8]  # it reaches the planned final step
    for step in (5, 6, 7, 8):
        assert resumed.losses[step] == pytest.approx(straight.losses[step], rel=1e-5, abs=1e-7), step
    # ... and ends with the same weights, EMA copies included, and the same optimizer state.
    final, expected = cli.model.state_dict(), uninterrupted.model.state_dict()
    assert final.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(final[key], value, rtol=1e-4, atol=1e-6, msg=key)
    for opt, opt_expected in zip(cli.model.optimizers(), uninterrupted.model.optimizers(), strict=True):
        for state, state_expected in zip(opt.optimizer.state.values(), opt_expected.optimizer.state.values()):
            torch.testing.assert_close(state["exp_avg_sq"], state_expected["exp_avg_sq"], rtol=1e-4, atol=1e-8)


@pytest.mark.slow  # fault injection
def test_sigkill_then_ckpt_path_last_resumes_the_same_run_and_wandb_run(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    args = ["fit", *tiny_args("--trainer.max_steps=20", *EVERY_STEP, "--data.synthetic.train_size=12")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lit_gan", *args], cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    # Past step 6: each step's file replaces the previous one (save_top_k 1), so look for any step >= 6.
    while newest_step(tmp_path / "runs") < 6 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: maybe mid-step, maybe mid-checkpoint
    _, stderr = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, stderr.decode()[-3000:]
    (run,) = run_folders(tmp_path)
    killed_at = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert 5 <= killed_at < 20  # last.ckpt is written just after the step file

    cli = main([*args, "--trainer.callbacks+=tests.test_resume.LossRecorder", "--ckpt_path=last"])
    (recorder,) = [callback for callback in cli.trainer.callbacks if isinstance(callback, LossRecorder)]

    assert f"Resuming {run.name} from {run / 'checkpoints' / 'last.ckpt'} at step {killed_at}" in caplog.text
    assert cli.trainer.global_step == 20  # the planned final step
    assert min(recorder.losses) == killed_at + 1
    assert run_folders(tmp_path) == [run]  # the same run folder ...
    assert cli.trainer.logger.version == run.name  # ... and the same W&B run id
    assert not list((run / "checkpoints").glob(".*.tmp"))  # an interrupted write, if any, was cleaned up
    assert len(wandb_run_dirs(tmp_path / "runs", run.name)) == 2  # offline, each start writes its own folder
    # (rows are indexed from 0; what the killed process had not yet flushed to its W&B file is lost)
    logged = {int(row["trainer/global_step"]) for row in run_history(tmp_path / "runs", run.name) if "train/G_A" in row}
    assert set(range(killed_at, 20)) <= logged

    # The first resumed step is the step an uninterrupted run takes.
    straight = LossRecorder()
    fit(tiny_args(f"--trainer.max_steps={killed_at + 1}", *EVERY_STEP, "--data.synthetic.train_size=12"), [straight])
    assert recorder.losses[killed_at + 1] == pytest.approx(straight.losses[killed_at + 1], rel=1e-5, abs=1e-7)


def test_ckpt_path_last_without_a_previous_run_starts_a_new_run(caplog):
    caplog.set_level(logging.INFO)
    cli = main(["fit", *tiny_args("--trainer.max_steps=1", "--ckpt_path=last")])
    assert cli.trainer.global_step == 1
    assert "--ckpt_path last: no last.ckpt of a CycleGAN run under" in caplog.text


def test_missing_checkpoint_file_is_named():
    with pytest.raises(FileNotFoundError, match="--ckpt_path nowhere.ckpt: no such checkpoint file"):
        main(["fit", *tiny_args("--ckpt_path=nowhere.ckpt")])


KILL_WHILE_SAVING = textwrap.dedent(
    """
    import os, signal, sys, torch
    from lit_gan.runs import AtomicCheckpointIO

    def half_then_die(obj, file):  # write half of the bytes, then be killed, as a real kill mid-write would
        import io
        buffer = io.BytesIO()
        real_save(obj, buffer)
        file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        file.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    real_save, torch.save = torch.save, half_then_die
    AtomicCheckpointIO().save_checkpoint({"step": 2, "weights": torch.ones(10_000)}, sys.argv[1])
    """
)


def test_a_kill_while_saving_leaves_the_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1, "weights": torch.zeros(10_000)}, path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", KILL_WHILE_SAVING, str(path)], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert torch.load(path, weights_only=True)["step"] == 1  # the previous checkpoint, complete
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the permissions of any new file, not mkstemp's 0600
    (partial,) = list(path.parent.glob(".*.tmp"))  # the interrupted write is a hidden temporary file
    assert partial.name.startswith(".last.ckpt.")
    assert sorted(p.name for p in path.parent.glob("*.ckpt")) == ["last.ckpt"]
