"""`python -m lit_gan fit|validate|test|predict --config FILE`: LightningCLI with lit_gan's defaults and checks.

`lit_gan.cli` maps these commands here; `lit_gan.sweep` parses sweep trials' commands here too (without running them),
which is why this module is apart from the command map: sweep code imports it, and the command map imports sweep code.
"""

import io
import shutil
import sys
import warnings
from collections.abc import Iterable
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import yaml
from jsonargparse import lazy_instance
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import Callback, ModelSummary, RichProgressBar, TQDMProgressBar
from pytorch_lightning.cli import ArgsType, LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only

import lit_gan.models  # noqa: F401  (registers the LightningModules for `model.class_path`)
from lit_gan.callbacks import (
    BestCheckpoint,
    DivergenceGuard,
    LatestCheckpoint,
    MetricsCallback,
    PredictionWriter,
    SampleGridCallback,
    SpeedOptions,
    TimedProgressBar,
    TranslationTableCallback,
)
from lit_gan.console import parameter_line, quiet_startup
from lit_gan.contracts import CheckedData
from lit_gan.data import StyleDataModule
from lit_gan.data.options import renamed_data_keys
from lit_gan.distributed import find_unused_parameters_by_default
from lit_gan.journal import read_journal
from lit_gan.loggers import WandbLogger
from lit_gan.metric_keys import PRIMARY
from lit_gan.runs import (
    RUN_KEY,
    CheckpointError,
    atomic_write,
    checkpoint_summary,
    find_last_checkpoint,
    guard_trainer_checkpoints,
    read_checkpoint,
    run_dir,
    unfinished_writes,
)
from lit_gan.sweep.history import run_history


class CheckpointNotFound(FileNotFoundError):
    """`--ckpt_path` names no file, or is missing where it is needed."""


class DataConfigError(ValueError):
    """A config value that the model, data or trainer refuses when built, or data that does not suit the model
    (sizes, unreadable files with `data.strict`), found before any run starts."""


class DataNotFound(FileNotFoundError):
    """A folder or file that the config names (e.g. `data.root`'s trainB) does not exist or holds no image."""


@contextmanager
def config_errors():
    """Raise the ValueErrors and FileNotFoundErrors of building and checking the run (user errors: the message names
    the key or file) as `DataConfigError` and `DataNotFound`, which remain ValueError and FileNotFoundError."""
    try:
        yield
    except (CheckpointError, CheckpointNotFound):
        raise
    except FileNotFoundError as error:
        raise DataNotFound(*error.args) from error
    except ValueError as error:
        if UNION_NOISE in str(error):  # an error of a class built from the config, inside jsonargparse's union report
            raise DataConfigError(argument_error_reason(str(error))) from error
        raise DataConfigError(*error.args) from error


