"""Dataset layouts: which image sources form the training and held-out splits of each data mode.

- unaligned (CycleGAN): `root/trainA`, `root/trainB`, optionally `root/testA`, `root/testB`.
- aligned (pix2pix): `root/train` of images holding A (left half) and B (right half) side by side; held out:
  `root/val`, else `root/test`.
- single (DCGAN, prediction): `root/train{domain}` (and `test{domain}`) of a CycleGAN-layout folder, else
  `root/train` (and `val` or `test`), else every image under `root`.
- single_image (CUT's single-image translation): `root/trainA` and `root/trainB`, exactly one image each; the
  held-out split is fixed crops of the same two images (`lit_gan.data.single_image`).
- domains (StarGAN v2: many domains, or styles): `root/train/<domain>/` for each domain (their sorted names are the
  domains, in label order), held out: `root/val/<domain>/`, else `root/test/<domain>/` (the reference's layout).
- two folders instead of `root` (unaligned, single_image): every image under `folder_A` and under `folder_B` is the
  training set of that domain (`folder_splits`); they have no held-out folders.

Without a held-out folder, validation and sample grids use the first `HELD_OUT_FALLBACK` training images. Which
dataset names each mode accepts, and the layout a standard dataset is downloaded in: `valid_dataset_names`,
`download_layout`.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pytorch_lightning.utilities import rank_zero_warn

from lit_gan.data import download
from lit_gan.data.images import FileImages, PairedFileImages, SyntheticImages, SyntheticPairs
from lit_gan.data.single_image import check_one_image
from lit_gan.data.synthetic import STYLES
from lit_gan.image_io import find_files

Mode = Literal["unaligned", "aligned", "single", "single_image", "domains"]
Domain = Literal["A", "B"]
HELD_OUT_FALLBACK = 50  # training images reused as the held-out split when a dataset has none
SYNTHETIC_DOMAINS = STYLES  # mode domains of `synthetic`: photo, cartoon, sketch, night
DATASET_NAMES = ("synthetic",)  # built-in datasets (rendered, no download); `valid_dataset_names` adds the downloads


@dataclass(frozen=True)
class Splits:
    """The image sources of a dataset, per split, in the order the mode's dataset takes them.

    Args:
        train: (domain A, domain B) for unaligned and single_image, (pairs,) for aligned, (images,) for single, one
            source per domain (in `domains` order) for domains.
        held_out: the same for the held-out split; None: the first `HELD_OUT_FALLBACK` training images.
        predict_train: predict over the training images (a plain folder of images to translate).
        domains: mode domains: the domain names, in label order.
    """

    train: tuple[Sequence, ...]
    held_out: tuple[Sequence, ...] | None = None
    predict_train: bool = False
    domains: tuple[str, ...] = ()

    def held_out_sources(self) -> tuple[Sequence, ...]:
        if self.held_out is not None:
            return self.held_out
        return tuple(_head(source, HELD_OUT_FALLBACK) for source in self.train)

    def predict_sources(self) -> tuple[Sequence, ...]:
        return self.train if self.predict_train else self.held_out_sources()

    def file_sources(self) -> list[FileImages]:
        """The sources stored as files (the ones to check), each once."""
        return [s for s in (*self.train, *(self.held_out or ())) if isinstance(s, FileImages)]

    def without(self, bad: set[Path]) -> "Splits":
        """These splits without the files `bad` (unreadable ones)."""

        def keep(sources: tuple[Sequence, ...]) -> tuple[Sequence, ...]:
            files = (s.subset(p for p in s.paths if p not in bad) if isinstance(s, FileImages) else s for s in sources)
            return tuple(files)

        return replace(self, train=keep(self.train), held_out=None if self.held_out is None else keep(self.held_out))


def _head(source: Sequence, n: int) -> Sequence:
    return source.subset(source.paths[:n]) if isinstance(source, FileImages) else source


def find_splits(mode: Mode, root: str | Path, domain: Domain = "A") -> Splits:
    """The splits of the dataset folder `root` in the layout of `mode`.

    Raises:
        FileNotFoundError: naming data.root and the missing or empty folder, with a hint when `root` looks like
            another mode's layout.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.root: dataset folder {root} does not exist")
    if mode == "unaligned":
        return _find_unaligned(root)
    if mode == "aligned":
        return _find_aligned(root)
    if mode == "single_image":
        return _find_single_image(root)
    if mode == "domains":
        return _find_domains(root)
    return _find_single(root, domain)


