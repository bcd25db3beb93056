"""Every sweep file in sweeps/ is a valid W&B sweep whose parameter keys and values lit_gan's CLI accepts."""

from pathlib import Path

import pytest
import yaml

from lit_gan.lightning_cli import rejected_arguments
from lit_gan.sweep.config import SweepConfigError, cli_arguments, load_sweep, parameter_samples

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))


def test_the_sweeps_folder_has_the_documented_searches():
    assert {p.stem for p in SWEEPS} >= {"quickstart_grid", "cyclegan_bayes", "pix2pix_bayes", "dcgan_random"}


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_file_is_schema_valid_and_accepted_by_the_cli(path):
    config = load_sweep(path, root=ROOT, check_arguments=rejected_arguments)
    assert config["metric"] == {"name": "val/fid", "goal": "minimize"}
    assert cli_arguments(config)[:2] == ["fit", "--config"]


def write(tmp_path, **changes) -> Path:
    config = yaml.safe_load((ROOT / "sweeps" / "quickstart_grid.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_unknown_parameter_key_fails_naming_it(tmp_path):
    path = write(tmp_path, parameters={"model.lrr": {"values": [1e-4]}})
    with pytest.raises(SweepConfigError, match=r"sweep.yaml: lit_gan's CLI rejects .*Option 'lrr' is not accepted"):
        load_sweep(path, root=ROOT, check_arguments=rejected_arguments)


def test_bad_value_among_the_values_fails_naming_the_key(tmp_path):
    path = write(tmp_path, parameters={"model.gan_mode": {"values": ["lsgan", "nope"]}})
    with pytest.raises(SweepConfigError, match=r'Parser key "gan_mode".*Got value: nope'):
        load_sweep(path, root=ROOT, check_arguments=rejected_arguments)


def test_bad_distribution_fails_with_the_schema_violation(tmp_path):
    path = write(tmp_path, parameters={"model.lr": {"distribution": "nope", "min": 1, "max": 2}})
    with pytest.raises(
        SweepConfigError, match="not a valid W&B sweep: .*invalid hyperparameter configuration: model.lr"
    ):
        load_sweep(path, root=ROOT, check_arguments=rejected_arguments)


def test_missing_metric_fails(tmp_path):
    with pytest.raises(SweepConfigError, match="needs a metric to optimise"):
        load_sweep(write(tmp_path, metric=None), root=ROOT, check_arguments=rejected_arguments)


def test_command_must_pass_the_parameters_to_lit_gan(tmp_path):
    path = write(tmp_path, command=["${env}", "python", "train.py"])
    with pytest.raises(
        SweepConfigError, match=r"command must run `python -m lit_gan fit --config <config> \$\{args\}`"
    ):
        load_sweep(path, root=ROOT, check_arguments=rejected_arguments)
    command = ["${env}", "python", "-m", "lit_gan", "fit", "--config", "configs/nope.yaml", "${args}"]
    with pytest.raises(SweepConfigError, match="the command's --config configs/nope.yaml does not exist"):
        load_sweep(write(tmp_path, command=command), root=ROOT, check_arguments=rejected_arguments)


def test_parameter_samples_cover_every_value_and_range_end():
    rows = parameter_samples(
        {"a": {"values": [1, 2, 3]}, "b": {"min": 0.1, "max": 0.5, "distribution": "uniform"}, "c": {"value": 7}}
    )
    assert [r["a"] for r in rows] == [1, 2, 3]
    assert {r["b"] for r in rows} == {0.1, 0.5} and {r["c"] for r in rows} == {7}
