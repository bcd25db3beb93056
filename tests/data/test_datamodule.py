import pytest
import torch

from lit_gan.data import StyleDataModule
from lit_gan.data.images import ImageReadError
from tests.helpers import make_unaligned, write_images


def test_unaligned_folder_with_nested_images(tmp_path):
    root = make_unaligned(tmp_path / "ds", n=3)
    write_images(root / "trainA" / "sub" / "deeper", 2, seed=9, ext="jpg")
    dm = StyleDataModule(root=str(root), load_size=36, crop_size=32, num_workers=0, batch_size=2)
    dm.setup("fit")
    assert len(dm.train_set) == 5  # max(len A, len B), nested files included
    batch = next(iter(dm.train_dataloader()))
    assert batch["A"].shape == (2, 3, 32, 32) and batch["B"].shape == (2, 3, 32, 32)
    assert -1 <= batch["A"].min() and batch["A"].max() <= 1


def test_synthetic_is_deterministic_and_held_out_batch_is_fixed():
    kwargs = dict(name="synthetic", load_size=36, crop_size=32, num_workers=0, synthetic_train_size=4)
    a, b = StyleDataModule(**kwargs), StyleDataModule(**kwargs)
    first, second = a.sample_batch(3), b.sample_batch(3)
    assert first["A"].shape == (3, 3, 32, 32)
    assert torch.equal(first["A"], second["A"]) and torch.equal(first["B"], a.sample_batch(3)["B"])
    assert not torch.equal(first["A"], first["B"])  # two styles


@pytest.mark.parametrize("missing", ["trainA", "trainB", "testB"])
def test_missing_domain_folder_is_named(tmp_path, missing):
    root = make_unaligned(tmp_path / "ds", n=2)
    for f in (root / missing).iterdir():
        f.unlink()
    (root / missing).rmdir()
    if missing == "testB":
        with pytest.raises(FileNotFoundError, match="testB"):
            StyleDataModule(root=str(root))
    else:
        with pytest.raises(FileNotFoundError, match=f"{missing} does not exist"):
            StyleDataModule(root=str(root))


def test_empty_domain_folder_is_named(tmp_path):
    root = make_unaligned(tmp_path / "ds", n=2)
    for f in (root / "trainB").iterdir():
        f.unlink()
    (root / "trainB" / "notes.txt").write_text("not an image")
    with pytest.raises(FileNotFoundError, match=r"trainB holds no image file"):
        StyleDataModule(root=str(root))


def test_corrupt_image_is_reported_with_its_path(tmp_path):
    root = make_unaligned(tmp_path / "ds", n=2)
    bad = root / "trainA" / "img_001.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    dm = StyleDataModule(root=str(root), load_size=36, crop_size=32, num_workers=0)
    dm.setup("fit")
    with pytest.raises(ImageReadError, match="img_001.png"):
        dm.train_set[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(name="synthetic", crop_size=30, load_size=36), "crop_size must be a positive multiple of 4"),
        (dict(name="synthetic", crop_size=64, load_size=36), "larger than data.load_size"),
        (dict(name="nope"), "valid names: synthetic"),
        (dict(), "exactly one of data.root"),
        (dict(root="/no/such/folder"), "/no/such/folder does not exist"),
    ],
)
def test_bad_settings_fail_early_with_the_key(kwargs, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        StyleDataModule(**kwargs)


def test_worker_processes_load_the_same_images_as_the_main_process():
    kwargs = dict(name="synthetic", load_size=32, crop_size=32, flip=False, random_pairs=False, synthetic_train_size=4)
    batches = []
    for workers in (0, 2):
        dm = StyleDataModule(**kwargs, num_workers=workers, batch_size=4)
        dm.setup("fit")
        batches.append(next(iter(dm.val_dataloader())))
    assert torch.equal(batches[0]["A"], batches[1]["A"]) and torch.equal(batches[0]["B"], batches[1]["B"])