class RunConfigCallback(SaveConfigCallback):
    """Saves the fully resolved config as `config.yaml` in the run folder and into the W&B run's config, and the
    run's id into every checkpoint (so that resuming continues the same W&B run)."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[RUN_KEY] = {"logger_version": trainer.logger.version if trainer.logger is not None else None}

    def save_config(self, trainer, pl_module, stage: str) -> None:
        if stage == "predict":
            return  # predict starts no run: no run folder, no W&B run
        text = self.parser.dump(self.config, skip_none=False)
        atomic_write(run_dir(trainer) / "config.yaml", lambda tmp: tmp.write_text(text))
        for logger in trainer.loggers:
            logger.log_hyperparams(yaml.safe_load(text))


def timed_progress_bar(trainer: Trainer, given: Iterable[Callback] = ()) -> None:
    """Replace the progress bar Lightning adds by default (a `TQDMProgressBar`, or a `RichProgressBar` where `rich` is
    installed, as Gradio's dependencies install it; either redrawn after every batch) with a `TimedProgressBar`, so
    that the bar is the same whatever else is installed; a progress bar among the `given` callbacks (the config's) is
    kept."""
    kept = {id(callback) for callback in given}
    for i, callback in enumerate(trainer.callbacks):
        if type(callback) in (TQDMProgressBar, RichProgressBar) and id(callback) not in kept:
            trainer.callbacks[i] = TimedProgressBar()


class LitGANCLI(LightningCLI):
    """LightningCLI with lit_gan's defaults: W&B logging, FID/KID/IS, sample grids, per-image translation tables, the
    latest checkpoint (with `last.ckpt`) and the best one by FID."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(SampleGridCallback, "samples")
        parser.add_lightning_class_args(MetricsCallback, "metrics")
        parser.add_lightning_class_args(TranslationTableCallback, "translations")  # per-image, at each evaluation
        parser.add_lightning_class_args(LatestCheckpoint, "checkpoint")  # the latest state, for resuming
        parser.add_lightning_class_args(BestCheckpoint, "best_checkpoint")  # the best by FID
        parser.add_lightning_class_args(DivergenceGuard, "divergence")  # stop on NaN/Inf losses
        parser.add_lightning_class_args(SpeedOptions, "speed")  # channels_last, torch.compile, TF32, fused Adam
        parser.add_lightning_class_args(PredictionWriter, "predict_writer")  # predict's output images
        parser.set_defaults(
            {
                "trainer.logger": lazy_instance(WandbLogger),
                "trainer.log_every_n_steps": 1,  # every loss term and learning rate at every step
                "trainer.enable_model_summary": False,  # one line instead (`console.parameter_line`)
                "checkpoint.save_last": True,
                "checkpoint.filename": "step{step:07d}",
                "checkpoint.auto_insert_metric_name": False,
                "best_checkpoint.monitor": PRIMARY,
                "best_checkpoint.mode": "min",
                "best_checkpoint.filename": "best-step{step:07d}",
                "best_checkpoint.auto_insert_metric_name": False,
            }
        )

    def _check_run(self) -> None:
        """Check the data against the model (image sizes, unreadable files), and that the metrics' feature
        extractor can be loaded, before any run starts."""
        if isinstance(self.datamodule, CheckedData):
            with config_errors():
                self.datamodule.check(self.model, self.subcommand)
        for callback in self.trainer.callbacks:
            if isinstance(callback, MetricsCallback) and self.subcommand != "predict":
                callback.prepare(self.model)

    before_validate = before_test = before_predict = _check_run

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse the arguments, then make every checkpoint read weights-only: `weights_only` is set for the trainer,
        and a `--ckpt_path` file is refused here, before anything else reads it (Lightning's reading of its
        hyperparameters included), if it holds anything but tensors and plain values (see `read_checkpoint`)."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand is None:
            return
        config = self.config[subcommand]
        if config.get("weights_only") is False:
            raise CheckpointError(
                "--weights_only false: lit_gan reads every checkpoint weights-only (tensors and plain values), so "
                "that no checkpoint can run code; leave --weights_only out"
            )
        config["weights_only"] = True
        ckpt_path = config.get("ckpt_path")
        if ckpt_path and Path(ckpt_path).is_file():
            read_checkpoint(ckpt_path)

    def instantiate_classes(self) -> None:
        with config_errors():
            super().instantiate_classes()

    def before_instantiate_classes(self) -> None:
        if self.subcommand == "predict":  # nothing to log or measure: no W&B run, no feature extractor to load
            self.config.predict.trainer.logger = False
            self.config.predict.metrics.enabled = False

    def predict(self, **kwargs) -> None:
        """`trainer.predict` of a trained model (`--ckpt_path`), keeping the outputs in memory only with
        `--return_predictions true` (the prediction writer has saved them; a large folder would fill the memory)."""
        if kwargs.get("ckpt_path") is None:
            raise CheckpointNotFound(
                "predict needs --ckpt_path: the checkpoint of a trained model, e.g. <run>/checkpoints/last.ckpt"
            )
        with warnings.catch_warnings():  # predict writes no checkpoint: where they would go does not matter
            warnings.filterwarnings("ignore", message="The dirpath has changed from")
            self.trainer.predict(**{**kwargs, "return_predictions": bool(kwargs.get("return_predictions"))})

    def before_fit(self) -> None:
        self._check_run()
        self._resume()
        if isinstance(self.trainer.logger, WandbLogger):
            self.trainer.logger.watch_checkpoints(self.trainer.callbacks)
        if not any(isinstance(c, ModelSummary) for c in self.trainer.callbacks):  # the table when asked for, or this
            rank_zero_info(parameter_line(self.model))

    def instantiate_trainer(self, **kwargs) -> Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        guard_trainer_checkpoints(trainer)  # atomic writes, weights-only reads
        find_unused_parameters_by_default(trainer.strategy)  # `--trainer.strategy ddp` works for the GANs
        config = self._get(self.config_init, "trainer", default={}) or {}
        timed_progress_bar(trainer, [*(config.get("callbacks") or []), *(kwargs.get("callbacks") or [])])
        return trainer

    def _resume(self) -> None:
        """`--ckpt_path last`: the latest `last.ckpt` of a run of this model (and run name) under the logger's
        folder, or a new run when there is none. With a checkpoint, log into the run it belongs to (same W&B run,
        same run folder), and say so in one line."""
        config = self.config_init[self.subcommand]
        ckpt_path = config.get("ckpt_path")
        logger = self.trainer.logger
        if ckpt_path is None or not isinstance(logger, WandbLogger):
            return
        if ckpt_path == "last":
            runs_folder = Path(logger.save_dir) / logger.name
            found = find_last_checkpoint(runs_folder, type(self.model), logger.run_name)
            if found is None:
                model = type(self.model).__name__
                rank_zero_info(f"--ckpt_path last: no last.ckpt of a {model} run under {runs_folder}: a new run")
                config["ckpt_path"] = None
                return
            ckpt_path = config["ckpt_path"] = str(found)
        path = Path(ckpt_path)
        if not path.is_file():
            raise CheckpointNotFound(f"--ckpt_path {ckpt_path}: no such checkpoint file (or 'last' for the latest run)")
        summary = checkpoint_summary(path)
        run_folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        leftovers = unfinished_writes(run_folder)
        for leftover in leftovers:  # a process killed while writing a checkpoint or a grid; the files are intact
            leftover.unlink(missing_ok=True)
        if summary["run_id"]:
            # What the run logged before: its journal (beside the checkpoint) and what is left of it in its local W&B
            # files (online runs write them too). What W&B lost is logged again; nothing is logged twice. Read by
            # the process that logs; the others' loggers log nothing.
            rows, journal, server = [], [], []
            if rank_zero_only.rank == 0:
                rows = run_history(logger.save_dir, summary["run_id"])
                journal = read_journal(run_journal(logger, summary["run_id"], path))
                if not logger.offline and journal:  # what was uploaded from another machine
                    server = logger.server_history(summary["run_id"])
            logger.continue_run(summary["run_id"], rows, journal, server_rows=server)
        rank_zero_info(
            f"Resuming {summary['run_id'] or 'a run'} from {path} at step {summary['step']} (epoch {summary['epoch']})"
            + (f"; W&B run {summary['run_id']} continues" if summary["run_id"] else "; a new W&B run")
            + (f"; {logger.replayed} value(s) W&B had lost logged again from the journal" if logger.replayed else "")
            + (f"; removed {len(leftovers)} unfinished write(s)" if leftovers else "")
        )


def run_journal(logger: WandbLogger, run_id: str, checkpoint: Path) -> Path:
    """The journal a run resumed from `checkpoint` goes on with: its run folder's (where its checkpoints go), copied
    there first from beside the checkpoint when only that one exists (a run folder brought from another machine)."""
    journal = logger.journal_file(run_id)
    beside = checkpoint.parent / journal.name
    if not journal.is_file() and beside.is_file():
        atomic_write(journal, lambda tmp: shutil.copyfile(beside, tmp))
    return journal


def lightning_cli(args: ArgsType = None, run: bool = True, exit_on_error: bool = True) -> LitGANCLI:
    """Parse `args` (`sys.argv[1:]` when None), e.g. `["fit", "--config", "configs/quickstart.yaml"]`, into a
    `LitGANCLI`, and run its subcommand when `run`; a bad argument prints jsonargparse's usage and error and exits
    with code 2, or with `exit_on_error` false raises `jsonargparse.ArgumentError`."""
    quiet_startup()
    if args is None:  # the command line, rewritten in place (LightningCLI warns when given both)
        sys.argv[1:] = predict_aliases(sys.argv[1:])
    else:
        args = predict_aliases(args)
    check_renamed_keys(sys.argv[1:] if args is None else args)
    return LitGANCLI(
        LightningModule,
        StyleDataModule,
        subclass_mode_model=True,
        save_config_callback=RunConfigCallback,
        save_config_kwargs={"save_to_log_dir": False},
        args=args,
        run=run,
        auto_configure_optimizers=False,
        parser_kwargs={"exit_on_error": exit_on_error},
    )


PREDICT_ALIASES = {
    "--target": "--model.predict_target",
    "--source": "--model.predict_source",
    "--style": "--model.predict_style",
    "--style_image": "--model.predict_reference",
    "--strength": "--model.predict_strength",
    "--style_bank": "--model.predict_bank",
}
"""Short options of `predict` for a multi-style model (StarGANv2's `predict_*` arguments)."""


def predict_aliases(args: ArgsType) -> ArgsType:
    """`args` with `predict`'s short options (`PREDICT_ALIASES`, "--style night" or "--style=night") spelled out."""
    if not isinstance(args, list) or not args or args[0] != "predict":
        return args
    out = []
    for arg in args:
        flag, eq, value = arg.partition("=")
        out.append(PREDICT_ALIASES[flag] + eq + value if flag in PREDICT_ALIASES else arg)
    return out


def check_renamed_keys(args: ArgsType) -> None:
    """Stop with the new spelling when a config file (`--config FILE`) or an option (`--data.synthetic_train_size`)
    uses a data key that lit_gan has renamed (`lit_gan.data.options.RENAMED_KEYS`; e.g. a run's `config.yaml` written
    before the keys were grouped), instead of jsonargparse's "unrecognized key".

    Raises:
        DataConfigError: naming the file (or "the command line"), each renamed key and its new name.
    """
    if not isinstance(args, list):
        return
    found: list[tuple[str, list[str]]] = []
    options = {arg.partition("=")[0].removeprefix("--data.") for arg in args if arg.startswith("--data.")}
    if renamed := renamed_data_keys(dict.fromkeys(options)):
        found.append(("the command line", renamed))
    for i, arg in enumerate(args):
        path = arg.removeprefix("--config=") if arg.startswith("--config=") else None
        if arg == "--config" and i + 1 < len(args):
            path = args[i + 1]
        if path is None or not Path(path).is_file():
            continue
        try:
            config = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue  # jsonargparse reports it
        if renamed := renamed_data_keys(config.get("data") if isinstance(config, dict) else None):
            found.append((path, renamed))
    if found:
        where = "; ".join(f"{place}: {', '.join(keys)}" for place, keys in found)
        raise DataConfigError(
            f"renamed data keys in {where} (grouped: data.synthetic, data.single_image, "
            "data.predict); rename them and run again"
        )


UNION_NOISE = "Does not validate against any of the Union subtypes"


def argument_error_reason(message: str) -> str:
    """The informative lines of a jsonargparse error (without usage, union bookkeeping and NoneType), on one line."""
    lines = message.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("error:")), 0)
    noise = ("Subtypes:", "Errors:", UNION_NOISE, "NoneType", "Given value")
    kept = [line.strip(" -") for line in lines[start:] if line.strip() and not any(n in line for n in noise)]
    return " ".join(kept).removeprefix("error: ")


def rejected_arguments(args: list[str]) -> str | None:
    """Why lit_gan's CLI rejects the Lightning command `args` (e.g. a sweep trial's), on one line, or None when it
    parses them; nothing runs (`--print_config` is appended, and what it prints is dropped)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            lightning_cli([*args, "--print_config"])
    except DataConfigError as error:
        return str(error)
    except SystemExit as exit:
        if exit.code not in (0, None):
            return argument_error_reason(err.getvalue()) or f"exit code {exit.code}"
    return None
