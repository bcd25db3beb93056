from pathlib import Path

import numpy as np
import pytest
import torch

from lit_gan.data import StyleDataModule, valid_dataset_names
from lit_gan.data.synthetic import render_scene, scene_seed
from tests.helpers import make_aligned, make_single, make_unaligned, write_images


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
    kwargs = dict(name="synthetic", load_size=36, crop_size=32, num_workers=0, synthetic={"train_size": 4})
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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(name="synthetic", crop_size=64, load_size=36), "larger than data.load_size"),
        (dict(name="nope"), "valid names: synthetic, "),
        (dict(name="edges2shoes"), "edges2shoes is a dataset for data.mode aligned"),
        (dict(name="synthetic", mode="paired"), "data.mode: 'paired' is not one of 'unaligned', 'aligned', 'single'"),
        (dict(), "exactly one of data.root"),
        (dict(root="/no/such/folder"), "/no/such/folder does not exist"),
    ],
)
def test_bad_settings_fail_early_with_the_key(kwargs, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        StyleDataModule(**kwargs)


def test_worker_processes_load_the_same_images_as_the_main_process():
    kwargs = dict(
        name="synthetic", load_size=32, crop_size=32, flip=False, random_pairs=False, synthetic={"train_size": 4}
    )
    batches = []
    for workers in (0, 2):
        dm = StyleDataModule(**kwargs, num_workers=workers, batch_size=4)
        dm.setup("fit")
        batches.append(next(iter(dm.val_dataloader())))
    assert torch.equal(batches[0]["A"], batches[1]["A"]) and torch.equal(batches[0]["B"], batches[1]["B"])


def _folder(mode: str, tmp_path: Path) -> dict:
    build = {"unaligned": make_unaligned, "aligned": make_aligned, "single": make_single}[mode]
    return dict(root=str(build(tmp_path / mode)))


SYNTHETIC = dict(name="synthetic", synthetic={"train_size": 4, "test_size": 3})
KEYS = {"unaligned": {"A", "B"}, "aligned": {"A", "B"}, "single": {"A"}}


@pytest.mark.filterwarnings("ignore:.*first 50 training images")
@pytest.mark.parametrize("source", ["folder", "synthetic"])
@pytest.mark.parametrize("mode", ["unaligned", "aligned", "single"])
def test_every_mode_gives_items_with_its_keys(tmp_path, mode, source):
    data = _folder(mode, tmp_path) if source == "folder" else SYNTHETIC
    dm = StyleDataModule(**data, mode=mode, load_size=36, crop_size=32, num_workers=0, batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    tensors = {k for k, v in batch.items() if torch.is_tensor(v)}
    assert tensors == KEYS[mode] and set(batch) == tensors | {f"{k}_path" for k in tensors}
    assert all(batch[k].shape == (2, 3, 32, 32) for k in tensors)
    if mode == "aligned":
        assert batch["A_path"] == batch["B_path"]
    sample = dm.sample_batch(2)
    assert set(sample) == KEYS[mode] and all(v.shape == (2, 3, 32, 32) for v in sample.values())
    assert next(iter(dm.predict_dataloader()))["A"].shape[1:] == (3, 32, 32)


def test_aligned_pairs_share_crop_and_flip(tmp_path):
    root = make_aligned(tmp_path / "ds", n=3, size=40, same_halves=True)
    dm = StyleDataModule(root=str(root), mode="aligned", load_size=48, crop_size=32, num_workers=0)
    dm.setup("fit")
    torch.manual_seed(0)
    for i in range(12):  # random crops and flips, each applied to both halves alike
        item = dm.train_set[i % 3]
        assert torch.equal(item["A"], item["B"])


def test_synthetic_pairs_are_one_scene_in_two_styles():
    kwargs = dict(SYNTHETIC, load_size=32, crop_size=32, num_workers=0)
    pairs = StyleDataModule(**kwargs, mode="aligned").sample_batch(3)
    unpaired = StyleDataModule(**kwargs, mode="unaligned").sample_batch(3)
    cartoons = StyleDataModule(**kwargs, mode="single", domain="B").sample_batch(3)
    assert torch.equal(pairs["A"], unpaired["A"])  # the same photo scenes as domain A
    assert not torch.equal(pairs["B"], unpaired["B"])  # their own cartoons, not domain B's scenes
    assert torch.equal(cartoons["A"], unpaired["B"])  # single with domain B: the cartoon style
    scene = scene_seed(0, "testA", 2)
    expected = [np.asarray(render_scene(scene, 32, style)) for style in ("photo", "cartoon")]
    for key, image in zip("AB", expected):
        np.testing.assert_allclose(((pairs[key][2] + 1) * 127.5).permute(1, 2, 0).numpy(), image, atol=1e-3)


@pytest.mark.parametrize(("splits", "held_out"), [(("train", "val", "test"), "val"), (("train", "test"), "test")])
def test_aligned_held_out_split_is_val_then_test(tmp_path, splits, held_out):
    root = make_aligned(tmp_path / "ds", n=2, splits=splits)
    dm = StyleDataModule(root=str(root), mode="aligned", load_size=32, crop_size=32, num_workers=0)
    dm.setup("fit")
    assert Path(dm.test_set[0]["A_path"]).parent.name == held_out


@pytest.mark.parametrize("mode", ["aligned", "single"])
def test_without_held_out_folder_the_first_training_images_are_used(tmp_path, mode):
    root = make_aligned(tmp_path / "ds", n=3, splits=("train",))
    with pytest.warns(UserWarning, match="first 50 training images"):
        dm = StyleDataModule(root=str(root), mode=mode, load_size=32, crop_size=32, num_workers=0)
    dm.setup("fit")
    assert [item["A_path"] for item in dm.test_set] == [item["A_path"] for item in dm.predict_set]
    assert len(dm.test_set) == 3


def test_single_mode_on_a_plain_folder_predicts_every_image(tmp_path):
    root = make_single(tmp_path / "photos", n=5)
    with pytest.warns(UserWarning, match="no train/test folders"):
        dm = StyleDataModule(root=str(root), mode="single", load_size=36, crop_size=32, num_workers=0)
    dm.setup("predict")
    paths = [p for batch in dm.predict_dataloader() for p in batch["A_path"]]
    assert len(paths) == 5 and any("nested" in p for p in paths)


@pytest.mark.parametrize("domain", ["A", "B"])
def test_single_mode_takes_one_domain_of_an_unaligned_folder(tmp_path, domain):
    root = make_unaligned(tmp_path / "ds", n=2)
    dm = StyleDataModule(root=str(root), mode="single", domain=domain, load_size=36, crop_size=32, num_workers=0)
    dm.setup("fit")
    assert Path(dm.train_set[0]["A_path"]).parent.name == f"train{domain}"
    assert Path(dm.test_set[0]["A_path"]).parent.name == f"test{domain}"


@pytest.mark.parametrize(
    ("mode", "build", "message"),
    [
        ("aligned", make_unaligned, "set data.mode: unaligned"),
        ("unaligned", make_aligned, "set data.mode: aligned"),
        ("single", lambda root: make_single(root, splits=("trainA",)), "set data.domain: A"),
    ],
)
def test_folder_of_another_layout_gets_a_hint(tmp_path, mode, build, message):
    root = build(tmp_path / "ds")
    with pytest.raises(FileNotFoundError, match=message):
        StyleDataModule(root=str(root), mode=mode, domain="B")


def test_standard_dataset_is_found_in_the_cache_without_network(tmp_path):
    cache = tmp_path / "cache"
    dm = StyleDataModule(name="horse2zebra", cache_dir=str(cache), load_size=36, crop_size=32, num_workers=0)
    assert dm.check() is None  # not downloaded yet: nothing to check
    make_unaligned(cache / "cyclegan" / "horse2zebra", n=2)  # as if downloaded
    dm.prepare_data()  # complete: no download
    dm.setup("fit")
    assert dm.check().counts[cache / "cyclegan" / "horse2zebra" / "trainA"] == 2
    assert Path(dm.train_set[0]["A_path"]).is_relative_to(cache)


def test_dataset_names_follow_the_mode():
    assert valid_dataset_names("unaligned")[0] == "synthetic" and "horse2zebra" in valid_dataset_names("unaligned")
    assert "edges2shoes" in valid_dataset_names("aligned") and "horse2zebra" not in valid_dataset_names("aligned")
    assert {"horse2zebra", "edges2shoes"} <= set(valid_dataset_names("single"))


def test_held_out_images_per_domain_with_fingerprints(tmp_path):
    aligned = StyleDataModule(name="synthetic", mode="aligned", load_size=32, crop_size=32, synthetic={"test_size": 3})
    a, key_a = aligned.held_out_images("A")
    b, key_b = aligned.held_out_images("B")
    assert len(a) == len(b) == 3 and a[0]["A"].shape == (3, 32, 32) and key_a != key_b
    assert not torch.equal(a[0]["A"], b[0]["A"])  # the two halves of a pair: photo and cartoon
    assert aligned.held_out_images("A")[1] == key_a  # deterministic
    assert len(aligned.held_out_images("A", max_images=2)[0]) == 2

    root = make_unaligned(tmp_path / "ds", n=3)
    folder = StyleDataModule(root=str(root), load_size=32, crop_size=32)
    _, before = folder.held_out_images("B")
    next((root / "testB").iterdir()).write_bytes(
        (root / "testA" / "img_000.png").read_bytes()
    )  # same name, new content
    assert StyleDataModule(root=str(root), load_size=32, crop_size=32).held_out_images("B")[1] != before
    assert (
        StyleDataModule(root=str(root), load_size=36, crop_size=32).held_out_images("A")[1]
        != folder.held_out_images("A")[1]
    )

    single = StyleDataModule(name="synthetic", mode="single", load_size=32, crop_size=32)
    with pytest.raises(ValueError, match="data.mode single has no domain 'B'"):
        single.held_out_images("B")


def test_held_out_pairs_in_mode_aligned_are_item_i_of_both_domains(tmp_path):
    root = make_aligned(tmp_path / "pairs", n=3, same_halves=True)  # B repeats A pixel for pixel
    aligned = StyleDataModule(root=str(root), mode="aligned", load_size=32, crop_size=32)
    a, b = aligned.held_out_images("A")[0], aligned.held_out_images("B")[0]
    assert aligned.held_out_pairs and [torch.equal(a[i]["A"], b[j]["A"]) for i in range(3) for j in range(3)] == [
        i == j for i in range(3) for j in range(3)
    ]
    assert not StyleDataModule(root=str(make_unaligned(tmp_path / "ds", n=3))).held_out_pairs
    assert not StyleDataModule(name="synthetic", mode="single").held_out_pairs


@pytest.mark.parametrize(("cpus", "expected"), [(1, 1), (2, 2), (3, 3), (16, 4)])
def test_default_workers_are_at_most_the_cpus_this_process_may_use(monkeypatch, cpus, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 64)  # the machine's count is not what the process may use
    data = StyleDataModule(name="synthetic", load_size=36, crop_size=32, synthetic={"train_size": 4})
    assert data.num_workers == expected
    data.setup("fit")
    assert data.train_dataloader().num_workers == expected
    assert StyleDataModule(name="synthetic", num_workers=0).num_workers == 0  # a number given is kept


def test_predict_images_are_loaded_by_no_more_workers_than_cpus(monkeypatch, tmp_path):
    """`predict --data.predict.path ...` with the data defaults: on a 2-core machine 2 loading processes, not the 4
    that made torch warn "Our suggested max number of worker in current system is 2"."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    write_images(tmp_path / "photos", 2, size=32)
    data = StyleDataModule(predict={"path": str(tmp_path / "photos")}, load_size=36, crop_size=32)
    data.setup("predict")
    assert data.num_workers == 2 and data.predict_dataloader().num_workers == 2
