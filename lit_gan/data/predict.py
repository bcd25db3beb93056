"""Images to stylize (`data.predict.path`): found, read at their own size, padded to a size the network accepts and
batched with images of the same size; unreadable files travel through the batches as failures instead of stopping
the run.

A batch holds `{domain: (B, 3, H, W) padded images in [-1, 1], "name": relative names, "size": (B, 2) original
(height, width), "padding": (B, 4) (left, right, top, bottom), "failed": [(name, reason), ...]}`; padding and its
undoing on the network's output are `lit_gan.networks.shapes.pad_to_multiple` and `crop_padding`.
"""

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler, default_collate
from torchvision.transforms.v2 import functional as TF

from lit_gan.contracts import PredictsDomains
from lit_gan.data.sizes import network_sizes
from lit_gan.image_io import find_files, read_image, read_problem
from lit_gan.networks.shapes import pad_to_multiple

KEY = "data.predict.path"
EXIF_ORIENTATION = 0x0112
TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class PredictFile:
    """One file to stylize.

    Args:
        path: the file.
        name: its path relative to `data.predict.path` (its file name when that is a file); outputs mirror it.
        size: (width, height) as the image is shown (EXIF orientation applied), from its header; None if unreadable.
        problem: why the file cannot be read, or None.
    """

    path: Path
    name: str
    size: tuple[int, int] | None
    problem: str | None = None


def find_predict_files(path: str | os.PathLike, key: str = KEY) -> tuple[list[PredictFile], list[Path]]:
    """The image files under the folder `path` (nested folders included, sorted), or the one image file `path`, with
    their sizes read from the headers (no pixel is decoded); and the files ignored for lacking an image extension.

    Raises:
        FileNotFoundError: naming `key` and `path`, if it does not exist, holds no image file or none that can be
            read.
    """
    path = Path(path)
    if path.is_file():
        paths, ignored, names = [path], [], [path.name]
    elif path.is_dir():
        paths, ignored = find_files(path)
        names = [p.relative_to(path).as_posix() for p in paths]
    else:
        raise FileNotFoundError(f"{key}: {path} does not exist; give a folder of images or one image file")
    if not paths:
        raise FileNotFoundError(f"{key}: {path} holds no image file (searched recursively for image extensions)")
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        sizes = list(pool.map(header_size, paths))
    files = [
        PredictFile(p, n, s, None) if isinstance(s, tuple) else PredictFile(p, n, None, s)
        for p, n, s in zip(paths, names, sizes)
    ]
    if all(f.problem for f in files):
        listed = "\n".join(f"  {f.name}: {f.problem}" for f in files[:20])
        raise FileNotFoundError(f"{key}: no image under {path} can be read:\n{listed}")
    return files, ignored


def header_size(path: Path) -> tuple[int, int] | str:
    """(width, height) of the image as shown (EXIF orientation applied) from its header alone, or why it cannot be
    opened. A PNG's EXIF is seen only when stored before the pixels (reading it otherwise decodes the image)."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.format == "PNG":
                exif = Image.Exif()
                if "exif" in img.info:
                    exif.load(img.info["exif"])
            else:
                exif = img.getexif()
        return (height, width) if exif.get(EXIF_ORIENTATION) in TRANSPOSED else (width, height)
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... for what it cannot identify
        return read_problem(path, err)


def to_model_input(img: Image.Image) -> Tensor:
    """An RGB PIL image -> (3, H, W) float32 in [-1, 1], as the training transforms (`build_transform`) end."""
    x = TF.to_dtype(TF.to_image(img), torch.float32, scale=True)
    return TF.normalize(x, [0.5] * 3, [0.5] * 3)


class PredictDataset(Dataset):
    """Images of `files` for prediction, each at its own size padded to multiples of `multiple`.

    Item: `{domain: (3, H, W) in [-1, 1], "name", "size": (h, w), "padding": (left, right, top, bottom)}`, or
    `{"name", "error": reason}` for a file that cannot be read (found when scanning, or now when decoding).

    Args:
        files: the files, from `find_predict_files`.
        domain: the key of the images, "A" or "B" (the domain they come from).
        multiple: the size multiple the network needs (`model.size_multiple`).
    """

    def __init__(self, files: Sequence[PredictFile], domain: str, multiple: int = 1) -> None:
        self.files, self.domain, self.multiple = list(files), domain, multiple

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        file = self.files[index]
        if file.problem is not None:
            return {"name": file.name, "error": file.problem}
        try:
            img = read_image(file.path)
        except Exception as err:  # corrupt or truncated data shows only when decoding
            return {"name": file.name, "error": read_problem(file.path, err)}
        if img.size != file.size:
            return {"name": file.name, "error": f"decodes to {img.size[0]}x{img.size[1]} px, unlike its header"}
        x, padding = pad_to_multiple(to_model_input(img), self.multiple)  # (3, H, W)
        size = torch.tensor([img.height, img.width])
        return {self.domain: x, "name": file.name, "size": size, "padding": torch.tensor(padding)}

    @property
    def sizes(self) -> list[tuple[int, int] | None]:
        """Each file's (width, height); None for the unreadable ones."""
        return [f.size for f in self.files]


