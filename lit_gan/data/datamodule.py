"""`StyleDataModule`: image datasets for GANs, from folders, the standard downloads or the built-in `synthetic` set."""

import hashlib
import os
from collections.abc import Sequence
from typing import get_args

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from lit_gan.contracts import TrainsInPhases
from lit_gan.data import download
from lit_gan.data.checks import MAX_LISTED, ImageCheckWarning, ImageReport, check_files, unusable_sources
from lit_gan.data.datasets import SingleDataset, make_dataset
from lit_gan.data.images import PairHalf
from lit_gan.data.layouts import (
    Domain,
    Mode,
    Splits,
    check_data_source,
    choose_domains,
    download_layout,
    find_splits,
    folder_splits,
    synthetic_splits,
)
from lit_gan.data.options import PredictOptions, SingleImageOptions, SyntheticOptions, as_options, plain
from lit_gan.data.predict import PredictData, PredictDataset
from lit_gan.data.sampling import ResumableDataLoader, ResumableSampler, SeededItems, TrainingSchedule
from lit_gan.data.single_image import ImageCrops, SingleImageDataset
from lit_gan.data.sizes import NetworkSizes, check_network_sizes, check_settings, network_sizes
from lit_gan.data.transforms import Preprocess, build_transform


def check_arguments(mode: str, domain: str, preprocess: str, batch_size: int, num_workers: int | None) -> None:
    """Checks of `StyleDataModule`'s plain arguments (for Python callers: the CLI has checked their types).

    Raises:
        ValueError: naming the data.* key and the values it takes.
    """
    if num_workers is not None and num_workers < 0:
        raise ValueError(f"data.num_workers must be >= 0 (or null: min(4, the CPUs)), got {num_workers}")
    for key, value, choices in (
        ("mode", mode, Mode),
        ("domain", domain, Domain),
        ("preprocess", preprocess, Preprocess),
    ):
        if value not in get_args(choices):
            raise ValueError(f"data.{key}: {value!r} is not one of {', '.join(map(repr, get_args(choices)))}")
    if batch_size < 1:
        raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")


