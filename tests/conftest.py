"""Test set-up: W&B offline in a temporary folder, every test in its own working directory, tiny CPU runs."""

import os

import pytest
import torch
import torch.utils.checkpoint

os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")
if os.environ.get("PYTEST_XDIST_WORKER"):  # one pytest process per core (pytest-xdist): one thread each
    os.environ["OMP_NUM_THREADS"] = "1"  # the training subprocesses too
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """One pytest process per core by default (`-n auto`) where pytest-xdist is installed (the dev extra has it);
    `-n 0` runs in one process, and a plain `pytest` without pytest-xdist runs serially instead of failing on an
    unknown `-n` option."""
    worker = hasattr(config, "workerinput") or "PYTEST_XDIST_WORKER" in os.environ  # a worker runs its share
    if not worker and config.pluginmanager.hasplugin("xdist") and getattr(config.option, "numprocesses", None) is None:
        config.option.numprocesses = "auto"


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
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb_data"))  # staged artifacts (tables, checkpoints)
    monkeypatch.setenv("LIT_GAN_CACHE", str(tmp_path / "lit_gan_cache"))  # cached real-image features
    (tmp_path / "wandb_dir").mkdir()
    yield


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory):
    """(model="cyclegan", *extra) -> the `last.ckpt` of a 2-step fit of the tiny model with `extra` arguments, trained
    once per test session in a folder of its own (`tests.helpers.train_tiny_checkpoint`). Treat it as read-only:
    other tests share it."""
    from tests.helpers import train_tiny_checkpoint

    trained: dict[tuple[str, ...], object] = {}

    def checkpoint(model: str = "cyclegan", *extra: str):
        key = (model, *extra)
        if key not in trained:
            trained[key] = train_tiny_checkpoint(tmp_path_factory.mktemp(model), model, *extra)
        return trained[key]

    return checkpoint


@pytest.fixture
def checkpoint_calls(monkeypatch) -> list[int]:
    """A list that gets one entry per call of torch.utils.checkpoint.checkpoint."""
    calls: list[int] = []
    checkpoint = torch.utils.checkpoint.checkpoint

    def counted(*args, **kwargs):
        calls.append(1)
        return checkpoint(*args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", counted)
    return calls


@pytest.fixture
def evaluation_steps(monkeypatch) -> list[int]:
    """A list that gets the trainer's global step of every `MetricsCallback.evaluate` call."""
    from lit_gan.callbacks import MetricsCallback

    steps: list[int] = []
    evaluate = MetricsCallback.evaluate

    def recording(self, trainer, pl_module, prefix="val"):
        steps.append(trainer.global_step)
        return evaluate(self, trainer, pl_module, prefix)

    monkeypatch.setattr(MetricsCallback, "evaluate", recording)
    return steps
