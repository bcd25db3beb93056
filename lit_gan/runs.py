"""Where a run's files go, writing them (checkpoints included) atomically, and reading checkpoints weights-only."""

import importlib
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.plugins.io import TorchCheckpointIO

StrPath = str | os.PathLike  # a local path, or a remote one (`s3://...`) as a string


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
    folder is on another file system.) Remote paths (`s3://...`) keep Lightning's writer.

    Its reader (resuming, `validate`/`test`/`predict --ckpt_path`) is weights-only whatever `weights_only` says: see
    `read_checkpoint`."""

    def load_checkpoint(self, path: StrPath, map_location: Any = None, weights_only: bool | None = None) -> dict:
        """The checkpoint at `path`, read weights-only onto the CPU (Lightning moves the states to the device)."""
        if "://" in str(path):  # remote: Lightning's reader (fsspec), weights-only too
            return super().load_checkpoint(path, weights_only=True)
        return read_checkpoint(path, mmap=False)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: StrPath, storage_options: Any | None = None) -> None:
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


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or holds no lit_gan model."""


class CheckpointRefused(CheckpointError):
    """A checkpoint that holds something other than tensors and plain values: unpickling it could run code."""


def read_checkpoint(path: StrPath, mmap: bool = True) -> dict[str, Any]:
    """The contents of the checkpoint file `path`, read weights-only onto the CPU: tensors and plain values (dicts,
    lists, strings, numbers...), which is all a lit_gan checkpoint holds; nothing in the file is run. With `mmap`, the
    tensors are mapped from the file rather than read into memory (reading the hyperparameters costs nothing).

    Raises:
        CheckpointRefused: naming the file, if it holds anything else (objects whose unpickling would run code).
        CheckpointError: naming the file, if it is missing, not a PyTorch checkpoint or not a dict.
    """
    if not Path(path).is_file():
        raise CheckpointError(f"checkpoint {path} not found (e.g. runs/lit_gan/<id>/checkpoints/last.ckpt)")
    if not zipfile.is_zipfile(path):  # torch's own message for this is advice about mmap and torch.save options
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint: torch.save writes a zip archive and this file is not one "
            "(a truncated copy, or another kind of file)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=mmap, weights_only=True)
    except pickle.UnpicklingError:  # torch's message suggests weights_only=False: not advice to pass on
        raise CheckpointRefused(refusal(path)) from None
    except (RuntimeError, EOFError, ValueError) as err:
        raise CheckpointError(f"{path} is not a PyTorch checkpoint: {err}") from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a Lightning checkpoint")
    return checkpoint


def guard_trainer_checkpoints(trainer: pl.Trainer) -> None:
    """Make `trainer` read checkpoints weights-only whatever its caller passed (e.g. `trainer.fit(model,
    ckpt_path=..., weights_only=False)` from Python): Lightning's default checkpoint reader and writer is replaced by
    `AtomicCheckpointIO`, whose reader is weights-only; with a user's own reader, which may honour `weights_only`,
    the checkpoint about to be restored is read weights-only here first, which refuses a file holding objects that
    would run code before that reader sees it. Called by the CLI when it builds the trainer and by every lit_gan
    model's `setup`, which Lightning calls before restoring.

    Raises:
        CheckpointRefused: naming the file, if the checkpoint to restore holds anything but tensors and plain values.
    """
    io = trainer.strategy.checkpoint_io
    if type(io) is TorchCheckpointIO:  # Lightning's default
        trainer.strategy.checkpoint_io = io = AtomicCheckpointIO()
    path = trainer.ckpt_path
    if not isinstance(io, AtomicCheckpointIO) and path and "://" not in str(path) and Path(path).is_file():
        read_checkpoint(path)


def refusal(path: StrPath) -> str:
    """Why the weights-only read of the checkpoint `path` failed, in one line, naming the objects that would run."""
    find = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)  # torch >= 2.5
    try:  # reads the pickle's opcodes, running nothing
        names = find(str(path)) if find is not None else []
    except (ValueError, RuntimeError, EOFError, pickle.UnpicklingError):
        names = []
    what = f"objects that would run code when loaded ({', '.join(names)})" if names else "other objects"
    return (
        f"checkpoint {path} refused: it holds {what}, so it is not a lit_gan checkpoint (lit_gan reads checkpoints "
        "weights-only: tensors and plain values); load only checkpoints you trust"
    )


def checkpoint_summary(path: Path) -> dict[str, Any]:
    """The run id, step and epoch a checkpoint was saved at, read weights-only without loading its tensors into memory
    (see `read_checkpoint`)."""
    checkpoint = read_checkpoint(path)
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
