import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lit_gan.cli import main
from tests.helpers import make_unaligned, tiny_args

ROOT = Path(__file__).resolve().parents[1]


def test_fit_fast_dev_run(tmp_path):
    cli = main(["fit", *tiny_args("--trainer.fast_dev_run=2")])
    assert cli.trainer.global_step == 2
    # fast_dev_run turns loggers and checkpoints off; sample grids still render, into default_root_dir.
    assert {p.name for p in (tmp_path / "samples").glob("*.png")} == {"step_0000002_AtoB.png", "step_0000002_BtoA.png"}


def test_fit_leaves_run_folder_with_checkpoint_config_samples_and_wandb_run(tmp_path):
    main(["fit", *tiny_args("--trainer.max_steps=3", "--samples.every_n_steps=2", "--data.synthetic.train_size=3")])
    (run,) = (tmp_path / "runs" / "lit_gan").iterdir()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["max_steps"] == 3
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "step_0000002_AtoB.png",
        "step_0000002_BtoA.png",
        "step_0000003_AtoB.png",
        "step_0000003_BtoA.png",
    ]
    (wandb_run,) = (tmp_path / "runs" / "wandb").glob("offline-run-*")
    assert wandb_run.name.endswith(run.name)  # the run folder is named by the W&B run id

    # What `wandb leet` shows of the offline run: the resolved config, the losses and the sample grids.
    wandb_cli = shutil.which("wandb", path=str(Path(sys.executable).parent)) or shutil.which("wandb")
    proc = subprocess.run(
        [wandb_cli, "leet", "inspect", "--summary", "--json", str(wandb_run)], capture_output=True, text=True
    )
    assert proc.returncode == 0, (proc.stderr, sorted(p.name for p in wandb_run.iterdir()))
    summary = json.loads(proc.stdout)
    assert summary["state"] == "finished"
    assert summary["config"]["model"]["init_args"]["lambda_A"] == 10.0
    assert summary["config"]["trainer"]["max_steps"] == 3
    for key in ("train/G_A", "train/D_B", "train/cycle_A", "train/idt_B", "train/lr_G"):
        assert isinstance(summary["summary"][key], float), key
    assert summary["summary"]["val/cycle_A"].keys() == {"min", "best_step", "last"}  # held-out losses: lowest best
    assert summary["summary"]["samples/AtoB"]["_type"] == "images/separated"
    # Each evaluation metric's best and final value, and the best checkpoint's score, are in the run summary.
    assert summary["summary"]["val/fid"]["min"] == pytest.approx(summary["summary"]["best/val/fid"])
    assert summary["summary"]["val/fid"]["last"] == pytest.approx(summary["summary"]["best/val/fid"])  # one FID
    assert summary["summary"]["best/checkpoint"].endswith("best-step0000003.ckpt")
    for key in ("val/ssim", "val/ssim_AtoB", "val/ssim_BtoA"):  # content preservation, next to FID
        assert -1 <= summary["summary"][key]["max"] <= 1, key


def test_print_config_resolves_everything(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *tiny_args(), "--print_config"])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["class_path"] == "lit_gan.models.CycleGAN"
    assert config["model"]["init_args"]["lambda_A"] == 10.0
    assert config["trainer"]["logger"]["class_path"] == "lit_gan.loggers.WandbLogger"


def test_help_lists_model_arguments():
    out = subprocess.run(
        [sys.executable, "-m", "lit_gan", "fit", "--model.help", "lit_gan.models.CycleGAN"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--model.lambda_identity" in out and "identity loss weight" in out


def test_unknown_config_key_fails_naming_it(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"model": {"class_path": "lit_gan.models.CycleGAN", "init_args": {"lamda_A": 1}}}))
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *tiny_args(), f"--config={config}"])
    assert exit_info.value.code != 0
    assert "lamda_A" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing started


def test_bad_value_fails_naming_the_key(capsys):
    with pytest.raises(SystemExit):
        main(["fit", *tiny_args("--model.gan_mode=wgan")])
    assert "gan_mode" in capsys.readouterr().err


def test_missing_dataset_folder_fails_before_training(tmp_path):
    root = make_unaligned(tmp_path / "ds", n=2)
    for f in (root / "trainB").iterdir():
        f.unlink()
    data = [f"--data.root={root}", "--data.load_size=36", "--data.crop_size=32", "--data.num_workers=0"]
    with pytest.raises(FileNotFoundError, match="trainB"):
        main(["fit", *tiny_args("--trainer.max_steps=2", data=data)])
    assert not (tmp_path / "runs").exists()  # no run was started


def test_validate_and_test_subcommands_report_cycle_losses(tmp_path):
    main(["fit", *tiny_args("--trainer.max_steps=2")])
    ckpt = next((tmp_path / "runs").rglob("last.ckpt"))
    for stage in ("validate", "test"):
        cli = main([stage, *tiny_args(f"--ckpt_path={ckpt}")])
        prefix = "val" if stage == "validate" else "test"
        assert f"{prefix}/cycle_A" in cli.trainer.callback_metrics
        assert (
            f"{prefix}/fid" in cli.trainer.callback_metrics
            and f"{prefix}/kid_mean_BtoA" in cli.trainer.callback_metrics
        )


def command_line_error(args: list[str], cwd: Path) -> str:
    """The last stderr line of `python -m lit_gan ARGS`, which must fail with one `error:` line, no traceback."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "lit_gan", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr
    return last


@pytest.mark.slow  # a subprocess per user error
def test_user_errors_end_in_one_error_line_without_traceback(tmp_path):
    root = make_unaligned(tmp_path / "ds", n=2)
    (root / "trainA" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    data = [f"--data.root={root}", "--data.load_size=36", "--data.crop_size=32", "--data.num_workers=0"]
    strict = command_line_error(["fit", *tiny_args(data=[*data, "--data.strict=true"])], tmp_path)
    assert "data.strict is true" in strict and "corrupt.jpg" in strict
    assert "gan_mode" in command_line_error(["fit", *tiny_args("--model.gan_mode=wgan")], tmp_path)
    missing = command_line_error(["predict", *tiny_args(f"--ckpt_path={tmp_path / 'nope.ckpt'}")], tmp_path)
    assert "nope.ckpt" in missing
    (tmp_path / "sweep.yaml").write_text("method: grid\nparameters: {}\n")
    assert "sweep.yaml" in command_line_error(["sweep", "sweep.yaml"], tmp_path)
