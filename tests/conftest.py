"""Test set-up: W&B offline in a temporary folder, every test in its own working directory, tiny CPU runs."""

import os

import pytest
import torch

os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Run each test in a fresh folder so that `runs/` and W&B files never land in the checkout."""
    monkeypatch.chdir(tmp_path)
    # W&B records the address of its service process here once started; subprocesses would share it (and a killed
    # one's run id would stay "in use" there). Real runs start in fresh processes.
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.setenv("LIT_GAN_CACHE", str(tmp_path / "lit_gan_cache"))  # cached real-image features
    (tmp_path / "wandb_dir").mkdir()
    yield
