import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wandb

from lit_gan.loggers import WandbLogger, wandb_credentials_available
from lit_gan.sweep.history import last_logged_steps, metric_curve, run_history, wandb_run_dirs


@pytest.fixture
def no_wandb_env(monkeypatch, tmp_path):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    yield tmp_path / "netrc"


def test_credentials_from_env_or_netrc(no_wandb_env, monkeypatch):
    assert not wandb_credentials_available()
    no_wandb_env.write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    assert wandb_credentials_available()
    no_wandb_env.unlink()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_credentials_available()


@pytest.mark.parametrize(
    ("env_mode", "credentials", "expected_offline"),
    [(None, False, True), (None, True, False), ("offline", True, True), ("online", False, False)],
)
def test_mode_is_chosen_without_prompting(no_wandb_env, monkeypatch, env_mode, credentials, expected_offline):
    if env_mode:
        monkeypatch.setenv("WANDB_MODE", env_mode)
    if credentials:
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert WandbLogger(save_dir="runs")._offline_mode is expected_offline
    assert WandbLogger(save_dir="runs", offline=True)._offline_mode is True


def test_offline_run_ends_with_one_sync_line(no_wandb_env, caplog):
    logger = WandbLogger(save_dir="runs", name="t")
    logger.log_metrics({"x": 1.0}, step=0)
    with caplog.at_level(logging.INFO):
        logger.finalize("success")
    lines = [r.getMessage() for r in caplog.records if "wandb sync" in r.getMessage()]
    assert len(lines) == 1 and "runs/wandb/offline-run-" in lines[0]
    assert logger._experiment is None  # finished, so a later run in this process gets its own W&B run


def test_a_resumed_run_logs_each_step_once(tmp_path):
    # The first start logs steps 0-5 of a loss and a metric at step 3, then stops (as if killed after step 5, with its
    # last checkpoint at step 2); the second start retrains steps 3-8 with the same values and evaluates at step 6.
    first = WandbLogger(save_dir="runs", offline=True)
    for step in range(6):
        first.log_metrics({"train/loss": float(step)}, step=step)
    first.log_metrics({"val/fid": 10.0}, step=3)
    first.log_metrics({"translations/AtoB": wandb.Table(columns=["image"], data=[[0]])}, step=3)
    run_id = first.version
    first.finalize("failed")

    # W&B names a start's folder by its start time, to the second: two starts of one run within a second (only possible
    # in one process, as here; a real restart takes seconds) would share a folder.
    time.sleep(1.1)
    earlier = run_history(Path("runs"), run_id)
    already = last_logged_steps(earlier)
    assert {k: v for k, v in already.items() if not k.startswith("translations/")} == {"train/loss": 5, "val/fid": 3}
    second = WandbLogger(save_dir="runs", offline=True)
    second.continue_run(run_id, already, earlier)
    for step in range(3, 9):
        second.log_metrics({"train/loss": float(step), "train/lr": 0.1}, step=step)  # train/lr is new at every step
    second.log_metrics({"val/fid": 10.0}, step=3)  # logged before: left out
    second.log_metrics({"val/fid": 20.0}, step=6)
    for step in (3, 6):  # a table (or image) is in the history as flattened keys: logged again at step 6 only
        second.log_metrics({"translations/AtoB": wandb.Table(columns=["image"], data=[[0]])}, step=step)
    second.finalize("success")

    rows = run_history(Path("runs"), run_id)
    assert len(wandb_run_dirs(Path("runs"), run_id)) == 2
    assert metric_curve(rows, "train/loss") == [(step, float(step)) for step in range(9)]  # each step once
    assert metric_curve(rows, "train/lr") == [(step, 0.1) for step in range(3, 9)]
    assert metric_curve(rows, "val/fid") == [(3, 10.0), (6, 20.0)]
    assert [row["trainer/global_step"] for row in rows if "translations/AtoB._type" in row] == [3, 6]
    # The summary's best FID is the whole run's, not only the second start's (W&B's own min would be 20).
    wandb_cli = shutil.which("wandb", path=str(Path(sys.executable).parent)) or shutil.which("wandb")
    last_start = wandb_run_dirs(Path("runs"), run_id)[-1]
    inspect = [wandb_cli, "leet", "inspect", "--summary", "--json", str(last_start)]
    summary = json.loads(subprocess.run(inspect, capture_output=True, text=True).stdout)["summary"]
    assert summary["val/fid"] == {"min": 10.0, "last": 20.0}
