"""`StyleDataModule`: style-transfer datasets (folders in the CycleGAN layout or the built-in `synthetic` set)."""

import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from lit_gan.data.datasets import UnalignedDataset
from lit_gan.data.images import FileImages, SyntheticImages, list_images
from lit_gan.data.transforms import Preprocess, build_transform

DATASET_NAMES = ("synthetic",)


class StyleDataModule(pl.LightningDataModule):
    """Two image domains A and B for unpaired style transfer.

    Give either `root`, a folder in the CycleGAN layout (`trainA`, `trainB`, and optionally `testA`, `testB`;
    nested folders allowed), or `name`, a built-in dataset: `synthetic` renders photo-like scenes (A) and the same
    kind of scenes as flat cartoons (B) on the fly, deterministically from `seed`, with no download. Folders are
    checked when the data module is built, before any training starts.

    Args:
        root: dataset folder in the CycleGAN layout.
        name: built-in dataset name (one of `DATASET_NAMES`), instead of `root`.
        load_size: images are resized to this side length before cropping.
        crop_size: side length of the training crops (a multiple of 4).
        preprocess: "resize_and_crop", "crop" or "none" (keep the size, rounded to a multiple of 4).
        flip: random horizontal flips during training.
        batch_size: images per domain in a training batch.
        num_workers: data-loading worker processes (0 loads in the main process).
        random_pairs: pair each A image with a random B image (the reference's unaligned sampling).
        seed: seed of the `synthetic` dataset.
        synthetic_train_size: images per domain in the `synthetic` training split.
        synthetic_test_size: images per domain in the `synthetic` held-out split.
        pin_memory: pin host memory for faster copies to a GPU.
    """

    def __init__(
        self,
        root: str | None = None,
        name: str | None = None,
        load_size: int = 286,
        crop_size: int = 256,
        preprocess: Preprocess = "resize_and_crop",
        flip: bool = True,
        batch_size: int = 1,
        num_workers: int = 4,
        random_pairs: bool = True,
        seed: int = 0,
        synthetic_train_size: int = 400,
        synthetic_test_size: int = 32,
        pin_memory: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        _check_sizes(preprocess, load_size, crop_size)
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        self.train_domains, self.test_domains = self._find_domains()

    def _find_domains(self) -> tuple[tuple, tuple]:
        """(train A, train B), (test A, test B) image sources; fails early, naming the folder or key."""
        hp = self.hparams
        if (hp.root is None) == (hp.name is None):
            raise ValueError("set exactly one of data.root (a dataset folder) and data.name (e.g. 'synthetic')")
        if hp.name is not None:
            if hp.name not in DATASET_NAMES:
                raise ValueError(f"data.name: unknown dataset {hp.name!r}; valid names: {', '.join(DATASET_NAMES)}")
            size = hp.load_size if hp.preprocess == "resize_and_crop" else hp.crop_size

            def synth(split: str, domain: str, n: int) -> SyntheticImages:
                return SyntheticImages(hp.seed, split, domain, size, n)

            return (
                (synth("train", "A", hp.synthetic_train_size), synth("train", "B", hp.synthetic_train_size)),
                (synth("test", "A", hp.synthetic_test_size), synth("test", "B", hp.synthetic_test_size)),
            )
        root = Path(hp.root)
        if not root.is_dir():
            raise FileNotFoundError(f"data.root: dataset folder {root} does not exist")
        train = tuple(FileImages(list_images(root / f"train{d}", "data.root")) for d in "AB")
        if not (root / "testA").exists() and not (root / "testB").exists():
            warnings.warn(
                f"{root} has no testA/testB folders: sample grids and validation use the first training images",
                stacklevel=2,
            )
            return train, train
        test = tuple(FileImages(list_images(root / f"test{d}", "data.root")) for d in "AB")
        return train, test

    def _transform(self, train: bool):
        hp = self.hparams
        return build_transform(hp.preprocess, hp.load_size, hp.crop_size, hp.flip, train)

    def _held_out_set(self) -> UnalignedDataset:
        """Held-out A and B images paired by index, without augmentation."""
        return UnalignedDataset(*self.test_domains, self._transform(False), random_pairs=False)

    def setup(self, stage: str) -> None:
        self.train_set = UnalignedDataset(*self.train_domains, self._transform(True), self.hparams.random_pairs)
        self.test_set = self._held_out_set()

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        hp = self.hparams
        return DataLoader(
            dataset,
            batch_size=hp.batch_size,
            shuffle=shuffle,
            num_workers=hp.num_workers,
            pin_memory=hp.pin_memory and torch.cuda.is_available(),
            persistent_workers=hp.num_workers > 0,
            drop_last=shuffle and len(dataset) >= hp.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def sample_batch(self, num_images: int) -> dict[str, Tensor]:
        """The first `num_images` held-out images of each domain, the same ones on every call: {"A", "B"}."""
        dataset = self._held_out_set()  # usable before setup(), e.g. from a notebook
        items = [dataset[i] for i in range(min(num_images, len(dataset)))]
        return {key: torch.stack([item[key] for item in items]) for key in ("A", "B")}  # (N, 3, H, W)


def _check_sizes(preprocess: str, load_size: int, crop_size: int) -> None:
    if crop_size % 4 or crop_size < 4:
        raise ValueError(f"data.crop_size must be a positive multiple of 4 (the generators need it), got {crop_size}")
    if preprocess == "resize_and_crop" and crop_size > load_size:
        raise ValueError(
            f"data.crop_size ({crop_size}) is larger than data.load_size ({load_size}); "
            "set load_size >= crop_size (the reference uses 286 and 256)"
        )
