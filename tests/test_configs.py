"""Every shipped config, found in the configs folder: it prints, and it trains one step (fast_dev_run).

A new config is covered without editing this file. Configs that name a downloadable dataset or need `--data.root`
get a tiny generated folder in the same layout instead; image sizes shrink to the smallest the config's networks
accept. The networks themselves are the configs' own.
"""

import re
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from pytorch_lightning.cli import LightningArgumentParser

from lit_gan.cli import main
from lit_gan.contracts import FixedSizeNetwork
from lit_gan.models import GANModule
from lit_gan.runs import import_class
from tests.helpers import QUIET_TRAINER, make_aligned, make_domains, make_single, make_single_image, make_unaligned

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
MAKERS = {
    "unaligned": make_unaligned,
    "aligned": make_aligned,
    "single": make_single,
    "single_image": lambda root, n, size: make_single_image(root, size),  # one image per domain, whatever `n`
    "domains": make_domains,  # cat, dog, wild: AFHQ's
}


def test_configs_are_found():
    assert len(CONFIGS) >= 6 and {"quickstart", "quickstart_pix2pix", "quickstart_dcgan"} <= {c.stem for c in CONFIGS}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_prints_resolved_config(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"--config={config}", "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"].startswith("lit_gan.models.")
    assert printed["data"]["mode"] in MAKERS


def small_data(config: Path, tmp_path: Path) -> list[str]:
    """Data arguments that keep the config's layout but use tiny data."""
    data = yaml.safe_load(config.read_text())["data"]
    if isinstance(data, str):  # a preset file, e.g. data/horse2zebra.yaml, relative to the config
        data = yaml.safe_load((config.parent / data).read_text())
    mode = data.get("mode", "unaligned")
    args = ["--data.num_workers=0", "--data.batch_size=2"]
    if data.get("name") == "synthetic":
        return [*args, "--data.synthetic.train_size=2", "--data.synthetic.test_size=2"]
    root = MAKERS[mode](tmp_path / "data", n=2, size=40)
    return [*args, "--data.name=null", f"--data.root={root}"]


def size_args(config: Path, data: list[str]) -> list[str]:
    """The smallest image size the config's networks accept (at least 32 px); a model whose own `image_size` argument
    sets its networks' depth (StarGAN v2) is built at 32 px, with the config's other settings."""
    model = main([f"--config={config}", *data], run=False).model
    if "image_size" in model.hparams and "channels" in model.hparams:
        return ["--model.image_size=32", "--data.load_size=32", "--data.crop_size=32"]
    size = model.image_size if isinstance(model, FixedSizeNetwork) else max(32, model.size_multiple)
    return [f"--data.load_size={size}", f"--data.crop_size={size}"]


@pytest.mark.slow  # a fast_dev_run of every config
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_fast_dev_run(config, tmp_path):
    data = small_data(config, tmp_path)
    args = [f"--config={config}", *data, *size_args(config, data), *QUIET_TRAINER, "--trainer.fast_dev_run=1"]
    cli = main(["fit", *args])
    assert cli.trainer.state.finished and cli.trainer.global_step == 1


PRESETS = sorted((Path(__file__).parents[1] / "configs" / "data").glob("*.yaml"))
MODEL_PRESETS = sorted((Path(__file__).parents[1] / "configs" / "models").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_every_data_preset_composes_with_its_model_config(preset, capsys):
    """`--config configs/<model>.yaml --data configs/data/<dataset>.yaml`, as the README composes them: the preset's
    keys win, the model config's other data keys stay."""
    values = yaml.safe_load(preset.read_text())
    model = "pix2pix" if values.get("mode") == "aligned" else "cyclegan"
    config = preset.parents[1] / f"{model}.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"--config={config}", f"--data={preset}", "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert {key: printed["data"][key] for key in values} == values
    assert printed["model"]["class_path"] == f"lit_gan.models.{'Pix2Pix' if model == 'pix2pix' else 'CycleGAN'}"


@pytest.mark.parametrize("preset", MODEL_PRESETS, ids=lambda p: p.stem)
def test_every_model_preset_is_used_by_its_config(preset):
    assert f"model: models/{preset.name}" in (preset.parents[1] / preset.name).read_text()


STATED_CHANGES = re.compile(r"^# changes from the model's defaults: (.+)$", re.M)


def flat(values: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out |= flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("preset", MODEL_PRESETS, ids=lambda p: p.stem)
def test_every_model_preset_is_the_defaults_plus_its_stated_changes(preset):
    """A model preset lists every hyperparameter, for reading; what it changes from the model's own defaults is
    stated in its header (`# changes from the model's defaults: a, b` or `none`), and nothing else differs."""
    found = STATED_CHANGES.search(preset.read_text())
    assert found, f"{preset}: state what it changes: # changes from the model's defaults: <keys, or none>"
    listed = found[1].split("(")[0].strip()  # a remark in parentheses may follow
    stated = set() if listed == "none" else {key.strip() for key in listed.split(",")}
    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_lightning_class_args(GANModule, "model", subclass_mode=True)
    given = parser.parse_args([f"--model={preset}"]).model.as_dict()
    class_path = given["class_path"]
    defaults = parser.parse_args([f"--model={class_path}"]).model.as_dict()["init_args"]
    given = given["init_args"]
    for values in (given, defaults):  # null: the model's own `default_lr_policy`
        policy = values.get("lr_policy")
        values["lr_policy"] = asdict(import_class(class_path).default_lr_policy) if policy is None else policy
        values["lr_policy"] = values["lr_policy"].get("init_args", values["lr_policy"])
    given, defaults = flat(given), flat(defaults)
    changed = {key for key in given.keys() | defaults.keys() if given.get(key) != defaults.get(key)}
    unstated = {key for key in changed if not any(key == s or key.startswith(f"{s}.") for s in stated)}
    assert not unstated, f"{preset} changes {sorted(unstated)} without saying so in its header"
    unchanged = {s for s in stated if not any(key == s or key.startswith(f"{s}.") for key in changed)}
    assert not unchanged, f"{preset} says it changes {sorted(unchanged)}, which equal the model's defaults"
