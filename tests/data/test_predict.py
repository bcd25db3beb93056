"""Images to stylize (`lit_gan.data.predict`, `StyleDataModule(predict={"path": ...})`): finding, reading, padding and
batching them by size; unreadable files reported, not fatal."""

from pathlib import Path

import numpy as np
import pytest
import torch
from lightning_fabric.utilities.data import _replace_dunder_methods
from PIL import Image
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSamplerWrapper
from pytorch_lightning.trainer.states import RunningStage
from pytorch_lightning.utilities.data import _update_dataloader
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from lit_gan.data import StyleDataModule
from lit_gan.data.predict import (
    PredictData,
    PredictDataset,
    SizeBatchSampler,
    collate_predict,
    find_predict_files,
    header_size,
    to_model_input,
)
from lit_gan.data.transforms import build_transform
from lit_gan.image_io import read_image
from tests.helpers import make_unaligned


def save_image(path: Path, height: int, width: int, mode: str = "RGB", seed: int = 0, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, **options)
    return path


def mixed_folder(root: Path) -> Path:
    """37x53 PNG, 300x200 JPEG, sub/32x32 PNG, a second 37x53 image, random bytes named .png, a truncated JPEG,
    and a text file."""
    save_image(root / "a.png", 37, 53)
    save_image(root / "b.jpg", 300, 200, seed=1)
    save_image(root / "sub" / "c.png", 32, 32, seed=2)
    save_image(root / "d.png", 37, 53, seed=3)
    (root / "corrupt.png").write_bytes(np.random.default_rng(4).bytes(600))
    jpeg = (root / "b.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "notes.txt").write_text("not an image")
    return root


def test_finds_images_recursively_sorted_with_relative_names_and_header_sizes(tmp_path):
    files, ignored = find_predict_files(mixed_folder(tmp_path / "in"))
    by_name = {f.name: f for f in files}
    assert [f.name for f in files] == ["a.png", "b.jpg", "corrupt.png", "d.png", "sub/c.png", "truncated.jpg"]
    assert by_name["a.png"].size == (53, 37) and by_name["b.jpg"].size == (200, 300)
    assert by_name["corrupt.png"].size is None and "cannot identify" in by_name["corrupt.png"].problem
    assert by_name["truncated.jpg"].problem is None  # a valid header: found out when decoding
    assert [p.name for p in ignored] == ["notes.txt"]


def test_one_image_file(tmp_path):
    path = save_image(tmp_path / "photo.jpg", 20, 30)
    (file,), ignored = find_predict_files(path)
    assert (file.name, file.size, ignored) == ("photo.jpg", (30, 20), [])


@pytest.mark.parametrize("make", ["missing", "empty", "unreadable"])
def test_bad_predict_path_fails_naming_the_key_and_the_path(tmp_path, make):
    path = tmp_path / "in"
    if make != "missing":
        path.mkdir()
        (path / "notes.txt").write_text("x")
    if make == "unreadable":
        (path / "x.png").write_bytes(b"not a png")
    with pytest.raises(FileNotFoundError, match=rf"data\.predict\.path: .*{path}"):
        StyleDataModule(predict={"path": str(path)}).check(None, "predict")


def test_header_size_follows_exif_orientation_like_decoding(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: shown 20 wide, 30 high
    path = save_image(tmp_path / "rotated.jpg", 20, 30, exif=exif.tobytes())
    (file,), _ = find_predict_files(path)
    assert header_size(path) == (20, 30) == file.size
    assert PredictDataset([file], "A")[0]["A"].shape == (3, 30, 20)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "RGB"])
def test_images_load_as_rgb_normalised_like_training(tmp_path, mode):
    path = save_image(tmp_path / f"{mode}.png", 12, 16, mode=mode)
    (file,), _ = find_predict_files(path)
    item = PredictDataset([file], "B", multiple=1)[0]
    training = build_transform("none", 16, 16, flip=False, train=False, multiple=1)
    assert item["B"].shape == (3, 12, 16) and torch.equal(item["B"], training(read_image(path)))
    assert item["name"] == f"{mode}.png" and item["size"].tolist() == [12, 16]


def test_unreadable_files_come_out_as_failures_of_their_batch(tmp_path):
    files, _ = find_predict_files(mixed_folder(tmp_path / "in"))
    dataset = PredictDataset(files, "A", multiple=4)
    items = [dataset[i] for i in range(len(dataset))]
    assert {item["name"] for item in items if "error" in item} == {"corrupt.png", "truncated.jpg"}
    batch = collate_predict([items[0], items[2], items[3]])  # a.png, corrupt.png, d.png (both 37x53)
    assert batch["A"].shape == (2, 3, 40, 56) and batch["name"] == ["a.png", "d.png"]
    assert batch["size"].tolist() == [[37, 53]] * 2 and batch["padding"].tolist() == [[1, 2, 1, 2]] * 2
    assert [name for name, _ in batch["failed"]] == ["corrupt.png"]
    assert collate_predict([items[2]]) == {"name": [], "failed": [("corrupt.png", items[2]["error"])]}


