"""Command line: `python -m lit_gan fit|validate|test|predict --config FILE`, through LightningCLI;
`python -m lit_gan sweep FILE` runs a sweep file offline; `compare` puts runs side by side."""

import sys

import yaml
from jsonargparse import lazy_instance
from pytorch_lightning import LightningModule
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

import lit_gan.models  # noqa: F401  (registers the LightningModules for `model.class_path`)
from lit_gan.callbacks import BestCheckpoint, MetricsCallback, SampleGridCallback
from lit_gan.data import StyleDataModule
from lit_gan.loggers import WandbLogger
from lit_gan.runs import atomic_write, run_dir


class RunConfigCallback(SaveConfigCallback):
    """Saves the fully resolved config as `config.yaml` in the run folder and into the W&B run's config."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        text = self.parser.dump(self.config, skip_none=False)
        atomic_write(run_dir(trainer) / "config.yaml", lambda tmp: tmp.write_text(text))
        for logger in trainer.loggers:
            logger.log_hyperparams(yaml.safe_load(text))


class LitGANCLI(LightningCLI):
    """LightningCLI with lit_gan's defaults: W&B logging, FID/KID/IS, sample grids, the latest checkpoint (with
    `last.ckpt`) and the best one by FID."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(SampleGridCallback, "samples")
        parser.add_lightning_class_args(MetricsCallback, "metrics")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")  # the latest state, for resuming
        parser.add_lightning_class_args(BestCheckpoint, "best_checkpoint")  # the best by FID
        parser.set_defaults(
            {
                "trainer.logger": lazy_instance(WandbLogger),
                "trainer.log_every_n_steps": 1,  # every loss term and learning rate at every step
                "checkpoint.save_last": True,
                "checkpoint.filename": "step{step:07d}",
                "checkpoint.auto_insert_metric_name": False,
                "best_checkpoint.monitor": "val/fid",
                "best_checkpoint.mode": "min",
                "best_checkpoint.filename": "best-step{step:07d}",
                "best_checkpoint.auto_insert_metric_name": False,
            }
        )

    def _check_run(self) -> None:
        """Check the data against the model (image sizes, unreadable files), and that the metrics' feature
        extractor can be loaded, before any run starts."""
        check = getattr(self.datamodule, "check", None)
        if callable(check):
            check(self.model)
        for callback in self.trainer.callbacks:
            if isinstance(callback, MetricsCallback) and self.subcommand != "predict":
                callback.prepare(self.model)

    before_fit = before_validate = before_test = before_predict = _check_run


def main(args: list[str] | None = None, run: bool = True) -> LitGANCLI:
    """Entry point; `args` replaces `sys.argv[1:]` (for tests and notebooks). `sweep` runs a sweep file offline."""
    argv = sys.argv[1:] if args is None else args
    if argv[:1] == ["sweep"]:
        from lit_gan.sweep.command import sweep_main

        raise SystemExit(sweep_main(argv[1:]))
    if argv[:1] == ["compare"]:
        from lit_gan.sweep.compare import compare_main

        raise SystemExit(compare_main(argv[1:]))
    return LitGANCLI(
        LightningModule,
        StyleDataModule,
        subclass_mode_model=True,
        save_config_callback=RunConfigCallback,
        save_config_kwargs={"save_to_log_dir": False},
        args=args,
        run=run,
        auto_configure_optimizers=False,
    )
