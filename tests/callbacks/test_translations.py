"""The translations callback, for every model of the catalogue: its rows (columns follow from the model's directions
and the data), the files in the run folder, and that it leaves training alone. What reaches W&B is read back from
offline runs in tests/test_dashboards.py."""

import json

import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import to_tensor

from lit_gan.callbacks import TranslationTableCallback
from lit_gan.contracts import Direction, PairedHeldOutData
from lit_gan.metrics import similarity
from lit_gan.runs import run_dir
from tests.helpers import TINY_MODELS, fit, tiny_args


def expected_columns(model, datamodule, name: str) -> list[str]:
    """The columns of direction `name`'s rows, from what the model and the data are."""
    directions = model.directions()
    source, target = directions[name]
    if source is None:
        return ["image", "output"]
    paired = isinstance(datamodule, PairedHeldOutData) and datamodule.held_out_pairs
    reverse = Direction(target, source) in directions.values()
    return [
        "image",
        "input",
        *["target"] * paired,
        "translation",
        "ssim",
        *["psnr", "L1"] * paired,
        *["reconstruction", "reconstruction_L1"] * reverse,
    ]


@pytest.mark.parametrize("model", list(TINY_MODELS))
def test_each_direction_gets_a_row_per_image_with_the_columns_the_model_and_data_allow(model):
    cli = fit(tiny_args("--trainer.max_steps=1", "--metrics.enabled=false", "--translations.num_images=2", model=model))
    folder = run_dir(cli.trainer) / "translations" / "step_0000001"  # stopped between validations: at the end
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(f"{d}.json" for d in cli.model.directions())
    for name in cli.model.directions():
        saved = json.loads((folder / f"{name}.json").read_text())
        assert saved["step"] == 1 and saved["direction"] == name
        assert saved["columns"] == expected_columns(cli.model, cli.datamodule, name)
        assert [row["image"] for row in saved["rows"]] == [0, 1]
        for row in saved["rows"]:
            for column in saved["images"]:
                assert (folder / row[column]).is_file(), (name, column)
            assert -1 <= row.get("ssim", 0) <= 1  # an untrained generator's output may be anticorrelated
            assert all(0 <= row[k] <= 2 for k in ("L1", "reconstruction_L1") if k in row)  # images in [-1, 1]


def test_noise_samples_are_the_same_at_every_evaluation():
    cli = fit(tiny_args("--trainer.max_steps=1", "--metrics.enabled=false", model="dcgan"))
    callback = TranslationTableCallback(num_images=3)
    first = callback.rows(cli.trainer, cli.model.eval(), "samples")
    again = callback.rows(cli.trainer, cli.model, "samples")
    assert len(first) == 3 and all(torch.equal(a["output"], b["output"]) for a, b in zip(first, again))


def test_logging_leaves_the_model_in_training_mode_and_the_random_state_alone():
    cli = fit(tiny_args("--trainer.max_steps=1", "--metrics.enabled=false", "--translations.enabled=false"))
    assert not (run_dir(cli.trainer) / "translations").exists()  # disabled: nothing
    cli.model.train()
    torch.manual_seed(5)
    state = torch.get_rng_state()
    TranslationTableCallback(num_images=1).log_translations(cli.trainer, cli.model)
    assert cli.model.training and torch.equal(torch.get_rng_state(), state)
    assert (run_dir(cli.trainer) / "translations" / "step_0000001" / "AtoB.json").is_file()


def test_bad_settings_fail_naming_the_key():
    with pytest.raises(ValueError, match="translations: need num_images >= 1"):
        TranslationTableCallback(num_images=0)


@pytest.mark.parametrize("subcommand", ["validate", "test"])
def test_validate_and_test_log_them_too(subcommand, tmp_path):
    from lit_gan.cli import main

    main([subcommand, *tiny_args("--metrics.enabled=false", "--translations.num_images=1")])
    (run,) = (tmp_path / "runs" / "lit_gan").iterdir()
    assert sorted(p.name for p in (run / "translations" / "step_0000000").glob("*.json")) == ["AtoB.json", "BtoA.json"]


class MeanAbsoluteLpips(torch.nn.Module):
    """Stands in for torchmetrics' LPIPS network (no ImageNet weights offline): (x, y) in [0, 1] -> (B, 1, 1, 1)."""

    def forward(self, x, y, normalize=False):
        return (x - y).abs().mean((1, 2, 3), keepdim=True)


def test_with_the_metrics_lpips_each_image_has_its_lpips_too(monkeypatch):
    monkeypatch.setattr(similarity, "load_lpips", lambda net: MeanAbsoluteLpips())
    cli = fit(tiny_args("--trainer.max_steps=1", "--metrics.lpips=true", "--translations.num_images=1", model="cut"))
    saved = json.loads((run_dir(cli.trainer) / "translations" / "step_0000001" / "AtoB.json").read_text())
    assert saved["columns"] == ["image", "input", "translation", "ssim", "lpips"]
    (row,) = saved["rows"]
    folder = run_dir(cli.trainer) / "translations" / "step_0000001"
    x, fake = (to_tensor(Image.open(folder / row[c])) for c in ("input", "translation"))  # as saved: in [0, 1]
    assert row["lpips"] == pytest.approx(float((x - fake).abs().mean()), abs=2 / 255)  # PNG rounding
