"""Killed anywhere, resumed to the same end: real training processes, SIGKILLed at every kind of moment (mid-epoch,
right after a checkpoint written on an epoch's last batch, at an epoch's end, during validation and the metrics
evaluation, while a sample grid or a checkpoint is being written, during the first step after a resume), each time
restarted with `--ckpt_path last` until the run ends. The run ends at the uninterrupted run's step and epoch with its
weights (EMA included), every checkpoint on disk loads, and the W&B history holds each step once."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lit_gan.journal import JOURNAL_NAME, journal_values, read_journal
from lit_gan.models.loading import load_checkpoint
from lit_gan.sweep import compare
from lit_gan.sweep.history import history_differences, run_history, wandb_run_dirs
from tests.fault_injection import DONE_FILE, EPOCHS, MOMENTS, PLAN_ENV, STEPS_PER_EPOCH
from tests.helpers import TINY_MODELS, batches_per_epoch, tiny_args

pytestmark = pytest.mark.slow  # fault injection: SIGKILLs at every kind of moment

REPO = Path(__file__).resolve().parents[1]


def run_args(model: str) -> list[str]:
    return [
        "fit",
        *tiny_args(
            f"--trainer.max_epochs={EPOCHS}",
            "--checkpoint.every_n_train_steps=3",  # divides the epoch: checkpoints on epochs' last batches
            "--samples.every_n_steps=5",
            "--metrics.every_n_epochs=1",
            "--metrics.feature_extractor=tests.fault_injection.KillableExtractor",
            "--trainer.callbacks+=tests.fault_injection.KillAt",
            "--model.lr_policy.n_epochs=2",  # the learning rate changes from epoch 2 on
            "--model.lr_policy.n_epochs_decay=2",
            batches_per_epoch(model, STEPS_PER_EPOCH),
            model=model,
        ),
        "--ckpt_path=last",  # as a preemptible job passes it every time: a new run when there is none
    ]


def run_until_done(folder: Path, model: str, plan: list[str], before_last_start=None) -> list[int]:
    """Start the run in `folder` with `--ckpt_path last` until it exits; the exit codes of all starts. The last start
    must end at max_epochs; `before_last_start(folder)` is called before it."""
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", PLAN_ENV: ",".join(plan)}
    env.pop("WANDB_SERVICE", None)
    codes = []
    for start in range(len(plan) + 1):
        if before_last_start is not None and start == len(plan):
            before_last_start(folder)
        proc = subprocess.run(
            [sys.executable, "-m", "lit_gan", *run_args(model)], cwd=folder, env=env, capture_output=True, timeout=300
        )
        codes.append(proc.returncode)
        assert proc.returncode in (0, -9), proc.stderr.decode()[-3000:]
        if proc.returncode == 0:
            assert (
                f"`Trainer.fit` stopped: `max_epochs={EPOCHS}` reached" in proc.stderr.decode() + proc.stdout.decode()
            )
            break
    return codes


def the_run(folder: Path) -> Path:
    (run,) = [p for p in (folder / "runs" / "lit_gan").iterdir() if p.is_dir()]
    return run


@pytest.mark.parametrize("model", list(TINY_MODELS))
def test_killed_at_every_kind_of_moment_the_run_ends_as_the_uninterrupted_run(tmp_path, model):
    plan = list(MOMENTS)
    codes = run_until_done(tmp_path / "killed", model, plan)
    assert (tmp_path / "killed" / DONE_FILE).read_text().split() == plan  # every moment was reached, in order
    assert codes == [-9] * len(plan) + [0]
    assert run_until_done(tmp_path / "straight", model, []) == [0]

    killed, straight = the_run(tmp_path / "killed"), the_run(tmp_path / "straight")
    last_step = f"step{EPOCHS * STEPS_PER_EPOCH:07d}.ckpt"  # written at the same moment by both runs
    final = torch.load(killed / "checkpoints" / last_step, weights_only=True)
    expected = torch.load(straight / "checkpoints" / last_step, weights_only=True)
    assert (final["global_step"], final["epoch"]) == (expected["global_step"], expected["epoch"])
    last = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert final["state_dict"].keys() == expected["state_dict"].keys()
    for key, value in expected["state_dict"].items():  # the generators' EMA copies included
        torch.testing.assert_close(final["state_dict"][key], value, rtol=1e-4, atol=1e-6, msg=key)

    # Every checkpoint on disk loads as a model, and no half-written file is left.
    checkpoints = sorted((killed / "checkpoints").glob("*.ckpt"))
    assert {"last.ckpt", f"step{EPOCHS * STEPS_PER_EPOCH:07d}.ckpt"} <= {p.name for p in checkpoints}
    for path in checkpoints:
        load_checkpoint(path)
    assert not list((killed / "checkpoints").glob(".*.tmp"))
    assert not list((killed / "samples").glob(".*.tmp"))

    # One record: the W&B history holds every key at every step exactly as the uninterrupted run's does, once, with
    # its values (W&B's service loses what it had not written when its process is SIGKILLed, here about all of a
    # short-lived process's rows: they are logged again from the run's journal), and so does the journal.
    assert_same_record(tmp_path / "killed", killed, tmp_path / "straight", straight)


def assert_same_record(folder: Path, run: Path, expected_folder: Path, expected_run: Path) -> None:
    """The W&B history and the journal of `run` equal those of `expected_run` (every key, every step, each once),
    and so do the evaluation summaries of their last starts."""
    rows = run_history(folder / "runs", run.name)
    expected_rows = run_history(expected_folder / "runs", expected_run.name)
    assert rows, "the resumed run logged nothing"
    assert history_differences(rows, expected_rows) == {"missing": [], "extra": []}
    journal = journal_values(read_journal(run / "checkpoints" / JOURNAL_NAME))
    assert journal == journal_values(read_journal(expected_run / "checkpoints" / JOURNAL_NAME))
    summary, expected = last_summary(folder, run), last_summary(expected_folder, expected_run)
    assert {k: v for k, v in summary.items() if k.startswith("val/")} == {
        k: v for k, v in expected.items() if k.startswith("val/")
    }
    assert Path(summary.get("best/checkpoint", "")).name == Path(expected.get("best/checkpoint", "")).name
    # `compare` (and so the sweep reports and dashboards, which read the history the same way) sees the same run.
    compared, expected_compared = (compare.table(compare.find_runs([r]), ["val/fid"])[0] for r in (run, expected_run))
    assert compared.pop("run") == run.name and expected_compared.pop("run") == expected_run.name
    assert compared == expected_compared and compared


def last_summary(folder: Path, run: Path) -> dict:
    """The W&B summary of the run's last start (the run's summary once synced)."""
    wandb_cli = shutil.which("wandb", path=str(Path(sys.executable).parent)) or shutil.which("wandb")
    inspect = [wandb_cli, "leet", "inspect", "--summary", "--json", str(wandb_run_dirs(folder / "runs", run.name)[-1])]
    return json.loads(subprocess.run(inspect, capture_output=True, text=True, check=True).stdout)["summary"]


def test_resumed_on_another_machine_the_history_is_complete_and_single(tmp_path):
    # Killed three times; the last start runs where the W&B files of the earlier starts are not (another machine that
    # got the run folder, or runs/wandb deleted): its W&B run alone holds the whole record, from the journal.
    plan = ["mid_epoch", "writing_samples", "during_validation"]
    run_until_done(tmp_path / "killed", "cyclegan", plan, before_last_start=move_wandb_files_away)
    run_until_done(tmp_path / "straight", "cyclegan", [])
    killed = the_run(tmp_path / "killed")
    assert len(wandb_run_dirs(tmp_path / "killed" / "runs", killed.name)) == 1
    assert_same_record(tmp_path / "killed", killed, tmp_path / "straight", the_run(tmp_path / "straight"))


def move_wandb_files_away(folder: Path) -> None:
    shutil.move(folder / "runs" / "wandb", folder / "wandb_of_the_first_machine")