def test_batches_hold_one_image_size():
    sizes = [(53, 37), (200, 300), (53, 37), None, (53, 37), (32, 32), (200, 300), None]
    sampler = SizeBatchSampler(SequentialSampler(range(len(sizes))), 2, sizes)
    assert list(sampler) == [[0, 2], [4], [1, 6], [3, 7], [5]]
    assert len(sampler) == 5
    share = SizeBatchSampler([1, 3, 4, 6], 2, sizes)  # what one process of several gets
    assert list(share) == [[1, 6], [3], [4]]


def test_datamodule_predicts_without_training_data(tmp_path):
    images = mixed_folder(tmp_path / "in")
    root = make_unaligned(tmp_path / "ds", n=2)
    for kwargs in (dict(), dict(root=str(tmp_path / "gone")), dict(root=str(root))):
        dm = StyleDataModule(predict={"path": str(images), "domain": "B"}, batch_size=2, num_workers=0, **kwargs)
        dm.setup("predict")
        batches = list(dm.predict_dataloader())
        names = sorted(n for b in batches for n in [*b["name"], *(name for name, _ in b["failed"])])
        assert names == ["a.png", "b.jpg", "corrupt.png", "d.png", "sub/c.png", "truncated.jpg"]
        assert all("A" not in b for b in batches) and {b["B"].shape[0] for b in batches if "B" in b} == {1, 2}
    with pytest.raises(ValueError, match="data.root"):  # training needs the data
        StyleDataModule(predict={"path": str(images)}).setup("fit")
    with pytest.raises(ValueError, match="exactly one of data.root"):
        StyleDataModule()
    with pytest.raises(ValueError, match="data.predict.domain"):
        StyleDataModule(predict={"path": str(images), "domain": "C"})


class Translator:
    """A stand-in model: the size multiple its networks need, and the domains it translates."""

    size_multiple = 8

    def __init__(self, domains: tuple[str, ...]) -> None:
        self.domains, self.asked = domains, []

    def predict_directions(self, domains: list[str]) -> None:
        self.asked.append(domains)
        if not set(domains) <= set(self.domains):
            raise ValueError(f"data.predict.domain {domains[0]}: not translated")


def test_predict_data_checks_the_model_and_pads_for_it(tmp_path, caplog):
    data = PredictData(str(mixed_folder(tmp_path / "in")), "B", batch_size=2)
    with pytest.raises(RuntimeError, match="call setup first"):
        data.dataloader()
    model = Translator(("A", "B"))
    with caplog.at_level("INFO"):
        dataset = data.setup(model)
    assert model.asked == [["B"]] and data.dataset is dataset and dataset.multiple == 8
    assert "1 file(s) without an image extension ignored: notes.txt" in caplog.text
    shapes = [tuple(batch["B"].shape) for batch in data.dataloader() if "B" in batch]
    assert shapes == [(2, 3, 40, 56), (1, 3, 304, 200), (1, 3, 32, 32)]
    with pytest.raises(ValueError, match="data.predict.domain B"):
        data.check(Translator(("A",)))


def test_without_predict_path_predict_serves_the_held_out_images():
    dm = StyleDataModule(name="synthetic", load_size=36, crop_size=32, num_workers=0, synthetic={"test_size": 3})
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert batch["A"].shape == (1, 3, 32, 32) and "B" in batch


def test_model_input_is_scaled_to_minus_one_one():
    img = Image.new("RGB", (4, 2), (255, 0, 128))
    assert to_model_input(img)[:, 0, 0].tolist() == pytest.approx([1.0, -1.0, 128 / 127.5 - 1], abs=1e-6)


def test_each_process_of_several_predicts_its_own_share_once(tmp_path):
    """What Lightning does under DDP: re-create the loader with a distributed sampler swapped into the batch sampler."""
    dm = StyleDataModule(predict={"path": str(mixed_folder(tmp_path / "in"))}, batch_size=2, num_workers=0)
    dm.setup("predict")
    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        loader = dm.predict_dataloader()  # as Lightning asks for it, recording the arguments
    names = []
    for rank in (0, 1):
        sampler = UnrepeatedDistributedSamplerWrapper(loader.sampler, num_replicas=2, rank=rank, shuffle=False)
        for batch in _update_dataloader(loader, sampler, mode=RunningStage.PREDICTING):
            assert "A" not in batch or len(set(map(tuple, batch["size"].tolist()))) == 1
            names += [*batch["name"], *(name for name, _ in batch["failed"])]
    assert sorted(names) == ["a.png", "b.jpg", "corrupt.png", "d.png", "sub/c.png", "truncated.jpg"]
