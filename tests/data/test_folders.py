"""Two folders of images anywhere on disk (`data.folder_A`, `data.folder_B`) instead of a dataset folder."""

import warnings
from pathlib import Path

import pytest
import yaml

from lit_gan.data import StyleDataModule
from lit_gan.data.layouts import HELD_OUT_FALLBACK
from tests.helpers import fit, make_unaligned, tiny_args, write_images

SIZES = dict(load_size=36, crop_size=32, num_workers=0)


def _folders(tmp_path: Path, n_a: int = 3, n_b: int = 4) -> tuple[Path, Path]:
    """`photos/` with `n_a` images (some nested) and `style/` with `n_b` images, as a user keeps them."""
    photos, style = tmp_path / "my" / "photos", tmp_path / "elsewhere" / "style"
    write_images(photos, n_a - 1, seed=1)
    write_images(photos / "2023" / "summer", 1, seed=2, ext="jpg")
    write_images(style, n_b, seed=3)
    return photos, style


def test_tiny_cyclegan_fits_on_two_folders(tmp_path):
    photos, style = _folders(tmp_path)
    data = [
        "--data.folder_A",
        str(photos),
        "--data.folder_B",
        str(style),
        *(f"--data.{k}={v}" for k, v in SIZES.items()),
    ]
    cli = fit(tiny_args("--trainer.max_steps=2", data=data))
    assert cli.trainer.state.finished and cli.trainer.global_step == 2
    assert cli.datamodule.hparams.folder_A == str(photos) and cli.datamodule.hparams.root is None
    predictions = cli.trainer.predict(cli.model, datamodule=cli.datamodule)  # the held-out images: the first ones
    assert len(predictions) == 4  # batches of one, as many as the larger domain (3 A, 4 B images) holds


def test_a_config_file_sets_the_folders_relative_to_the_working_directory(tmp_path):
    from lit_gan.cli import main

    _folders(tmp_path)  # the test runs in tmp_path (conftest)
    config = tmp_path / "configs" / "mine.yaml"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump({"data": {"folder_A": "my/photos", "folder_B": "elsewhere/style", **SIZES}}))
    cli = main([*tiny_args(data=[]), f"--config={config}"], run=False)
    assert cli.datamodule.hparams.folder_A == "my/photos"
    assert cli.datamodule.sample_batch(2)["B"].shape == (2, 3, 32, 32)


def test_every_image_under_each_folder_trains_and_the_first_ones_are_held_out(tmp_path):
    photos, style = _folders(tmp_path, n_a=3, n_b=HELD_OUT_FALLBACK + 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no testA/testB folders" warning: two folders never have them
        dm = StyleDataModule(folder_A=str(photos), folder_B=str(style), **SIZES)
    dm.setup("fit")
    splits = dm._usable_splits()
    assert [len(source) for source in splits.train] == [3, HELD_OUT_FALLBACK + 2]
    assert photos / "2023" / "summer" / "img_000.jpg" in splits.train[0].paths  # nested images are found
    assert [len(source) for source in splits.held_out_sources()] == [3, HELD_OUT_FALLBACK]
    assert splits.held_out_sources()[1].paths == splits.train[1].paths[:HELD_OUT_FALLBACK]
    images, fingerprint = dm.held_out_images("B")
    assert len(images) == HELD_OUT_FALLBACK and dm.held_out_images("B")[1] == fingerprint
    assert len(dm.check().problems) == 0


def test_mode_single_image_takes_one_image_per_folder(tmp_path):
    photo, style = write_images(tmp_path / "photo", 1, seed=1), write_images(tmp_path / "style" / "sub", 1, seed=2)
    dm = StyleDataModule(
        folder_A=str(tmp_path / "photo"), folder_B=str(tmp_path / "style"), mode="single_image", crop_size=32,
        num_workers=0, single_image={"epoch_size": 4, "held_out": 2}, batch_size=2,
    )  # fmt: skip
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["A"].shape == batch["B"].shape == (2, 3, 32, 32)
    assert batch["A_path"][0] == str(photo[0]) and batch["B_path"][0] == str(style[0])  # nested: style/sub
    assert len(dm.held_out_images("A")[0]) == 2


def test_mode_single_image_refuses_a_folder_of_many_images(tmp_path):
    photos, style = _folders(tmp_path)
    with pytest.raises(ValueError, match=r"exactly one image in data\.folder_A \(.*photos\), found 3"):
        StyleDataModule(folder_A=str(photos), folder_B=str(style), mode="single_image", crop_size=32)


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("missing_A", FileNotFoundError, r"image folder .*nowhere does not exist \(from data\.folder_A\); create it"),
        ("empty_B", FileNotFoundError, r"image folder .*empty holds no image file \(from data\.folder_B\)"),
        ("only_A", ValueError, r"data\.folder_A is set but data\.folder_B is not: .* set data\.folder_B"),
        ("only_B", ValueError, r"data\.folder_B is set but data\.folder_A is not"),
        ("root_too", ValueError, r"exactly one of data\.root .*; got data\.root and data\.folder_A/data\.folder_B"),
        ("name_too", ValueError, r"exactly one of data\.root .*; got data\.name and data\.folder_A/data\.folder_B"),
        ("aligned", ValueError, r"data\.folder_A/data\.folder_B cannot feed data\.mode aligned"),
    ],
)
def test_bad_folders_fail_early_naming_the_key(tmp_path, case, error, message):
    photos, style = _folders(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    kwargs = {
        "missing_A": dict(folder_A=str(tmp_path / "nowhere"), folder_B=str(style)),
        "empty_B": dict(folder_A=str(photos), folder_B=str(tmp_path / "empty")),
        "only_A": dict(folder_A=str(photos)),
        "only_B": dict(folder_B=str(style)),
        "root_too": dict(root=str(make_unaligned(tmp_path / "ds", n=2)), folder_A=str(photos), folder_B=str(style)),
        "name_too": dict(name="synthetic", folder_A=str(photos), folder_B=str(style)),
        "aligned": dict(folder_A=str(photos), folder_B=str(style), mode="aligned"),
    }[case]
    with pytest.raises(error, match=message):
        StyleDataModule(**kwargs, **SIZES)


def test_the_cli_names_the_missing_folder(tmp_path):
    from lit_gan.cli import main

    _, style = _folders(tmp_path)
    data = [
        "--data.folder_A",
        "not/there",
        "--data.folder_B",
        str(style),
        *(f"--data.{k}={v}" for k, v in SIZES.items()),
    ]
    with pytest.raises(FileNotFoundError, match=r"not/there does not exist \(from data\.folder_A\)"):
        main(["fit", *tiny_args(data=data)])
