"""The grouped data options (`lit_gan.data.options`): typed, checked, plain values in checkpoints, and the flat keys of
earlier versions refused with their new names (command line, config files, sweeps) or upgraded (checkpoints)."""

import pytest
import torch
import yaml

from lit_gan.data import PredictOptions, SingleImageOptions, StyleDataModule, SyntheticOptions
from lit_gan.data.options import RENAMED_KEYS, upgrade_data_hparams
from lit_gan.lightning_cli import DataConfigError, lightning_cli, rejected_arguments

SMALL = dict(name="synthetic", load_size=32, crop_size=32, num_workers=0)


def test_dicts_and_dataclasses_give_the_same_module_and_checkpoints_hold_plain_values(tmp_path):
    typed = StyleDataModule(**SMALL, synthetic=SyntheticOptions(train_size=3, test_size=2))
    plain = StyleDataModule(**SMALL, synthetic={"train_size": 3, "test_size": 2})
    assert typed.synthetic == plain.synthetic == SyntheticOptions(3, 2)
    typed.setup("fit")
    assert len(typed.train_set) == 3 and len(typed.test_set) == 2
    assert typed.hparams["synthetic"] == {"train_size": 3, "test_size": 2}
    assert typed.hparams["predict"] == {"path": None, "domain": "A"}
    assert typed.hparams["single_image"] == {"scale": (1 / 3, 1.0), "epoch_size": 1000, "held_out": 16}
    torch.save({"datamodule_hyper_parameters": dict(typed.hparams)}, tmp_path / "c.ckpt")
    assert (
        torch.load(tmp_path / "c.ckpt", weights_only=True)["datamodule_hyper_parameters"]["synthetic"]["test_size"] == 2
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(synthetic={"train_size": 0}), r"data.synthetic.train_size must be >= 1, got 0"),
        (dict(synthetic={"train_sise": 5}), r"data.synthetic: unknown key\(s\) train_sise; its keys are train_size"),
        (dict(single_image={"held_out": 0}), r"data.single_image.held_out must be >= 1"),
        (dict(predict={"domain": "C"}), r"data.predict.domain: 'C' is not one of 'A', 'B'"),
        (dict(predict=["x"]), r"data.predict must be a PredictOptions or a dict of its fields, got list"),
    ],
)
def test_bad_options_name_their_key(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        StyleDataModule(**SMALL, **kwargs)


def test_checkpoint_hyperparameters_with_flat_keys_are_upgraded():
    old = {"name": "synthetic", "synthetic_train_size": 80, "synthetic_test_size": 16, "predict_domain": "B"}
    new = upgrade_data_hparams(old)
    assert new == {"name": "synthetic", "synthetic": {"train_size": 80, "test_size": 16}, "predict": {"domain": "B"}}
    assert upgrade_data_hparams(new) == new
    assert StyleDataModule(**SMALL, synthetic=new["synthetic"]).synthetic == SyntheticOptions(80, 16)
    assert set(RENAMED_KEYS.values()) == {
        f"{group}.{key}"
        for group, cls in (("synthetic", SyntheticOptions), ("single_image", SingleImageOptions))
        + (("predict", PredictOptions),)
        for key in cls.__dataclass_fields__
    }


def test_flat_keys_in_a_config_or_on_the_command_line_stop_with_the_new_names(tmp_path):
    config = tmp_path / "old.yaml"
    config.write_text(yaml.safe_dump({"data": {"name": "synthetic", "synthetic_train_size": 4}}))
    with pytest.raises(DataConfigError, match=rf"{config}: data.synthetic_train_size is now data.synthetic.train_size"):
        lightning_cli(["--config", str(config)], run=False)
    with pytest.raises(DataConfigError, match="the command line: data.predict_path is now data.predict.path"):
        lightning_cli(["--data.name=synthetic", "--data.predict_path=photos"], run=False)
    reason = rejected_arguments(["fit", "--data.name=synthetic", "--data.single_image_held_out=4"])
    assert reason is not None and "data.single_image_held_out is now data.single_image.held_out" in reason
    assert rejected_arguments(["fit", "--data.name=synthetic", "--data.single_image.held_out=4"]) is None


def test_cli_sets_grouped_options():
    cli = lightning_cli(
        [
            "--data.name=synthetic",
            "--data.synthetic.train_size=5",
            "--data.single_image.scale=[0.5, 1.0]",
            "--model=DCGAN",
            "--trainer.logger=false",
        ],
        run=False,
    )
    assert cli.datamodule.synthetic == SyntheticOptions(train_size=5)
    assert cli.datamodule.single_image.scale == (0.5, 1.0)
