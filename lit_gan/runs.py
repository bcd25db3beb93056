"""Where a run's files go, and writing them (checkpoints included) atomically."""

import importlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml
from lightning_fabric.utilities.types import _PATH
from pytorch_lightning.plugins.io import TorchCheckpointIO


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
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only; give it the permissions of any new file
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return umask


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made safe against being killed mid-write: each checkpoint is written to a
    temporary file beside its final path, flushed to disk and renamed over it, so the path holds either the previous
    complete checkpoint or the new complete one. (Lightning's own writer goes through an fsspec transaction that
    writes to the system temporary folder and moves the file afterwards, which is a copy, not a rename, when that
    folder is on another file system.) Remote paths (`s3://...`) keep Lightning's writer."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())

        atomic_write(Path(path), write)


def unfinished_writes(folder: Path) -> list[Path]:
    """Temporary files that `atomic_write` left in `folder` or below (checkpoints, sample grids) when its process was
    killed mid-write."""
    return sorted(Path(folder).rglob(".*.tmp"))


RUN_KEY = "lit_gan_run"
"""Checkpoint key of the run a checkpoint belongs to: {"logger_version": the W&B run id}."""


def find_last_checkpoint(runs_folder: Path, model_class: type, run_name: str | None = None) -> Path | None:
    """The most recently written `last.ckpt` under `runs_folder/<run id>/checkpoints/` of a run of `model_class`
    (and named `run_name`, when given), read from each run folder's `config.yaml`; None when there is none."""
    candidates = []
    for ckpt in Path(runs_folder).glob("*/checkpoints/last.ckpt"):
        config_file = ckpt.parent.parent / "config.yaml"
        try:
            config = yaml.safe_load(config_file.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        model = config.get("model") or {}
        logger = (config.get("trainer") or {}).get("logger") or {}
        name = (logger.get("init_args") or {}).get("name") if isinstance(logger, dict) else None
        if import_class(model.get("class_path")) is model_class and (run_name is None or name == run_name):
            candidates.append(ckpt)
    return max(candidates, key=lambda path: path.stat().st_mtime, default=None)


def checkpoint_summary(path: Path) -> dict[str, Any]:
    """The run id, step and epoch a checkpoint was saved at, read without loading its tensors into memory."""
    checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    run = checkpoint.get(RUN_KEY) or {}
    return {
        "run_id": run.get("logger_version"),
        "step": checkpoint.get("global_step"),
        "epoch": checkpoint.get("epoch"),
    }


def import_class(class_path: object) -> object:
    """The object a dotted `class_path` ("lit_gan.models.CycleGAN") names, or None when it names nothing importable."""
    if not isinstance(class_path, str) or "." not in class_path:
        return None
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
