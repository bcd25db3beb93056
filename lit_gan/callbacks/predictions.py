"""`PredictionWriter`: the translations of `predict` as image files whose names mirror the inputs'."""

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from PIL import Image
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor

from lit_gan.distributed import gather_from_ranks
from lit_gan.runs import atomic_write

SKIPPED_FILE = "skipped.txt"
LOSSY_FORMATS = ("JPEG", "WEBP")


class PredictionWriter(BasePredictionWriter):
    """Writes each image `predict` translates to `output_dir`, under the path it has in `data.predict.path` (same
    subfolders, name and extension; under `<output_dir>/<direction>/` when the model makes several translations of
    each image, as StarGAN v2 into every domain), at its original size. Without data.predict.path (the held-out
    images), the outputs go to `<output_dir>/<direction>/<file name>`.

    Unreadable input files are skipped. At the end one line says how many images were written and skipped, followed by
    each skipped file and why; the list also goes to `<output_dir>/skipped.txt`. Under DDP each process writes the
    images of its share, and process 0 reports for all.

    After `predict`, `written` holds the written files and `skipped` the (name, reason) of the skipped ones.

    Args:
        output_dir: folder for the outputs (created if missing; files of the same names are replaced).
        quality: quality (1-100) of JPEG and WebP outputs.
    """

    def __init__(self, output_dir: str = "predictions", quality: int = 95) -> None:
        super().__init__(write_interval="batch")
        if not 1 <= quality <= 100:
            raise ValueError(f"predict_writer.quality must be in 1..100, got {quality}")
        self.output_dir = Path(output_dir)
        self.quality = quality
        self.written: list[Path] = []
        self.skipped: list[tuple[str, str]] = []

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.written, self.skipped = [], []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        self.skipped += [tuple(failure) for failure in batch.get("failed", ())]
        directions = pl_module.directions()
        for direction, images in prediction.items():  # (B, C, h, w) in [-1, 1]
            if "name" in batch:  # data.predict.path: names relative to it, in a folder per direction when several
                names = [f"{direction}/{n}" if len(prediction) > 1 else n for n in batch["name"]]
            else:  # held-out images: file names of the source domain's images
                source = directions[direction].source if direction in directions else "A"
                names = [f"{direction}/{Path(p).name}" for p in batch[f"{source}_path"]]
            for name, image in zip(names, images):
                self.written.append(self.save(image, name))

    def save(self, image: Tensor, name: str) -> Path:
        """Write one (C, H, W) image in [-1, 1] to `output_dir / name` atomically (as PNG, with ".png" appended to the
        name, when PIL cannot write the name's format); returns the path."""
        path, image_format = output_path(self.output_dir, name)
        img = to_image(image)
        options = {"quality": self.quality} if image_format in LOSSY_FORMATS else {}
        atomic_write(path, lambda tmp: img.save(tmp, format=image_format, **options))
        return path

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        # Here rather than in on_predict_end, so that the report comes after the progress bar has closed.
        shares = gather_from_ranks((self.written, self.skipped))
        self.written = [path for written, _ in shares for path in written]
        self.skipped = sorted(failure for _, skipped in shares for failure in skipped)
        if trainer.is_global_zero:
            self.report()

    def report(self) -> None:
        """Say how many images were written and which files were skipped (also into skipped.txt)."""
        listed = [f"  {name}: {reason}" for name, reason in self.skipped]
        rank_zero_info(
            "\n".join(
                [f"predict: {len(self.written)} image(s) written to {self.output_dir}, {len(self.skipped)} skipped"]
                + (["skipped (unreadable):", *listed] if listed else [])
            )
        )
        skipped_file = self.output_dir / SKIPPED_FILE
        if listed:
            atomic_write(skipped_file, lambda tmp: tmp.write_text("\n".join(line.strip() for line in listed) + "\n"))
        else:
            skipped_file.unlink(missing_ok=True)  # from an earlier run into the same folder


def to_image(image: Tensor) -> Image.Image:
    """A (C, H, W) image in [-1, 1] as an 8-bit PIL image (RGB, or L for one channel): the pixels `predict` writes."""
    pixels = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().cpu()  # (C, H, W)
    array = pixels.permute(1, 2, 0).numpy()  # (H, W, C)
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else np.ascontiguousarray(array))


def output_path(output_dir: Path, name: str) -> tuple[Path, str]:
    """Where the output of input `name` goes, and the PIL format to write: the input's own, else PNG."""
    path = output_dir / name
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        return path.with_name(path.name + ".png"), "PNG"
    return path, image_format
