"""Checkpoints are read weights-only: one that would run code when loaded is refused by every entry point, in one
line naming the file, before anything else happens; every model's real checkpoints still load, resume and export."""

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml

from lit_gan.cli import main
from lit_gan.models.loading import load_checkpoint
from lit_gan.predict import stylize
from lit_gan.runs import CheckpointError, CheckpointRefused
from tests.helpers import TINY_MODELS, fit, tiny_args

REPO = Path(__file__).resolve().parents[1]
REFUSED = f"refused: it holds objects that would run code when loaded ({os.system.__module__}.system)"


class RunsCommand:
    """An object whose unpickling runs a shell command that creates the file `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def evil_checkpoint(path: Path, marker: Path) -> Path:
    """A file at `path` that looks like a checkpoint of `python -m lit_gan fit`, with a `RunsCommand` in its
    hyperparameters: a weights_only=False load would create `marker`."""
    checkpoint = {
        "epoch": 0,
        "global_step": 2,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": {"G_A.model.1.weight": torch.zeros(4, 3, 7, 7)},
        "hyper_parameters": {"_class_path": "lit_gan.models.CycleGAN", "lr": 2e-4, "generator": RunsCommand(marker)},
        "lit_gan_run": {"logger_version": "evil"},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def fake_run(runs: Path, run_id: str) -> Path:
    """An empty run folder of a CycleGAN under `runs` (its config.yaml names the model); returns where its last.ckpt
    goes."""
    (runs / run_id / "checkpoints").mkdir(parents=True)
    (runs / run_id / "config.yaml").write_text(yaml.safe_dump({"model": {"class_path": "lit_gan.models.CycleGAN"}}))
    return runs / run_id / "checkpoints" / "last.ckpt"


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


# -- refused: from the command line --------------------------------------------------------------------------------

CLI_CASES = {  # name -> (arguments after `python -m lit_gan`, given the checkpoint; exit code)
    "predict": (lambda ckpt: ["predict", *tiny_args(f"--ckpt_path={ckpt}")], 1),
    "fit": (lambda ckpt: ["fit", *tiny_args(f"--ckpt_path={ckpt}")], 1),
    "fit_last": (lambda ckpt: ["fit", *tiny_args("--ckpt_path=last")], 1),
    "export": (lambda ckpt: ["export", str(ckpt)], 1),  # refused before anything is written: a user error, exit 1
}


def cli_case(folder: Path, name: str) -> tuple[Path, list[str], subprocess.Popen]:
    """Start `python -m lit_gan` on an evil checkpoint in `folder` for the case `name`; returns the checkpoint, the
    files in `folder` and the process. For `fit_last`, the evil checkpoint is the newest last.ckpt of a run (an older
    run has another)."""
    folder.mkdir()
    if name == "fit_last":
        runs = folder / "runs" / "lit_gan"
        older = fake_run(runs, "older")
        torch.save({"global_step": 1, "lit_gan_run": {"logger_version": "older"}}, older)
        os.utime(older, (older.stat().st_mtime - 60,) * 2)
        ckpt = evil_checkpoint(fake_run(runs, "evilrun"), folder / "MARKER")
    else:
        ckpt = evil_checkpoint(folder / "evil.ckpt", folder / "MARKER")
    args, _ = CLI_CASES[name]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "WANDB_DIR": str(folder / "wandb_dir")}
    command = [sys.executable, "-m", "lit_gan", *args(ckpt)]
    before = files(folder)
    return ckpt, before, subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def cli_refusals(tmp_path_factory) -> dict[str, tuple[Path, Path, list[str], int, str]]:
    """Each CLI case's (folder, checkpoint, files before, exit code, stderr). The processes run at once: each spends
    seconds importing."""
    root = tmp_path_factory.mktemp("cli")
    started = {name: (root / name, *cli_case(root / name, name)) for name in CLI_CASES}
    results = {}
    for name, (folder, ckpt, before, proc) in started.items():
        _, stderr = proc.communicate(timeout=120)
        results[name] = (folder, ckpt, before, proc.returncode, stderr.decode())
    return results


@pytest.mark.slow  # a subprocess per subcommand
@pytest.mark.parametrize("case", list(CLI_CASES))
def test_the_cli_refuses_a_checkpoint_that_would_run_code_in_one_line(case, cli_refusals):
    folder, ckpt, before, code, stderr = cli_refusals[case]
    assert code == CLI_CASES[case][1], stderr[-3000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"error: checkpoint {ckpt} {REFUSED}, so it is not a lit_gan checkpoint (lit_gan reads checkpoints "
        "weights-only: tensors and plain values); load only checkpoints you trust"
    )
    assert files(folder) == before  # no marker, no run folder, W&B files or exported file: nothing ran


# -- refused: from Python ------------------------------------------------------------------------------------------


@pytest.fixture
def evil(tmp_path) -> Path:
    return evil_checkpoint(tmp_path / "evil.ckpt", tmp_path / "MARKER")


def test_the_evil_checkpoint_runs_its_command_when_unpickled(evil, tmp_path):
    """What the tests here guard against (so that they cannot pass for a checkpoint that runs nothing)."""
    torch.load(evil, weights_only=False)
    assert (tmp_path / "MARKER").exists()


def refused(ckpt: Path) -> str:
    """The start of the message refusing `ckpt`, as a regular expression."""
    return "^" + re.escape(f"checkpoint {ckpt} {REFUSED}")


def test_stylize_refuses_it_before_reading_the_inputs(evil, tmp_path):
    with pytest.raises(CheckpointRefused, match=refused(evil)):
        stylize(evil, tmp_path / "no_photos", tmp_path / "out")  # missing inputs would fail next
    assert not (tmp_path / "MARKER").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("subcommand", ["validate", "test"])
def test_validate_and_test_refuse_it_before_building_anything(subcommand, evil, tmp_path):
    with pytest.raises(CheckpointRefused, match=refused(evil)):
        main([subcommand, *tiny_args(f"--ckpt_path={evil}")])
    assert not (tmp_path / "MARKER").exists() and not (tmp_path / "runs").exists()


def test_a_trainer_driven_from_python_reads_checkpoints_weights_only_too(evil, tmp_path):
    """Past the CLI's check, the trainer's checkpoint reader (lit_gan's `AtomicCheckpointIO`) refuses it."""
    with pytest.raises(CheckpointRefused, match=refused(evil)):
        fit(tiny_args("--trainer.logger=false"), ckpt_path=evil)
    assert not (tmp_path / "MARKER").exists()


@pytest.mark.parametrize("weights_only", [False, None, True])
def test_whatever_weights_only_a_python_caller_passes_the_file_is_refused(weights_only, evil, tmp_path):
    """`trainer.fit(..., weights_only=False)` on the CLI's trainer and on a plain `pl.Trainer` (Lightning's default
    checkpoint reader honours it), and `load_from_checkpoint(..., weights_only=False)`: refused, nothing run."""
    cli = main(tiny_args("--trainer.logger=false"), run=False)
    with pytest.raises(CheckpointRefused, match=refused(evil)):
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=evil, weights_only=weights_only)
    plain = pl.Trainer(accelerator="cpu", logger=False, max_steps=1, enable_progress_bar=False)
    with pytest.raises(CheckpointRefused, match=refused(evil)):
        plain.fit(cli.model, datamodule=cli.datamodule, ckpt_path=evil, weights_only=weights_only)
    with pytest.raises(CheckpointRefused, match=refused(evil)):
        plain.validate(cli.model, datamodule=cli.datamodule, ckpt_path=evil, weights_only=weights_only)
    with pytest.raises(CheckpointRefused, match=refused(evil)):
        type(cli.model).load_from_checkpoint(evil, weights_only=weights_only)
    assert not (tmp_path / "MARKER").exists()


