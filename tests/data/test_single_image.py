"""Mode single_image (`lit_gan.data.single_image`): crops of one image per domain, seeded per item, and a fixed
held-out set of crops."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_gan.data import StyleDataModule
from lit_gan.data.sampling import ResumableSampler, SeededItems
from tests.helpers import fit, make_single_image, tiny_args

SYNTH = dict(name="synthetic", mode="single_image", load_size=48, crop_size=32, num_workers=0)


def _module(root: Path, **kwargs) -> StyleDataModule:
    dm = StyleDataModule(root=str(root), mode="single_image", crop_size=32, num_workers=0, **kwargs)
    dm.setup("fit")
    return dm


def _pixels(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8 values."""
    return np.rint((image.permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)


def _windows(image: np.ndarray, size: int) -> list[np.ndarray]:
    """Every size x size window of `image`, and its mirror image."""
    h, w = image.shape[:2]
    windows = [image[y : y + size, x : x + size] for y in range(h - size + 1) for x in range(w - size + 1)]
    return windows + [win[:, ::-1] for win in windows]


@pytest.mark.parametrize(("counts", "folder", "found"), [((0, 1), "trainA", "found 0"), ((1, 2), "trainB", "found 2")])
def test_a_domain_folder_without_exactly_one_image_is_named(tmp_path, counts, folder, found):
    root = make_single_image(tmp_path / "ds", counts=counts)
    with pytest.raises(ValueError, match=f"exactly one image in .*{folder}, {found}") as info:
        StyleDataModule(root=str(root), mode="single_image")
    assert "keep one image" in str(info.value) if counts[1] == 2 else "put one image" in str(info.value)


def test_missing_domain_folder_is_named(tmp_path):
    root = make_single_image(tmp_path / "ds")
    (root / "trainB" / "img_000.png").unlink()
    (root / "trainB").rmdir()
    with pytest.raises(FileNotFoundError, match="no trainB folder"):
        StyleDataModule(root=str(root), mode="single_image")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(single_image={"scale": (0.0, 1.0)}), "data.single_image.scale must be"),
        (dict(single_image={"scale": (1.0, 0.5)}), "data.single_image.scale must be"),
        (dict(single_image={"epoch_size": 0}), "data.single_image.epoch_size must be >= 1"),
        (dict(name="horse2zebra"), "horse2zebra is a dataset for data.mode unaligned"),
    ],
)
def test_bad_settings_name_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StyleDataModule(**{**SYNTH, **kwargs})


def test_crops_at_scale_one_are_windows_of_the_image(tmp_path):
    root = make_single_image(tmp_path / "ds", size=40)
    dm = _module(root, single_image={"scale": (1.0, 1.0)})
    windows = {domain: _windows(np.asarray(Image.open(root / f"train{domain}" / "img_000.png")), 32) for domain in "AB"}
    torch.manual_seed(0)
    for i in range(6):
        item = dm.train_set[i]
        assert item["A_path"] == str(root / "trainA" / "img_000.png")
        for domain in "AB":
            assert item[domain].shape == (3, 32, 32)
            assert any(np.array_equal(_pixels(item[domain]), win) for win in windows[domain])


def test_zoomed_crops_come_from_the_rescaled_image(tmp_path):
    root = make_single_image(tmp_path / "ds", size=40)
    image = Image.new("RGB", (96, 64))
    image.putdata([(x * 2, y * 3, 100) for y in range(64) for x in range(96)])  # smooth: resampling keeps values
    image.save(root / "trainA" / "img_000.png")
    dm = _module(root, single_image={"scale": (0.5, 0.5)})
    half = np.asarray(image.resize((48, 32), Image.BILINEAR)).astype(int)
    torch.manual_seed(0)
    for i in range(4):
        crop = _pixels(dm.train_set[i]["A"]).astype(int)
        errors = [np.abs(crop - win).max() for win in _windows(half, 32)]
        assert min(errors) <= 2  # a window of the image rescaled by 0.5 (up to resampling at the borders)