def _find_domains(root: Path) -> Splits:
    """root/train/<domain>/ per domain (sorted names); held out: root/val/<domain>/, else root/test/<domain>/."""
    train_root = root / "train"
    names = sorted(p.name for p in train_root.iterdir() if p.is_dir()) if train_root.is_dir() else []
    if len(names) < 2:
        unaligned = (root / "trainA").is_dir()
        hint = " (it has trainA/trainB: the unaligned layout; set data.mode: unaligned)" if unaligned else ""
        raise FileNotFoundError(
            f"data.root {root}: data.mode domains needs a folder per domain under {train_root} (e.g. train/cat/, "
            f"train/dog/), at least two; found {', '.join(names) or 'none'}{hint}"
        )
    train = tuple(FileImages.from_folder(train_root / name) for name in names)
    for split in ("val", "test"):
        if (root / split).is_dir():
            missing = [name for name in names if not (root / split / name).is_dir()]
            if missing:
                raise FileNotFoundError(
                    f"data.root {root}: {root / split} lacks the folders of domains {', '.join(missing)}; give "
                    f"{split}/ one folder per domain of train/ ({', '.join(names)}), or remove {split}/"
                )
            held_out = tuple(FileImages.from_folder(root / split / name) for name in names)
            return Splits(train, held_out, domains=tuple(names))
    _warn_no_held_out(root, "val/<domain> or test/<domain>")
    return Splits(train, domains=tuple(names))


def choose_domains(splits: Splits, domains: list[str] | None, extra: dict[str, str] | None) -> Splits:
    """Mode domains: `splits` with only its `domains` (in that order; null: all), then each `extra` {name: folder}
    as one more domain, its images also its held-out images (a new style of a few images, to fine-tune into a trained
    model: its FID/KID are then taken against those images, as few-shot GAN papers measure).

    Raises:
        ValueError: naming data.domains or data.extra_domains, for a domain the data lacks or a repeated name.
        FileNotFoundError: naming data.extra_domains.<name>, for a missing or empty folder.
    """
    if domains is None and not extra:
        return splits
    names = list(splits.domains)
    chosen = list(names if domains is None else domains)
    unknown = [name for name in chosen if name not in names]
    if unknown or len(set(chosen)) != len(chosen):
        raise ValueError(f"data.domains {chosen}: each once, from the data's domains {names}")
    extra = extra or {}
    added = {name: FileImages.from_folder(folder, f"data.extra_domains.{name}") for name, folder in extra.items()}
    clash = [name for name in added if name in chosen]
    if clash:
        raise ValueError(f"data.extra_domains {clash}: already domains of the data ({chosen}); give a new name")
    index = [names.index(name) for name in chosen]
    held_out = splits.held_out_sources()
    return Splits(
        tuple(splits.train[i] for i in index) + tuple(added.values()),
        tuple(held_out[i] for i in index) + tuple(added.values()),
        domains=(*chosen, *added),
    )


def _find_unaligned(root: Path) -> Splits:
    if not (root / "trainA").is_dir() and (root / "train").is_dir():
        raise FileNotFoundError(
            f"data.root {root} has a train folder but no trainA/trainB (the unaligned CycleGAN layout): for "
            "images holding A|B side by side set data.mode: aligned; for one domain set data.mode: single"
        )
    train = tuple(FileImages.from_folder(root / f"train{d}") for d in "AB")
    if not (root / "testA").exists() and not (root / "testB").exists():
        _warn_no_held_out(root, "testA/testB")
        return Splits(train)
    return Splits(train, tuple(FileImages.from_folder(root / f"test{d}") for d in "AB"))


