"""The image check before training (`lit_gan.data.checks`): bad files skipped and reported, or with strict, listed."""

import shutil
import warnings

import pytest
import torch

from lit_gan.cli import main
from lit_gan.data import ImageCheckWarning, StyleDataModule
from lit_gan.data.checks import MAX_LISTED, check_files
from lit_gan.data.images import FileImages
from lit_gan.image_io import ImageReadError
from tests.helpers import make_aligned, make_unaligned, tiny_args, write_images, write_problem_images

CROP = dict(load_size=36, crop_size=32, num_workers=0)
REASONS = {"corrupt": "truncated", "empty": "empty file", "text": "cannot identify image file"}


@pytest.fixture
def mixed(tmp_path):
    """An unaligned dataset whose trainA holds the problem files of `write_problem_images`."""
    root = make_unaligned(tmp_path / "ds", n=4)
    files = write_problem_images(root / "trainA")
    return root, files


def _warning_text(record) -> str:
    messages = [str(w.message) for w in record if issubclass(w.category, ImageCheckWarning)]
    assert len(messages) == 1, messages
    return messages[0]


def test_mixed_folder_trains_and_names_each_skipped_file(mixed):
    root, files = mixed
    dm = StyleDataModule(root=str(root), preprocess="crop", batch_size=2, **CROP)
    with pytest.warns(ImageCheckWarning) as record:
        dm.setup("fit")
    text = _warning_text(record)
    assert "3 of 11 image files" in text and "set data.strict: true".lower() in text.lower()
    for kind, reason in REASONS.items():
        line = next(line for line in text.splitlines() if files[kind].name in line)
        assert reason in line, line
    assert "small.png: 20x24 px, smaller than data.crop_size 32" in text and "upscaled" in text
    assert "notes.txt" in text and files["deep"].name not in text  # 16-bit PNGs are fine
    assert len(dm.train_set) == 4 + 4  # 4 good trainA images + the 16-bit and the small one; (trainB has 4)
    used = set(dm.train_set.domain_a.paths)
    assert files["deep"] in used and files["small"] in used and files["empty"] not in used
    batches = list(dm.train_dataloader())
    assert sum(len(b["A"]) for b in batches) == len(dm.train_set)
    assert all(b["A"].shape[1:] == (3, 32, 32) for b in batches)
    dm.setup("validate")  # the check ran once: no second warning


def test_cli_trains_on_the_mixed_folder_and_strict_stops_it(mixed, tmp_path):
    root, files = mixed
    data = [f"--data.root={root}", "--data.preprocess=crop", "--data.load_size=36", "--data.crop_size=32"]
    data.append("--data.num_workers=0")
    with pytest.warns(ImageCheckWarning, match="corrupt.jpg"):
        main(["fit", *tiny_args("--trainer.max_steps=2", data=data)])
    assert list((tmp_path / "runs").rglob("last.ckpt"))
    shutil.rmtree(tmp_path / "runs")
    with pytest.raises(ValueError, match="data.strict is true") as info:
        main(["fit", *tiny_args("--trainer.max_steps=2", data=[*data, "--data.strict=true"])])
    assert all(str(files[kind]) in str(info.value) for kind in ("corrupt", "empty", "text", "small"))
    assert not (tmp_path / "runs").exists()  # stopped before any run (or W&B run) was created


def test_strict_lists_every_problem_before_training(mixed):
    root, files = mixed
    dm = StyleDataModule(root=str(root), preprocess="crop", strict=True, **CROP)
    with pytest.raises(ValueError, match="data.strict") as info:
        dm.check()
    message = str(info.value)
    for kind in ("corrupt", "empty", "text", "small"):
        assert str(files[kind]) in message
    assert "deep16.png" not in message and "data.strict: false" in message


def test_resize_modes_do_not_report_small_images(mixed):
    root, files = mixed
    dm = StyleDataModule(root=str(root), preprocess="scale_width", **CROP)
    with pytest.warns(ImageCheckWarning) as record:
        report = dm.check()
    assert "small.png" not in _warning_text(record) and len(report.problems) == 3
    assert report.skipped == {files["corrupt"], files["empty"], files["text"]}


def test_clean_dataset_is_silent_and_checked_once(tmp_path, monkeypatch):
    root = make_unaligned(tmp_path / "ds", n=2)
    dm = StyleDataModule(root=str(root), **CROP)
    calls = []
    monkeypatch.setattr("lit_gan.data.datamodule.check_files", lambda *a, **k: calls.append(1) or check_files(*a, **k))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageCheckWarning)
        report = dm.check()
        dm.setup("fit")
    assert report.problems == [] and report.counts[root / "trainA"] == 2 and calls == [1]


def test_split_without_readable_image_names_its_folder(tmp_path):
    root = make_unaligned(tmp_path / "ds", n=2)
    for path in (root / "testB").iterdir():
        path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"no image file in .*testB can be read") as info:
        StyleDataModule(root=str(root), **CROP).check()
    assert "empty file" in str(info.value)


def test_warning_lists_at_most_max_listed_files(tmp_path):
    root = make_unaligned(tmp_path / "ds", n=2)
    for i in range(MAX_LISTED + 5):
        (root / "trainA" / f"bad_{i:02d}.jpg").write_bytes(b"")
    with pytest.warns(ImageCheckWarning) as record:
        StyleDataModule(root=str(root), **CROP).check()
    text = _warning_text(record)
    assert text.count("empty file") == MAX_LISTED and "... and 5 more" in text


def test_aligned_pairs_are_checked_per_half(tmp_path):
    root = make_aligned(tmp_path / "ds", n=2, size=24)  # halves of 24 px: smaller than the crop
    dm = StyleDataModule(root=str(root), mode="aligned", preprocess="crop", **CROP)
    with pytest.warns(ImageCheckWarning, match=r"24x24 px \(each half\)"):
        dm.setup("fit")
    assert dm.train_set[0]["A"].shape == dm.train_set[0]["B"].shape == (3, 32, 32)


def test_file_broken_after_the_check_names_itself(tmp_path):
    root = make_unaligned(tmp_path / "ds", n=2)
    dm = StyleDataModule(root=str(root), **CROP)
    dm.setup("fit")
    (root / "trainA" / "img_001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageReadError, match="img_001.png"):
        dm.train_set[1]


def test_check_files_counts_each_folder_once(tmp_path):
    paths = write_images(tmp_path / "a", 3)
    source = FileImages.from_folder(tmp_path / "a")
    report = check_files([source, source], min_size=64)
    assert report.counts == {tmp_path / "a": 3}
    assert [p.path for p in report.problems] == paths and not report.skipped


def test_synthetic_data_needs_no_file_check():
    dm = StyleDataModule(name="synthetic", synthetic={"train_size": 2, "test_size": 1}, **CROP)
    assert dm.check().problems == [] and torch.is_tensor(dm.sample_batch(1)["A"])
