"""Where a run's files go, and writing them atomically."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl


def run_dir(trainer: pl.Trainer) -> Path:
    """The run folder: `<save_dir>/<name>/<version>` of the first logger (checkpoints, samples and config live
    there, as Lightning places checkpoints), or `trainer.default_root_dir` without a logger."""
    if trainer.checkpoint_callback is not None and getattr(trainer.checkpoint_callback, "dirpath", None):
        return Path(trainer.checkpoint_callback.dirpath).parent
    logger = trainer.logger
    if logger is None or not logger.save_dir:  # no logger, or fast_dev_run's dummy logger
        return Path(trainer.default_root_dir)
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / version


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it to `path`; readers never see a partial
    file, and a failure leaves no file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