def test_items_differ_and_a_seed_fixes_an_item():
    dm = StyleDataModule(**SYNTH)
    dm.setup("fit")
    seeded = SeededItems(dm.train_set)
    first, again, other = seeded[(3, 7)], seeded[(3, 7)], seeded[(3, 8)]
    assert torch.equal(first["A"], again["A"]) and torch.equal(first["B"], again["B"])
    assert not torch.equal(first["A"], other["A"]) and not torch.equal(first["B"], other["B"])
    assert len(dm.train_set) == 1000  # single_image_epoch_size
    crops = torch.stack([dm.train_set[i]["A"] for i in range(8)])
    assert len({tuple(c.flatten()[:64].tolist()) for c in crops}) == 8


def test_a_resumed_epoch_continues_with_the_same_crops():
    dm = StyleDataModule(**SYNTH, batch_size=2, single_image={"epoch_size": 8})
    dm.setup("fit")
    whole = list(dm.train_dataloader())
    sampler = ResumableSampler(dm.train_set, seed=dm.state_dict()["shuffle_seed"])
    sampler.resume_at(0, 4)  # after two batches
    rest = list(dm._loader(SeededItems(dm.train_set), shuffle=True, sampler=sampler))
    assert len(rest) == 2 and all(torch.equal(a["A"], b["A"]) for a, b in zip(whole[2:], rest))
    assert all(torch.equal(a["B"], b["B"]) for a, b in zip(whole[2:], rest))


def test_folder_images_ignore_load_size(tmp_path):
    dm = _module(make_single_image(tmp_path / "ds", size=40), load_size=16)  # smaller than the crop: not used
    assert dm.train_set[0]["A"].shape == (3, 32, 32)


def test_train_batches_hold_both_domains_like_unaligned_mode():
    dm = StyleDataModule(**SYNTH, batch_size=4, single_image={"epoch_size": 8})
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 2 and set(batches[0]) == {"A", "B", "A_path", "B_path"}
    assert batches[0]["A"].shape == batches[0]["B"].shape == (4, 3, 32, 32)
    assert set(batches[0]["A_path"]) == {"synthetic/trainA/00000"} and set(batches[0]["B_path"]) == {
        "synthetic/trainB/00000"
    }
    assert not torch.equal(batches[0]["A"], batches[0]["B"])  # a photo and a cartoon


def test_held_out_crops_are_fixed(tmp_path):
    root = make_single_image(tmp_path / "ds", size=64)
    first, second = _module(root, single_image={"held_out": 5}), _module(root, single_image={"held_out": 5})
    a, b = first.sample_batch(5), second.sample_batch(5)
    assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"]) and a["A"].shape == (5, 3, 32, 32)
    assert len({tuple(c.flatten().tolist()) for c in a["A"]}) == 5  # five different crops
    held_out, key = first.held_out_images("B")
    assert len(held_out) == 5 and torch.equal(held_out[2]["A"], a["B"][2]) and key == second.held_out_images("B")[1]
    assert Path(held_out[2]["A_path"]).name == "img_000_crop002.png"  # outputs written per crop
    assert torch.equal(next(iter(first.val_dataloader()))["A"], a["A"][:1])  # batch_size 1
    assert _module(root, single_image={"held_out": 5, "scale": (0.5, 1.0)}).held_out_images("B")[1] != key


def test_predict_path_still_translates_whole_images(tmp_path):
    root = make_single_image(tmp_path / "ds", size=40)
    dm = StyleDataModule(root=str(root), mode="single_image", crop_size=32, num_workers=0, predict={"path": str(root)})
    dm.check(stage="predict")
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert batch["A"].shape[-2:] == (40, 40)


def test_a_crop_size_the_network_cannot_take_fails_before_training(tmp_path):
    from tests.data.test_sizes import FakeTranslator

    dm = StyleDataModule(root=str(make_single_image(tmp_path / "ds")), mode="single_image", crop_size=30)
    with pytest.raises(ValueError, match="data.crop_size 30 is not a multiple of 4"):
        dm.check(FakeTranslator(4))


DATA = [*(f"--data.{k}={v}" for k, v in SYNTH.items()), "--data.single_image.epoch_size=4", "--data.batch_size=2"]


def test_tiny_cyclegan_fits_on_single_image_crops():
    cli = fit(tiny_args("--trainer.max_steps=2", "--data.single_image.held_out=2", data=DATA))
    assert cli.trainer.state.finished and cli.trainer.global_step == 2