def collate_predict(items: list[dict]) -> dict:
    """Stack the readable items of a batch (see the module docstring); unreadable ones go to "failed"."""
    good = [item for item in items if "error" not in item]
    batch = default_collate(good) if good else {"name": []}
    batch["failed"] = [(item["name"], item["error"]) for item in items if "error" in item]
    return batch


class SizeBatchSampler(BatchSampler):
    """Batches of up to `batch_size` indices from `sampler` whose images share one size: padding them to a common
    size would change the images and the instance-norm statistics. Sizes come in order of first appearance; files
    without a size (unreadable) are batched together.

    Args:
        sampler: the indices (Lightning swaps in a distributed sampler, so each process gets its share).
        batch_size: most images per batch.
        sizes: the size of each index's image, e.g. `PredictDataset.sizes`.
        drop_last: drop each size's last batch when smaller than batch_size (never wanted for prediction; here for
            Lightning, which sets it).
    """

    def __init__(
        self, sampler: Sampler[int] | Iterable[int], batch_size: int, sizes: Sequence, drop_last: bool = False
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.sizes = sizes

    def _groups(self) -> list[list[int]]:
        groups: dict = {}
        for index in self.sampler:
            groups.setdefault(self.sizes[index], []).append(index)
        return list(groups.values())

    def __iter__(self) -> Iterator[list[int]]:
        for group in self._groups():
            end = len(group) - len(group) % self.batch_size if self.drop_last else len(group)
            for start in range(0, end, self.batch_size):
                yield group[start : start + self.batch_size]

    def __len__(self) -> int:
        round_up = 0 if self.drop_last else self.batch_size - 1
        return sum((len(group) + round_up) // self.batch_size for group in self._groups())


class PredictData:
    """The images of `data.predict.path` that `predict` stylizes instead of the held-out ones: found and checked
    before the model is loaded or run, then served in batches of one image size (`StyleDataModule` delegates its
    predict stage here; predict then needs no training data).

    Args:
        path: a folder of images (searched recursively) or one image file.
        domain: the domain the images come from, "A" or "B".
        batch_size: most images per batch (only images of one size share a batch).
        num_workers: data-loading worker processes (0 loads in the main process).
        pin_memory: pin host memory for faster copies to a GPU.
    """

    def __init__(
        self, path: str, domain: str, batch_size: int = 1, num_workers: int = 0, pin_memory: bool = False
    ) -> None:
        self.path, self.domain = path, domain
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.multiple = 1  # the size multiple the network needs, read by `check(model)`
        self.dataset: PredictDataset | None = None  # built by `setup`
        self._files: list[PredictFile] | None = None

    def find(self) -> list[PredictFile]:
        """The files, found on the first call (their sizes from the headers); files without an image extension are
        reported once, as info.

        Raises:
            FileNotFoundError: naming data.predict.path, if it does not exist or holds no readable image.
        """
        if self._files is None:
            self._files, ignored = find_predict_files(self.path)
            if ignored:
                names = ", ".join(str(p.relative_to(self.path)) for p in ignored[:3])
                rank_zero_info(f"{KEY}: {len(ignored)} file(s) without an image extension ignored: {names}")
        return self._files

    def check(self, model: object | None = None) -> None:
        """Find the images (once) and check that `model` translates images of `domain` (its `predict_directions`),
        before the model is loaded or run; take the size multiple the model needs.

        Raises:
            FileNotFoundError: naming data.predict.path, if it does not exist or holds no readable image.
            ValueError: naming data.predict.domain, if the model does not translate images of that domain.
        """
        self.find()
        if model is not None:
            self.multiple = network_sizes(model).multiple
            if isinstance(model, PredictsDomains):
                model.predict_directions([self.domain])

    def setup(self, model: object | None = None) -> PredictDataset:
        """`check` with `model`, then build (and return) the dataset of the images, padded for the model."""
        self.check(model)
        self.dataset = PredictDataset(self.find(), self.domain, self.multiple)
        return self.dataset

    def dataloader(self) -> DataLoader:
        """The images in order, in batches of one size, unreadable files as each batch's "failed" (see the module
        docstring)."""
        if self.dataset is None:
            raise RuntimeError("PredictData.dataloader: call setup first, which builds the dataset")
        return DataLoader(
            self.dataset,
            batch_sampler=SizeBatchSampler(SequentialSampler(self.dataset), self.batch_size, self.dataset.sizes),
            collate_fn=collate_predict,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
        )