def default_workers(most: int = 4) -> int:
    """Data-loading processes for a machine: `most`, or fewer when this process may use fewer CPUs (os.cpu_count
    counts the machine's, not those a container or `taskset` allows)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(most, cpus)


class StyleDataModule(pl.LightningDataModule):
    """Images for GANs: two unpaired domains (CycleGAN), aligned pairs (pix2pix) or one domain (DCGAN, prediction).

    Give one of `root`, a dataset folder; `folder_A` and `folder_B`, two folders of images; or `name`: `synthetic`
    renders photo-like scenes (A) and the same kind of scenes as flat cartoons (B) on the fly, deterministically from
    `seed`; any other name is a standard CycleGAN (mode unaligned or single) or pix2pix (mode aligned) dataset,
    downloaded once into `cache_dir` (e.g. horse2zebra, facades, edges2shoes). Folder layouts, by `mode`:

    - unaligned: `trainA`, `trainB`, optionally `testA`, `testB`. Batches hold "A", "B", "A_path", "B_path".
    - aligned: `train` (and `val` or `test`) of images holding A (left half) and B (right half) side by side, as
      pix2pix stores them; both halves get the same crop and flip. Batches hold "A", "B", "A_path", "B_path".
    - single: `train{domain}`/`test{domain}` of an unaligned folder, else `train` (and `val` or `test`), else every
      image under `root`. Batches hold "A", "A_path".
    - single_image: `trainA` and `trainB` holding exactly one image each (CUT's single-image translation; `synthetic`
      gives one photo and one cartoon scene, `load_size` px). An epoch is `single_image.epoch_size` crops of each
      image, drawn independently per domain: the image is rescaled by factors (per axis) from `single_image.scale`,
      then a `crop_size` square is cropped at a random position and flipped at random (`flip`); `load_size` and
      `preprocess` are not used. The held-out split (validation, sample grids, FID/KID) is
      `single_image.held_out` fixed crops of each image at the same scales, unflipped, the same on every call, so
      that the metrics compare the distributions of patches the model trains on. Batches hold "A", "B", "A_path",
      "B_path", as in unaligned mode.

    - domains: `train/<domain>/` for each domain (two or more; the sorted folder names are the domains, in label
      order) and `val/<domain>/` (or `test/<domain>/`), StarGAN v2's layout; `synthetic` gives its four styles
      (photo, cartoon, sketch, night; different scenes in each), `name: afhq` downloads AFHQ (cat, dog, wild). Training
      batches hold a source image ("A", "domain") and, drawn independently, a reference image with a second one of
      its domain ("ref", "ref2", "ref_domain"), each domain equally likely, as the reference's balanced samplers;
      held-out batches hold "A" and "domain", the domains taken in turn. The model's `domains` must be these.
      Use preprocess "random_resized_crop" for the reference's augmentation.

    Two folders (`folder_A`, `folder_B`, modes unaligned and single_image) instead of `root`: every image under each,
    wherever it is on disk, is the training set of that domain (in mode single_image each folder holds exactly one
    image). They have no held-out folders, so validation, sample grids and FID/KID use the first 50 training images of
    each domain (mode single_image: crops of the same images).

    Nested folders are allowed. Without a held-out folder, validation and sample grids use the first 50 training
    images. Folders are found when the data module is built; `check` (called before training, and by `setup`)
    decodes every image file once: unreadable files are skipped and reported, or with `strict` stop the run.
    Grayscale, transparent (composited over white), palette, 16-bit and CMYK images are converted to RGB and
    EXIF orientation is applied.

    Args:
        root: dataset folder in the layout of `mode`.
        name: dataset name instead of `root`: "synthetic", or a standard dataset to download (`valid_dataset_names`).
        folder_A: instead of `root` (with `folder_B`; modes unaligned and single_image): a folder of domain A images
            (e.g. your photos), searched recursively; all of them are training images. Relative to the working
            directory, as `root` is.
        folder_B: with `folder_A`: a folder of domain B images (e.g. the style's), searched recursively.
        mode: "unaligned" (two unpaired domains), "aligned" (A|B pairs), "single" (one domain), "single_image"
            (crops of one image per domain) or "domains" (a folder per domain, for multi-domain models).
        domain: mode single: which domain to use, "A" or "B": the style of `synthetic` (A photo, B cartoon), or
            the trainA/testA or trainB/testB folders of an unaligned dataset. Ignored by the other modes.
        load_size: images are resized to this side length (the width, for scale_width) before cropping.
        crop_size: side length of the square crops the networks see; must suit the network (see `check`).
        preprocess: "resize_and_crop" (to load_size square, then crop crop_size); "crop" (crop crop_size from the
            image as it is; smaller images are upscaled first and reported); "scale_width" (width to load_size,
            keeping the aspect ratio with height at least crop_size, then crop crop_size: the reference's
            scale_width_and_crop); "none" (keep each image's size, rounded to a multiple the network needs).
        flip: random horizontal flips during training.
        batch_size: images (or pairs) per training batch.
        num_workers: data-loading worker processes (0 loads in the main process); null: min(4, the CPUs this process
            may use), so that a small machine is not given more loading processes than it has cores.
        random_pairs: mode unaligned: pair each A image with a random B image (the reference's sampling).
        strict: stop before training, listing them, if any image file is unreadable or (preprocess crop) smaller
            than crop_size; when false such files are skipped or upscaled and a warning lists them.
        cache_dir: folder for downloaded datasets; default `$LIT_GAN_DATA`, else ~/.cache/lit_gan/datasets.
        seed: seed of the `synthetic` dataset.
        synthetic: sizes of the `synthetic` dataset: `train_size` and `test_size` images per domain
            (`lit_gan.data.options.SyntheticOptions`).
        pin_memory: pin host memory for faster copies to a GPU.
        predict: images for `predict` to stylize instead of the held-out ones: `path`, a folder (searched
            recursively) or one image file, and `domain`, the domain they come from, "A" or "B" (see
            `lit_gan.data.options.PredictOptions`). `predict` then needs no training data.
        single_image: mode single_image's crops: `scale` (the range of rescaling factors), `epoch_size` (crops per
            epoch) and `held_out` (fixed held-out crops) (`lit_gan.data.options.SingleImageOptions`).
        domains: mode domains: use only these domains of the data, in this order (e.g. three of the `synthetic`
            styles); null: all, in sorted order.
        extra_domains: mode domains: more domains, {name: folder of images}, after the data's (a new style of 10-50
            images to fine-tune into a trained model, `configs/presets/add_style.yaml`); each folder's images are
            also its held-out images.
    """

    def __init__(
        self,
        root: str | None = None,
        name: str | None = None,
        mode: Mode = "unaligned",
        domain: Domain = "A",
        load_size: int = 286,
        crop_size: int = 256,
        preprocess: Preprocess = "resize_and_crop",
        flip: bool = True,
        batch_size: int = 1,
        num_workers: int | None = None,
        random_pairs: bool = True,
        strict: bool = False,
        cache_dir: str | None = None,
        seed: int = 0,
        synthetic: SyntheticOptions = SyntheticOptions(),
        pin_memory: bool = True,
        predict: PredictOptions = PredictOptions(),
        single_image: SingleImageOptions = SingleImageOptions(),
        folder_A: str | None = None,
        folder_B: str | None = None,
        domains: list[str] | None = None,
        extra_domains: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.synthetic = as_options(SyntheticOptions, synthetic, "synthetic")
        self.single_image = as_options(SingleImageOptions, single_image, "single_image")
        self.predict_options = as_options(PredictOptions, predict, "predict")
        check_arguments(mode, domain, preprocess, batch_size, num_workers)
        self.num_workers = default_workers() if num_workers is None else num_workers
        self.save_hyperparameters(logger=False)
        groups = {"synthetic": self.synthetic, "single_image": self.single_image, "predict": self.predict_options}
        self.hparams.update({key: plain(options) for key, options in groups.items()})  # checkpoints: plain values
        check_data_source(root, name, folder_A, folder_B, self.predict_options.path)
        rule = preprocess
        if mode == "single_image":  # crops of the image as it is; load_size sizes the synthetic scenes only
            rule = "resize_and_crop" if name == "synthetic" else "crop"
        check_settings(rule, load_size, crop_size, synthetic=name == "synthetic")
        self._sizes = NetworkSizes()  # until `check(model)` reads the model's
        self._report: ImageReport | None = None
        self._fingerprints: dict[tuple, str] = {}  # of the held-out images, by domain and settings
        self._schedule = TrainingSchedule(crop_size, batch_size)  # the training order (and phases), resumable
        self._layout: str | None = None  # of a standard dataset to download
        self._predict: PredictData | None = None  # the predict.path images, which predict then runs on alone
        if self.predict_options.path is not None:
            path, domain = self.predict_options.path, self.predict_options.domain
            self._predict = PredictData(path, domain, batch_size, self.num_workers, pin_memory)
        # None: a download, located in prepare_data/setup; or, with predict.path, found when first needed (`predict`
        # then runs without the training data).
        self._splits: Splits | None = self._find_now() if self._predict is None else None

    # -- finding and checking the images ---------------------------------------------------------------------------

    def _find_now(self) -> Splits | None:
        """The splits of a folder or of `synthetic` (folder errors raised here, before any run starts)."""
        hp = self.hparams
        if hp.root is None and hp.name is None and hp.folder_A is None:
            raise ValueError(
                "set data.root (a dataset folder), data.name or data.folder_A and data.folder_B; only predict works "
                "on data.predict.path"
            )
        if hp.folder_A is not None:
            return folder_splits(hp.mode, hp.folder_A, hp.folder_B)
        if hp.root is not None:
            return self._chosen(find_splits(hp.mode, hp.root, hp.domain))
        if hp.name == "synthetic":
            resized = hp.preprocess in ("resize_and_crop", "scale_width") or hp.mode == "single_image"
            size = hp.load_size if resized else hp.crop_size
            sizes = (self.synthetic.train_size, self.synthetic.test_size)
            return self._chosen(synthetic_splits(hp.mode, hp.seed, size, *sizes, hp.domain))
        self._layout = download_layout(hp.name, hp.mode)
        return None

    def _find(self, fetch: bool) -> Splits | None:
        """The splits; a standard dataset is downloaded first when `fetch`, else None while not downloaded."""
        if self._splits is None and self._layout is None:  # deferred by predict.path
            self._splits = self._find_now()
        if self._splits is None:
            hp = self.hparams
            folder = download.dataset_dir(hp.name, self._layout, hp.cache_dir)
            if not download.is_complete(folder, self._layout):
                if not fetch:
                    return None
                folder = download.ensure_dataset(hp.name, self._layout, hp.cache_dir)
            self._splits = self._chosen(find_splits(hp.mode, folder, hp.domain))
        return self._splits

    def _chosen(self, splits: Splits) -> Splits:
        """Mode domains: the `domains` of `splits` and the `extra_domains` (see `choose_domains`)."""
        return choose_domains(splits, self.hparams.domains, self.hparams.extra_domains)

    def check(self, model: object | None = None, stage: str | None = None) -> ImageReport | None:
        """Check the settings against `model` and every image file once, before any expensive work starts.

        With a model, `crop_size` must be a multiple of `model.size_multiple` and equal `model.image_size` where
        the model has these attributes (preprocess "none" rounds each image to the multiple instead). The image
        files of all splits are decoded once (the result is kept; a dataset not downloaded yet is checked in
        `setup`): unreadable ones are skipped afterwards and, like images upscaled for preprocess "crop", listed in
        one `ImageCheckWarning`.

        Args:
            model: the LightningModule that will use the data, or None to check the files only.
            stage: the stage about to run; for "predict" with `predict.path`, only those images are checked (see
                `PredictData.check`) and None is returned.

        Returns:
            The report of the file check, or None if the dataset is not downloaded yet.

        Raises:
            ValueError: naming the data.* key, if the sizes do not suit the model; listing the files, if `strict`
                and some are unreadable or too small; naming the folder, if a split has no readable image.
        """
        if self._predicting_files(stage):
            self._predict.check(model)
            return None
        if model is not None:
            self._sizes = network_sizes(model)
            check_network_sizes(self._crop_rule, self.hparams.crop_size, self._sizes)
        splits = self._find(fetch=False)
        if splits is not None and model is not None:
            self._check_domains(model, splits)
        if splits is not None and self._report is None:
            self._report = self._check_files(splits)
        return self._report

    def _check_domains(self, model: object, splits: Splits) -> None:
        """Mode domains: the model's `domains` must be the data's, in the same order (they are its labels)."""
        hp, wanted = self.hparams, getattr(model, "domains", None)
        if (hp.mode == "domains") != (wanted is not None):
            need = "a multi-domain model (model.domains), e.g. StarGANv2"
            need = need if hp.mode == "domains" else "data.mode domains"
            raise ValueError(f"data.mode {hp.mode} and {type(model).__name__} do not go together: use {need}")
        if wanted is not None and list(wanted) != list(splits.domains):
            where = hp.root or hp.name
            raise ValueError(
                f"model.domains {list(wanted)} differ from the domains of the data ({where}): "
                f"{list(splits.domains)}; set model.domains: [{', '.join(splits.domains)}]"
            )

    @property
    def domains(self) -> tuple[str, ...]:
        """Mode domains: the domain names, in label order (found when the data module is built; a dataset to
        download, after `prepare_data`); () in the other modes."""
        splits = self._find(fetch=False)
        return splits.domains if splits is not None else ()

    def _check_files(self, splits: Splits) -> ImageReport:
        hp = self.hparams
        sources = splits.file_sources()
        report = check_files(sources, hp.crop_size if self._crop_rule == "crop" else None)
        if hp.strict and report.problems:
            raise ValueError(report.strict_error())
        for source in unusable_sources(sources, report):
            problems = [f"  {p.path}: {p.reason}" for p in report.problems if p.folder == source.folder]
            header = f"no image file in {source.folder} can be read; replace these files:"
            raise ValueError("\n".join([header, *problems[:MAX_LISTED]]))
        message = report.warning()
        if message is not None:
            rank_zero_warn(message, category=ImageCheckWarning)
        return report

    @property
    def _crop_rule(self) -> str:
        """The preprocess the crops follow: mode single_image crops crop_size squares (upscaling if need be)."""
        return "crop" if self.hparams.mode == "single_image" else self.hparams.preprocess

    def _predicting_files(self, stage: str | None) -> bool:
        """Whether `stage` uses the `predict.path` images only (and not the training data)."""
        return stage == "predict" and self._predict is not None

    def _usable_splits(self) -> Splits:
        """The splits without the files the check found unreadable."""
        splits = self._find(fetch=True)
        return splits if self._report is None else splits.without(self._report.skipped)

    # -- LightningDataModule hooks ---------------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Download the standard dataset named by `name`, if any and not there yet (runs on one process)."""
        if self._predicting_files(self.trainer.state.fn if self.trainer is not None else None):
            return  # the predict.path images are all that is needed
        if self._find(fetch=False) is None:
            download.ensure_dataset(self.hparams.name, self._layout, self.hparams.cache_dir)

    def setup(self, stage: str) -> None:
        model = self.trainer.lightning_module if self.trainer is not None else None
        if self._predicting_files(stage):
            self.predict_set = self._predict.setup(model)
            return
        self._find(fetch=True)
        self.check(model)
        self._schedule.start_fit()
        if stage == "fit" and isinstance(model, TrainsInPhases) and self.trainer is not None:
            # each epoch (phase) has its own resolution and batch size: Lightning rebuilds the loader every epoch
            self.trainer.reload_dataloaders_every_n_epochs = 1
        splits = self._usable_splits()
        self.train_set = self._dataset(splits.train, train=True)
        self.test_set = self._dataset(splits.held_out_sources())
        self.predict_set = self._dataset(splits.predict_sources())

    def _dataset(self, sources: tuple, train: bool = False) -> Dataset:
        hp = self.hparams
        if hp.mode == "single_image":
            return SingleImageDataset(*(self._crops(source, train) for source in sources))
        transform = build_transform(hp.preprocess, hp.load_size, hp.crop_size, hp.flip, train, self._sizes.rounding)
        return make_dataset(hp.mode, sources, transform, random_pairs=train and hp.random_pairs, train=train)

    def _crops(self, source: Sequence, train: bool) -> ImageCrops:
        """Mode single_image: an epoch of random crops of `source`'s image (`train`), else the held-out crops."""
        options = self.single_image
        length = options.epoch_size if train else options.held_out
        return ImageCrops(source, self.hparams.crop_size, options.scale, length, self.hparams.flip, fixed=not train)

    def _loader(
        self,
        dataset: Dataset,
        shuffle: bool,
        sampler: ResumableSampler | None = None,
        batch_size: int | None = None,
    ) -> DataLoader:
        hp = self.hparams
        batch_size = batch_size or hp.batch_size
        loader = DataLoader if sampler is None else ResumableDataLoader  # training: resumes where the sampler starts
        return loader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle if sampler is None else None,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=hp.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle and len(dataset) >= batch_size,
            generator=torch.Generator().manual_seed(0),  # worker seeds never draw from (and shift) the global RNG
        )

    def train_dataloader(self) -> DataLoader:
        """Batches in an order set by the run's seed and the epoch, each image augmented from its own seed; resuming
        mid-epoch continues with the batch after the last one trained.

        For a model that trains in phases (`lit_gan.contracts.TrainsInPhases`, the progressive GAN), the epoch's
        phase sets the images' resolution (the crops box-downscaled to it), the batch size and the number of images
        (drawn from successive shuffles of the training set); the loader is rebuilt every epoch. See
        `TrainingSchedule`."""
        dataset, sampler, batch_size = self._schedule.sampler(self.train_set, self.trainer)
        return self._loader(SeededItems(dataset), shuffle=True, sampler=sampler, batch_size=batch_size)

    def state_dict(self) -> dict:
        return self._schedule.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self._schedule.load_state_dict(state_dict)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The `predict.path` images, batched by size (`PredictData`); without predict.path the held-out images, or
        for mode single on a plain folder of images, all of them."""
        if self._predict is not None and isinstance(self.predict_set, PredictDataset):
            return self._predict.dataloader()
        return self._loader(self.predict_set, shuffle=False)

    @property
    def variable_sizes(self) -> bool:
        """Whether images keep their own sizes (preprocess "none"), so that only batches of one can be stacked."""
        return self.hparams.preprocess == "none" and self.hparams.mode != "single_image"

    @property
    def held_out_pairs(self) -> bool:
        """Whether item i of held_out_images("A") and of held_out_images("B") are one pair (mode aligned)."""
        return self.hparams.mode == "aligned"

    def held_out_images(self, domain: str, max_images: int | None = None) -> tuple[Dataset, str]:
        """The held-out images of one domain, each once, as the networks see them (centre crop, no flip), for
        image-quality metrics; and a fingerprint of exactly these images and their preprocessing, which keys caches
        of their features.

        Args:
            domain: "A" or "B" (mode unaligned: the two domains; aligned: the pairs' halves; single_image: the fixed
                crops of each image); mode single has "A"; mode domains: a domain's name.
            max_images: use only the first this many images (all when None).

        Returns:
            A dataset of items {"A": (3, H, W) image, "A_path": name}, and the fingerprint (a hex string).
        """
        hp = self.hparams
        splits = self._usable_splits()
        sources, names = splits.held_out_sources(), splits.domains
        domains = {
            "domains": lambda: dict(zip(names, sources, strict=True)),
            "unaligned": lambda: {"A": sources[0], "B": sources[1]},
            "aligned": lambda: {"A": PairHalf(sources[0], 0), "B": PairHalf(sources[0], 1)},
            "single": lambda: {"A": sources[0]},
            "single_image": lambda: {"A": self._crops(sources[0], False), "B": self._crops(sources[1], False)},
        }[hp.mode]()
        if domain not in domains:
            raise ValueError(f"data.mode {hp.mode} has no domain {domain!r}; its domains: {', '.join(domains)}")
        images = domains[domain]
        transform = build_transform(hp.preprocess, hp.load_size, hp.crop_size, False, False, self._sizes.rounding)
        if hp.mode == "single_image":
            transform = nn.Identity()  # the crops are tensors already
        dataset: Dataset = SingleDataset(images, transform)
        if max_images is not None and max_images < len(images):
            dataset = Subset(dataset, range(max_images))
        rounding = self._sizes.rounding if hp.preprocess == "none" else None
        settings = (hp.preprocess, hp.load_size, hp.crop_size, rounding, len(dataset))
        if (domain, settings) not in self._fingerprints:  # hashing the files once per run is enough
            content = images.fingerprint()
            self._fingerprints[domain, settings] = hashlib.sha1(f"{content}{settings}".encode()).hexdigest()
        return dataset, self._fingerprints[domain, settings]

    def sample_batch(self, num_images: int) -> dict[str, Tensor]:
        """The first `num_images` held-out items, the same on every call: every tensor key of the items ("A" and
        "B", or "A" in mode single), each (N, 3, H, W). Usable before `setup`, e.g. from a notebook."""
        dataset = self._dataset(self._usable_splits().held_out_sources())
        items = [dataset[i] for i in range(min(num_images, len(dataset)))]
        keys = [key for key, value in items[0].items() if isinstance(value, Tensor)]
        return {key: torch.stack([item[key] for item in items]) for key in keys}  # (N, 3, H, W)
