"""`lit_gan.compat`: every private Lightning/torch internal it wraps still exists and means what it did (on a real
tiny Trainer), and no other module of the package reaches into private API."""

import ast
import inspect
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from pytorch_lightning import Trainer
from pytorch_lightning import loggers as pl_loggers
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.demos.boring_classes import BoringModel
from pytorch_lightning.loggers import WandbLogger as LightningWandbLogger
from pytorch_lightning.strategies import DDPStrategy
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from lit_gan import compat, compat_torch
from lit_gan.distributed import find_unused_parameters_by_default
from lit_gan.loggers import WandbLogger

PACKAGE = Path(compat.__file__).parent
COMPAT_MODULES = ("compat.py", "compat_torch.py")  # where private access belongs
N_BATCHES = 3


@contextmanager
def internal(name: str):
    """Turn a missing internal into a failure that names it and says where to adapt."""
    try:
        yield
    except (AttributeError, KeyError, ImportError, TypeError) as error:
        pytest.fail(f"Lightning/torch changed {name} ({error!r}): adapt lit_gan/compat.py", pytrace=False)


# -- no private access outside compat.py ----------------------------------------------------------------------------


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


LOOPS = ("fit_loop", "epoch_loop")  # public attributes holding Lightning's internal loops: passing one is fine,
# reading inside one (`trainer.fit_loop.epoch_progress`, `fit_loop.restarting`) is private API


def reads_a_loop(node: ast.Attribute) -> bool:
    owner = node.value
    return (isinstance(owner, ast.Attribute) and owner.attr in LOOPS) or (
        isinstance(owner, ast.Name) and owner.id in LOOPS
    )


def private_accesses(path: Path) -> list[str]:
    """`file:line: what` of each `x._name` (x not `self`, `cls` or `super()`), each read inside a Lightning loop
    (`x.fit_loop.y`, `epoch_loop.y`) and each `from m import _name` in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and reads_a_loop(node):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Attribute) and is_private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names if is_private(alias.name)]
            found += [f"{path}:{node.lineno}: from {node.module} import {name}" for name in names]
    return found


def test_private_api_is_reached_only_through_compat():
    paths = [path for path in sorted(PACKAGE.rglob("*.py")) if path.name not in COMPAT_MODULES]
    offenders = [hit for path in paths for hit in private_accesses(path)]
    message = "private access outside lit_gan/compat.py and compat_torch.py (move it there):\n"
    assert not offenders, message + "\n".join(offenders)


def test_the_guard_sees_private_access(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text(
        "from m import _x\nself._ok\nsuper()._ok\ntrainer._logger_connector\nobj.__dict__\n"
        "f(self.trainer.fit_loop)\nself.trainer.fit_loop.epoch_progress\nfit_loop.restarting\n"
    )
    assert private_accesses(source) == [
        f"{source}:1: from m import _x",
        f"{source}:4: trainer._logger_connector",
        f"{source}:7: self.trainer.fit_loop.epoch_progress",
        f"{source}:8: fit_loop.restarting",
    ]


# -- a real tiny fit ------------------------------------------------------------------------------------------------


class Recorder(Callback):
    """What compat reads at each training batch's end."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with internal("trainer._logger_connector.should_update_logs / fit_loop.epoch_loop.batch_progress"):
            index, last = compat.train_batch_idx(trainer), compat.is_last_batch(trainer)
            logs = compat.should_log_this_step(trainer)
        self.seen.append((batch_idx, index, last, logs))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compat_fit")
    recorder = Recorder()
    trainer = Trainer(
        default_root_dir=folder, max_epochs=1, limit_train_batches=N_BATCHES, limit_val_batches=0,
        log_every_n_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[recorder],
    )  # fmt: skip
    model = BoringModel()
    assert compat.attached_trainer(model) is None, "LightningModule._trainer: not None before fit"
    trainer.fit(model)
    trainer.save_checkpoint(folder / "end.ckpt")
    return trainer, model, recorder, torch.load(folder / "end.ckpt", weights_only=False)


def test_attached_trainer(fitted):
    trainer, model, _, _ = fitted
    with internal("LightningModule._trainer"):
        assert compat.attached_trainer(model) is trainer


