"""Data mode "domains" (StarGAN v2): the folder layout, the built-in styles, the training items drawn as the
reference's balanced loaders draw them, the held-out images, and the checks against the model."""

from collections import Counter
from pathlib import Path

import pytest
import torch

from lit_gan.data import StyleDataModule
from lit_gan.data.datasets import MultiDomainDataset
from lit_gan.data.layouts import SYNTHETIC_DOMAINS
from lit_gan.data.sampling import SeededItems
from lit_gan.models import StarGANv2
from tests.helpers import write_images

TINY_MODEL = dict(image_size=32, style_dim=8, latent_dim=4, hidden_dim=16, max_conv_dim=16, channels=4)


def make_domains(root: Path, counts: dict[str, int], held_out: str | None = "val") -> Path:
    """root/train/<domain>/ with counts[domain] images each (and root/<held_out>/<domain>/ with 2 each)."""
    for seed, (domain, n) in enumerate(counts.items()):
        write_images(root / "train" / domain, n, seed=seed)
        if held_out is not None:
            write_images(root / held_out / domain, 2, seed=100 + seed)
    return root


def data(**kwargs) -> StyleDataModule:
    settings = dict(mode="domains", load_size=32, crop_size=32, num_workers=0, preprocess="random_resized_crop")
    return StyleDataModule(**{**settings, **kwargs})


@pytest.mark.parametrize("held_out", ["val", "test"])
def test_a_folder_per_domain_gives_the_domains_in_sorted_order(tmp_path, held_out):
    root = make_domains(tmp_path / "ds", {"dog": 3, "cat": 2, "wild": 4}, held_out)
    dm = data(root=str(root), batch_size=2)
    assert dm.domains == ("cat", "dog", "wild")
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert {k for k, v in batch.items() if torch.is_tensor(v)} == {"A", "domain", "ref", "ref2", "ref_domain"}
    assert batch["A"].shape == batch["ref"].shape == batch["ref2"].shape == (2, 3, 32, 32)
    assert batch["domain"].dtype == torch.int64 and batch["domain"].shape == (2,)
    for path, domain in zip(batch["A_path"], batch["domain"], strict=True):
        assert f"/{dm.domains[domain]}/" in path
    held, _ = dm.held_out_images("dog")
    assert len(held) == 2 and held[0]["A"].shape == (3, 32, 32)
    sample = dm.sample_batch(3)
    assert sample["domain"].tolist() == [0, 1, 2]  # the domains in turn
    assert len(dm.val_dataloader().dataset) == 6


class Named(list):
    """An image source of numbered stand-ins: item i is (domain, i)."""

    def name(self, index: int) -> str:
        return f"{self[index][0]}/{index}"


def test_training_items_draw_each_domain_equally_often_with_fixed_reference_partners():
    """The reference's balanced samplers: a domain with 1 image is drawn as often as one with 9, images within a
    domain uniformly; the second reference is always the first's fixed partner, from the same domain."""
    sources = [Named([(0, 0)]), Named([(1, i) for i in range(9)])]
    dataset = MultiDomainDataset(sources, transform=lambda image: torch.tensor(image), seed=3)
    assert len(dataset) == 10
    items = SeededItems(dataset)
    draws = [items[(0, seed)] for seed in range(600)]
    sources_drawn, refs_drawn = Counter(int(d["domain"]) for d in draws), Counter(int(d["ref_domain"]) for d in draws)
    assert 240 < sources_drawn[0] < 360 and 240 < refs_drawn[0] < 360
    assert len({int(d["A"][1]) for d in draws if d["domain"] == 1}) == 9
    for item in draws:
        (domain, index), (domain2, index2) = item["ref"].tolist(), item["ref2"].tolist()
        assert domain == domain2 == int(item["ref_domain"]) and index2 == dataset.partners[domain][index]
        assert int(item["A"][0]) == int(item["domain"])
    assert sorted(dataset.partners[1]) == list(range(9))  # a permutation of the domain
    again = [items[(0, seed)] for seed in range(5)]
    assert all(torch.equal(a["ref"], b["ref"]) for a, b in zip(again, draws))  # the same seed, the same item


def test_synthetic_gives_four_styles_of_different_scenes():
    dm = data(name="synthetic", synthetic={"train_size": 3, "test_size": 2}, batch_size=4)
    assert dm.domains == SYNTHETIC_DOMAINS == ("photo", "cartoon", "sketch", "night")
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["A"].shape == (4, 3, 32, 32)
    sample = dm.sample_batch(8)
    assert sample["domain"].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    photo, cartoon = sample["A"][0], sample["A"][1]
    assert not torch.equal(photo, cartoon)


def test_the_model_must_have_the_data_domains(tmp_path):
    dm = data(name="synthetic", synthetic={"train_size": 3, "test_size": 2})
    with pytest.raises(ValueError, match=r"model.domains \['cat', 'dog', 'wild'\] differ .* set model.domains: "
                       r"\[photo, cartoon, sketch, night\]"):  # fmt: skip
        dm.check(StarGANv2(domains=("cat", "dog", "wild"), **TINY_MODEL))
    dm.check(StarGANv2(domains=SYNTHETIC_DOMAINS, **TINY_MODEL))
    with pytest.raises(ValueError, match="data.crop_size 32 differs"):
        data(name="synthetic").check(StarGANv2(domains=SYNTHETIC_DOMAINS, **{**TINY_MODEL, "image_size": 64}))
    with pytest.raises(ValueError, match="data.mode unaligned and StarGANv2 do not go together: use data.mode domains"):
        StyleDataModule(name="synthetic", load_size=36, crop_size=32).check(
            StarGANv2(domains=SYNTHETIC_DOMAINS, **TINY_MODEL)
        )


def rename(root: Path, old: str, new: str) -> Path:
    (root / old).rename(root / new)
    return root


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda root: make_domains(root, {"only": 2}), r"at least two; found only"),
        (lambda root: write_images(root / "trainA", 2) and root, r"set data.mode: unaligned"),
        (lambda root: rename(make_domains(root, {"a": 2, "b": 2}), "val/b", "val/c"), r"lacks the folders of domain"),
    ],
)  # fmt: skip
def test_bad_layouts_are_named(tmp_path, build, message):
    root = build(tmp_path / "ds")
    with pytest.raises(FileNotFoundError, match=message):
        data(root=str(root))


def test_afhq_is_a_dataset_name_of_mode_domains():
    from lit_gan.data import valid_dataset_names

    assert "afhq" in valid_dataset_names("domains") and "afhq" not in valid_dataset_names("unaligned")
    with pytest.raises(ValueError, match="afhq is a dataset for data.mode domains"):
        StyleDataModule(name="afhq", mode="unaligned")