def _find_aligned(root: Path) -> Splits:
    if not (root / "train").is_dir() and (root / "trainA").is_dir():
        raise FileNotFoundError(
            f"data.root {root} has trainA/trainB but no train folder: it is in the unaligned CycleGAN layout; "
            "set data.mode: unaligned, or give a folder whose train/ images hold A|B side by side (pix2pix layout)"
        )
    return Splits(*_train_and_held_out(root, PairedFileImages))


def _find_single(root: Path, domain: Domain) -> Splits:
    if (root / f"train{domain}").is_dir():  # one domain of a CycleGAN-layout folder
        train = (FileImages.from_folder(root / f"train{domain}"),)
        test = root / f"test{domain}"
        if test.is_dir():
            return Splits(train, (FileImages.from_folder(test),))
        _warn_no_held_out(root, f"test{domain}")
        return Splits(train)
    other = "B" if domain == "A" else "A"
    if (root / f"train{other}").is_dir():
        raise FileNotFoundError(
            f"data.root {root} has train{other} but no train{domain} folder: set data.domain: {other}, "
            f"or point data.root at a folder of images"
        )
    if (root / "train").is_dir():
        return Splits(*_train_and_held_out(root, FileImages))
    _warn_no_held_out(root, "train/test")
    return Splits((FileImages.from_folder(root),), predict_train=True)


def _find_single_image(root: Path) -> Splits:
    """trainA and trainB, one image each; the held-out split is crops of the same images (no test folders)."""
    sources = []
    for domain in "AB":
        folder = root / f"train{domain}"
        if not folder.is_dir():
            raise FileNotFoundError(
                f"data.root {root} has no train{domain} folder: data.mode single_image needs trainA/ and trainB/ "
                "holding one image each"
            )
        images, others = find_files(folder)
        check_one_image(folder, len(images), [str(p.relative_to(folder)) for p in images])
        sources.append(FileImages(images, folder, others))  # the files just found: no second scan of the folder
    return Splits(tuple(sources))  # held out: the same images (`held_out_sources`), which the data module crops


FOLDER_MODES = ("unaligned", "single_image")  # the modes two folders (data.folder_A, data.folder_B) can feed


def folder_splits(mode: Mode, folder_A: str | Path, folder_B: str | Path) -> Splits:
    """The splits of two folders of images anywhere on disk, one per domain: every image under each (nested folders
    included) is that domain's training set. There is no held-out folder: the held-out split is the first
    `HELD_OUT_FALLBACK` training images of each domain (mode single_image: crops of the same images).

    Raises:
        FileNotFoundError: naming data.folder_A or data.folder_B and the folder, if it does not exist or holds no
            image file.
        ValueError: mode single_image, naming the key and the folder, if a folder does not hold exactly one image.
    """
    if mode not in FOLDER_MODES:
        raise ValueError(
            f"data.folder_A/data.folder_B cannot feed data.mode {mode}: two folders work with data.mode unaligned "
            "(many images per domain) or single_image (one image each); for A|B pairs (aligned) or one domain "
            "(single) set data.root instead"
        )
    sources = []
    for domain, folder in zip("AB", (folder_A, folder_B)):
        key = f"data.folder_{domain}"
        source = FileImages.from_folder(folder, key)
        if mode == "single_image":
            names = [str(p.relative_to(source.folder)) for p in source.paths]
            check_one_image(f"{key} ({folder})", len(names), names)
        sources.append(source)
    return Splits(tuple(sources))  # held out: the first training images (`held_out_sources`)