def test_batch_position_and_logging_step(fitted):
    _, _, recorder, _ = fitted
    # Batch i ends after i + 1 optimizer steps; `should_update_logs` tests (_batches_that_stepped + 1) % 2 with the
    # step not yet counted in `on_train_batch_end`, i.e. it is True for the 2nd batch.
    assert recorder.seen == [(0, 0, False, False), (1, 1, False, True), (2, 2, True, False)], (
        "fit_loop.epoch_loop.batch_idx / batch_progress.is_last_batch / _logger_connector.should_update_logs "
        "changed meaning"
    )


def test_loop_progress_read_by_resume(fitted):
    trainer, _, _, checkpoint = fitted
    fit_loop = trainer.fit_loop
    with internal("the fit loop's progress (epoch_progress, restarting, epoch_loop.batch_progress, restarted_*)"):
        assert not fit_loop.restarting and fit_loop.done
        assert not fit_loop.restarted_mid_epoch and not fit_loop.epoch_loop.restarted_on_train_batch_end
        totals = fit_loop.epoch_progress.total
        assert (totals.ready, totals.started, totals.processed, totals.completed) == (1, 1, 1, 1)
        batches = fit_loop.epoch_loop.batch_progress
        assert (batches.total.completed, batches.current.ready, batches.is_last_batch) == (N_BATCHES, N_BATCHES, True)
        assert callable(fit_loop.epoch_progress.increment_ready) and callable(fit_loop.epoch_progress.increment_started)
        assert compat.resume_position(fit_loop) == (1, 0)  # not restarting: the epoch to start next
    with internal("checkpoint['loops']['fit_loop'] keys read by epoch_end_as_last_batch"):
        fit = checkpoint["loops"]["fit_loop"]
        assert set(fit["epoch_progress"]["total"]) >= {"ready", "started", "processed", "completed"}
        assert fit["epoch_loop.batch_progress"]["is_last_batch"] is True
        assert fit["epoch_loop.batch_progress"]["current"]["completed"] == N_BATCHES
        assert fit["epoch_loop.state_dict"][compat.BATCHES_THAT_STEPPED] == N_BATCHES


# -- LightningCLI ---------------------------------------------------------------------------------------------------


class CLIProbe(BoringModel):
    def __init__(self, width: int = 2) -> None:
        super().__init__()
        self.given_by_cli = compat.hyperparameters_given_by_cli()


def test_hyperparameters_given_by_cli(tmp_path):
    with internal("pytorch_lightning.core.mixins.hparams_mixin._given_hyperparameters"):
        assert not CLIProbe().given_by_cli
        args = [f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false", "--seed_everything=false"]
        cli = LightningCLI(CLIProbe, run=False, args=args)
    assert cli.model.given_by_cli, "LightningCLI no longer sets _given_hyperparameters while building the model"


# -- W&B logger -----------------------------------------------------------------------------------------------------


def test_wandb_logger_internals(tmp_path):
    logger = WandbLogger(save_dir=str(tmp_path), name="a run", offline=True)
    with internal("WandbLogger._wandb_init / _id / _experiment"):
        assert compat.wandb_init_settings(logger)["name"] == "a run" == logger.run_name
        assert compat.started_wandb_run(logger) is None
        compat.set_wandb_run_id(logger, "abc123")
        assert logger.version == "abc123" and compat.wandb_init_settings(logger)["id"] == "abc123"
        compat.forget_wandb_run(logger)
        assert compat.started_wandb_run(logger) is None
    experiment = inspect.getsource(inspect.unwrap(LightningWandbLogger.experiment.fget))
    assert "wandb.init(**self._wandb_init)" in experiment, "WandbLogger.experiment no longer starts from _wandb_init"
    assert "self._experiment" in experiment, "WandbLogger.experiment no longer keeps its run in _experiment"


# -- DDP ------------------------------------------------------------------------------------------------------------


def test_ddp_kwargs():
    with internal("DDPStrategy._ddp_kwargs"):
        assert compat.ddp_kwargs(DDPStrategy(find_unused_parameters=False)) == {"find_unused_parameters": False}
    setup = inspect.getsource(DDPStrategy._setup_model)
    assert "**self._ddp_kwargs" in setup, "DDPStrategy._setup_model no longer builds DDP from _ddp_kwargs"


@pytest.mark.parametrize(("strategy", "expected"), [(DDPStrategy(), True), ("ddp_find_unused_parameters_false", False)])
def test_find_unused_parameters_by_default_keeps_an_explicit_setting(strategy, expected):
    trainer = Trainer(strategy=strategy, accelerator="cpu", devices=2, logger=False)
    find_unused_parameters_by_default(trainer.strategy)
    assert compat.ddp_kwargs(trainer.strategy)["find_unused_parameters"] is expected


# -- torch ----------------------------------------------------------------------------------------------------------


def test_spectral_power_iterations_reestimate_without_random_draws():
    torch.manual_seed(0)
    conv = spectral_norm(nn.Conv2d(3, 4, 3))
    with torch.no_grad():
        conv.parametrizations.weight.original.mul_(10.0)  # redrawn: the stored estimate is stale
    conv.eval()
    rng = torch.get_rng_state()
    with internal("torch.nn.utils.parametrizations._SpectralNorm._power_method / _reshape_weight_to_matrix"):
        compat_torch.spectral_power_iterations(conv, 50)
    assert torch.equal(torch.get_rng_state(), rng), "_SpectralNorm._power_method drew random numbers"
    sigma = float(torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2))
    assert sigma == pytest.approx(1.0, abs=1e-3), "_SpectralNorm._power_method no longer updates the estimate"