def test_weights_only_false_is_refused():
    with pytest.raises(CheckpointError, match="--weights_only false: lit_gan reads every checkpoint weights-only"):
        main(["fit", *tiny_args("--weights_only=false")])


# -- every model's real checkpoints --------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(TINY_MODELS))
def test_real_checkpoints_load(model, trained_checkpoint):
    ckpt = trained_checkpoint(model)
    module, data_hparams = load_checkpoint(ckpt)
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert saved["hyper_parameters"]["_class_path"].endswith(f".{type(module).__name__}") and not module.training
    state = module.state_dict()
    for name, value in saved["state_dict"].items():
        torch.testing.assert_close(state[name], value, rtol=0, atol=0, msg=name)
    assert data_hparams["crop_size"] == 32


@pytest.mark.parametrize("model", list(TINY_MODELS))
def test_real_checkpoints_resume(model, tmp_path, trained_checkpoint, caplog):
    caplog.set_level(logging.INFO)
    ckpt = shutil.copy(trained_checkpoint(model), tmp_path / "last.ckpt")  # the shared one stays
    cli = main(
        ["fit", *tiny_args("--trainer.max_steps=3", "--metrics.enabled=false", f"--ckpt_path={ckpt}", model=model)]
    )
    assert f"from {ckpt} at step 2" in caplog.text and cli.trainer.global_step == 3


@pytest.mark.parametrize("model", list(TINY_MODELS))
def test_real_checkpoints_export(model, tmp_path, trained_checkpoint, capsys):
    ckpt = trained_checkpoint(model)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(ckpt), "--formats", "torchscript", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 0, capsys.readouterr().err
    assert list((tmp_path / "out").glob("*.pt"))


def test_a_truncated_checkpoint_is_named_as_such(tmp_path):
    path, marker = evil_checkpoint(tmp_path / "whole.ckpt", tmp_path / "MARKER"), tmp_path / "MARKER"
    half = tmp_path / "half.ckpt"
    half.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy cut short
    with pytest.raises(CheckpointError, match=r"half.ckpt is not a PyTorch checkpoint: .*not one \(a truncated copy"):
        load_checkpoint(half)
    assert not marker.exists()


def test_the_latest_checkpoint_holds_the_best_checkpoint_of_its_own_epoch(tmp_path):
    # Both write at an epoch's end; the latest one written first held the best as it was before that epoch's
    # evaluation, and a run resumed from it forgot that epoch's best. Monitoring `epoch` (mode max), every epoch is
    # a new best.
    args = [
        "--trainer.max_epochs=2",
        "--metrics.enabled=false",
        "--best_checkpoint.monitor=epoch",
        "--best_checkpoint.mode=max",
        f"--trainer.logger.save_dir={tmp_path}",
    ]
    cli = fit(tiny_args(*args))
    best = next(c for c in cli.trainer.callbacks if type(c).__name__ == "BestCheckpoint")
    assert Path(best.best_model_path).name == "best-step0000012.ckpt"  # epoch 1's (6 steps an epoch)
    (last,) = tmp_path.glob("*/*/checkpoints/last.ckpt")
    states = torch.load(last, weights_only=True)["callbacks"]
    (saved,) = [state for key, state in states.items() if key.startswith("BestCheckpoint")]
    assert saved["best_model_path"] == best.best_model_path
