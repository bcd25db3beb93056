"""Killed anywhere, resumed to the same end: real training processes, SIGKILLed at every kind of moment (mid-epoch,
right after a checkpoint written on an epoch's last batch, at an epoch's end, during validation and the metrics
evaluation, while a sample grid or a checkpoint is being written, during the first step after a resume), each time
restarted with `--ckpt_path last` until the run ends. The run ends at the uninterrupted run's step and epoch with its
weights (EMA included), every checkpoint on disk loads, and the W&B history holds each step once."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from lit_gan.models.loading import load_checkpoint
from lit_gan.sweep.history import run_history
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


def run_until_done(folder: Path, model: str, plan: list[str]) -> list[int]:
    """Start the run in `folder` with `--ckpt_path last` until it exits; the exit codes of all starts. The last start
    must end at max_epochs."""
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", PLAN_ENV: ",".join(plan)}
    env.pop("WANDB_SERVICE", None)
    codes = []
    for _ in range(len(plan) + 1):
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


def history_by_key(folder: Path, run: Path) -> dict[str, list[tuple[int, object]]]:
    """{key: [(trainer/global_step, value), ...]} of every row the W&B run logged, over all its starts."""
    by_key: dict[str, list[tuple[int, object]]] = {}
    for row in run_history(folder / "runs", run.name):
        for key, value in row.items():
            if not key.startswith("_") and key != "trainer/global_step" and "trainer/global_step" in row:
                by_key.setdefault(key, []).append((int(row["trainer/global_step"]), value))
    return by_key


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

    # One history: no key logged at a step more often than the uninterrupted run logs it there (Lightning adds `epoch`
    # to every row: twice at a step that is also validated), with the uninterrupted run's values. (W&B's service loses
    # what it had not written yet when its process is SIGKILLed, here about all of a short-lived process's rows: a
    # resumed run logs again only the steps it retrains that are missing; see test_loggers for that choice.)
    logged, reference = history_by_key(tmp_path / "killed", killed), history_by_key(tmp_path / "straight", straight)
    assert logged, "the resumed run logged nothing"
    for key, entries in logged.items():
        counts, expected_counts = Counter(step for step, _ in entries), Counter(step for step, _ in reference[key])
        repeated = [step for step, count in counts.items() if count > expected_counts[step]]
        assert not repeated, f"{key} logged more often than by the uninterrupted run at steps {repeated}"
        if key.startswith("train/"):
            expected_values = dict(reference[key])
            for step, value in entries:
                assert value == pytest.approx(expected_values[step], rel=1e-4, abs=1e-6), (key, step)