def test_logging_skips_moving_results_already_on_the_device(monkeypatch):
    from pytorch_lightning.trainer.connectors.logger_connector import result

    compat.skip_needless_result_moves()
    compat.skip_needless_result_moves()  # idempotent: one wrapper
    assert getattr(result._ResultMetric.to, "skips_needless_moves", False)
    assert not getattr(result._ResultMetric.to.__wrapped__, "skips_needless_moves", False)
    walks = []
    walk = result.apply_to_collection
    monkeypatch.setattr(result, "apply_to_collection", lambda *args, **kw: walks.append(1) or walk(*args, **kw))
    with internal("_ResultMetric(meta, is_tensor).to, apply_to_collection in logger_connector/result.py"):
        meta = result._Metadata(fx="training_step", name="train/G", on_step=True, on_epoch=False)
        metric = result._ResultMetric(meta, is_tensor=True)
        cpu = torch.device("cpu")
        assert metric.to(cpu) is metric and not walks  # everything on the CPU already: no walk
        metric.to(torch.float64)  # anything but a device: Lightning's own move
        assert len(walks) == 1
        metric._defaults["value"] = torch.zeros((), device="meta")  # one tensor elsewhere: Lightning's own move
        with pytest.raises(NotImplementedError):  # (a meta tensor cannot be moved; what matters is that it tried)
            metric.to(cpu)
        assert len(walks) == 2


class LogsEveryStep(BoringModel):
    """Logs three values per step, one of them accumulated over the epoch (mean) as well."""

    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("loss", out["loss"])
        self.log("twice", out["loss"] * 2, on_epoch=True)
        self.log_dict({"idx": float(batch_idx), "half": out["loss"].detach() / 2})
        return out


class Recorded(pl_loggers.CSVLogger):
    def __init__(self, folder) -> None:
        super().__init__(folder)
        self.recorded: list[tuple[int, dict]] = []

    def log_metrics(self, metrics, step=None) -> None:
        self.recorded.append((step, dict(metrics)))


def test_logged_values_are_the_same_without_the_move(tmp_path, monkeypatch):
    from pytorch_lightning.trainer.connectors.logger_connector import result

    def run(folder):
        torch.manual_seed(0)
        logger = Recorded(folder)
        trainer = Trainer(
            default_root_dir=folder, max_epochs=2, limit_train_batches=N_BATCHES, limit_val_batches=0,
            log_every_n_steps=1, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False,
        )  # fmt: skip
        trainer.fit(LogsEveryStep())
        return logger.recorded

    compat.skip_needless_result_moves()
    fast = run(tmp_path / "fast")
    monkeypatch.setattr(result._ResultMetric, "to", result._ResultMetric.to.__wrapped__)  # Lightning's own
    assert len(fast) >= 2 * N_BATCHES and fast == run(tmp_path / "lightning")