def check_data_source(
    root: str | None, name: str | None, folder_A: str | None, folder_B: str | None, predict_path: str | None
) -> None:
    """Raise unless exactly one way of giving the data is set: `root`, `name`, or `folder_A` with `folder_B` (none
    at all is fine with `predict_path`, which predict then runs on alone).

    Raises:
        ValueError: naming the keys that are set together, or the folder key that is missing its partner.
    """
    if (folder_A is None) != (folder_B is None):
        given, missing = ("A", "B") if folder_B is None else ("B", "A")
        raise ValueError(
            f"data.folder_{given} is set but data.folder_{missing} is not: the two folders go together; set "
            f"data.folder_{missing} to the folder of domain {missing} images"
        )
    ways = {"data.root": root, "data.name": name, "data.folder_A/data.folder_B": folder_A}
    given = [key for key, value in ways.items() if value is not None]
    if len(given) == 1 or (not given and predict_path is not None):
        return
    which = f"; got {' and '.join(given)}: keep one, set the others to null" if given else ""
    raise ValueError(
        "set exactly one of data.root (a dataset folder), data.name (e.g. 'synthetic') and data.folder_A with "
        f"data.folder_B (two folders of images){which}"
    )


def _train_and_held_out(root: Path, kind: type[FileImages]) -> tuple[tuple, tuple | None]:
    """(train,), and (val,) or (test,) or None, for the folders train/val/test."""
    train = (kind.from_folder(root / "train"),)
    for name in ("val", "test"):
        if (root / name).is_dir():
            return train, (kind.from_folder(root / name),)
    _warn_no_held_out(root, "val/test")
    return train, None


def _warn_no_held_out(root: Path, folders: str) -> None:
    rank_zero_warn(
        f"{root} has no {folders} folders: validation and sample grids use the first {HELD_OUT_FALLBACK} "
        "training images"
    )


def synthetic_splits(mode: Mode, seed: int, size: int, train_size: int, test_size: int, domain: Domain) -> Splits:
    """The splits of the built-in `synthetic` dataset in `mode`: both styles of different scenes (unaligned), each
    scene in both styles (aligned: photo A, cartoon B, pixel-aligned), one style (single: `domain`), the first
    training scene of each style (single_image: one photo, one cartoon; held out: crops of the same two), or every
    style of `SYNTHETIC_DOMAINS` (domains: different scenes per style)."""
    if mode == "domains":
        train = tuple(SyntheticImages(seed, "train", style, size, train_size) for style in SYNTHETIC_DOMAINS)
        test = tuple(SyntheticImages(seed, "test", style, size, test_size) for style in SYNTHETIC_DOMAINS)
        return Splits(train, test, domains=SYNTHETIC_DOMAINS)
    if mode == "single_image":
        scenes = SyntheticImages(seed, "train", "A", size, 1), SyntheticImages(seed, "train", "B", size, 1)
        return Splits(scenes)

    def sources(split: str, n: int) -> tuple[Sequence, ...]:
        if mode == "unaligned":
            return SyntheticImages(seed, split, "A", size, n), SyntheticImages(seed, split, "B", size, n)
        if mode == "aligned":
            return (SyntheticPairs(seed, split, size, n),)
        return (SyntheticImages(seed, split, domain, size, n),)

    return Splits(sources("train", train_size), sources("test", test_size))


def valid_dataset_names(mode: Mode) -> list[str]:
    """The valid `name`s for `mode`: "synthetic" and the standard datasets of that layout."""
    layouts = {
        "unaligned": ("unaligned",),
        "aligned": ("aligned",),
        "single": ("unaligned", "aligned"),
        "single_image": (),  # two user images, or synthetic
        "domains": ("domains",),
    }[mode]
    return [*DATASET_NAMES, *sorted({n for layout in layouts for n in download.dataset_names(layout)})]


def download_layout(name: str, mode: Mode) -> str:
    """The layout to download `name` in for `mode` (single prefers the unaligned one).

    Raises:
        ValueError: naming data.name and listing the valid names, with a hint when the name fits another mode.
    """
    if name not in valid_dataset_names(mode):
        modes = ("unaligned", "aligned", "domains")
        other = next((m for m in modes if m != mode and name in valid_dataset_names(m)), None)
        hint = f" {name} is a dataset for data.mode {other}." if other else ""
        raise ValueError(
            f"data.name: unknown dataset {name!r} for data.mode {mode}.{hint} "
            f"valid names: {', '.join(valid_dataset_names(mode))}; or give a dataset folder with data.root"
        )
    if mode == "single":
        return "unaligned" if name in download.dataset_names("unaligned") else "aligned"
    return mode
