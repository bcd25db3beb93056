import logging

import pytest

from lit_gan.loggers import WandbLogger, wandb_credentials_available


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
