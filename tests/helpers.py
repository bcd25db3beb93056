"""Small builders shared by the tests: tiny networks, tiny configs, image folders."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from lit_gan.models import MODELS


def model_args(cls: type) -> list[str]:
    """CLI arguments selecting model class `cls` as its `smoke_test` instance (tiny networks), and the data it needs."""
    smoke = cls.smoke_test
    public = MODELS.get(cls.__name__) is cls  # the catalogue's: lit_gan.models.<Name>, as the configs name them
    class_path = f"lit_gan.models.{cls.__name__}" if public else f"{cls.__module__}.{cls.__name__}"
    config = {"class_path": class_path, "init_args": smoke.model}
    return [f"--model={json.dumps(config)}", *(f"--data.{key}={value}" for key, value in smoke.data.items())]


TINY_MODELS = {name.lower(): model_args(cls) for name, cls in MODELS.items() if cls.smoke_test is not None}
"""The catalogue's models (`lit_gan.models.MODELS`) by lower-case name: the generic tests run each of them."""


def model_class(model: str | type) -> type:
    """The model class of a `TINY_MODELS` key (or the class itself)."""
    return model if isinstance(model, type) else next(c for n, c in MODELS.items() if n.lower() == model)


def batches_per_epoch(model: str | type, n: int, processes: int = 1) -> str:
    """The data argument that gives `model`'s smoke test `n` training batches per epoch over `processes` processes
    (n / processes steps; a multi-domain model's epoch has the images of all its domains). A model whose smoke test
    gives global batch sizes per phase (`batch_sizes`: split over the processes) takes n / processes of those."""
    smoke = model_class(model).smoke_test
    images, domains = n * smoke.data.get("batch_size", 1), len(smoke.model.get("domains", [None]))
    global_batches = smoke.model.get("batch_sizes")
    if global_batches:  # one size at every resolution in the smoke tests
        (batch,) = set(global_batches.values())
        images = n // processes * batch
    assert images % domains == 0, f"{n} batches of {model}'s smoke test need whole images per domain"
    return f"--data.synthetic.train_size={images // domains}"


TINY_DATA = [
    "--data.name=synthetic",
    "--data.load_size=36",
    "--data.crop_size=32",
    "--data.num_workers=0",
    "--data.synthetic.train_size=6",
    "--data.synthetic.test_size=2",
]
QUIET_TRAINER = [
    "--trainer.accelerator=cpu",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--samples.num_images=2",
    "--metrics.feature_extractor=tests.helpers.TinyExtractor",  # InceptionV3 is far too slow for unit tests
]


def tiny_args(*extra: str, data: list[str] | None = None, model: str | type = "cyclegan") -> list[str]:
    """CLI arguments for a tiny `model` (a key of `TINY_MODELS`, or a model class with a `smoke_test`) on tiny
    synthetic data (or `data`), plus `extra`."""
    selected = TINY_MODELS[model] if isinstance(model, str) else model_args(model)
    model_only = [arg for arg in selected if arg.startswith("--model")]
    data = [*TINY_DATA, *(arg for arg in selected if arg.startswith("--data"))] if data is None else data
    return [*model_only, *data, *QUIET_TRAINER, "--seed_everything=0", *extra]


def fit(args: list[str], callbacks=(), ckpt_path=None):
    """Build the CLI from `args` without running it, then fit (with extra `callbacks`); returns the CLI."""
    from lit_gan.cli import main

    cli = main(args, run=False)
    cli.trainer.callbacks.extend(callbacks)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    return cli


def train_tiny_checkpoint(folder: Path, model: str = "cyclegan", *extra: str) -> Path:
    """The `last.ckpt` of a 2-step `python -m lit_gan fit` of tiny `model` (without metrics) with `extra` arguments,
    trained in `folder` (see the `trained_checkpoint` fixture, which trains each once per test session)."""
    from lit_gan.cli import main

    with pytest.MonkeyPatch.context() as mp:  # what conftest's per-test fixture does, for this shared fit
        mp.chdir(folder)
        for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "LIT_GAN_CACHE"):
            mp.setenv(var, str(folder / var.lower()))
        (folder / "wandb_dir").mkdir()
        fast = ["--trainer.max_steps=2", "--metrics.enabled=false", f"--trainer.logger.save_dir={folder}"]
        main(["fit", *tiny_args(*fast, *extra, model=model)])
    (checkpoint,) = folder.glob("lit_gan/*/checkpoints/last.ckpt")
    return checkpoint


def write_images(folder: Path, n: int, size: int = 40, seed: int = 0, ext: str = "png") -> list[Path]:
    """`n` random RGB images of `size` px in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"img_{i:03d}.{ext}"
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def make_unaligned(root: Path, n: int = 4, size: int = 40) -> Path:
    """A dataset folder in the CycleGAN layout with `n` images per folder."""
    for i, split in enumerate(("trainA", "trainB", "testA", "testB")):
        write_images(root / split, n, size, seed=i)
    return root


def make_aligned(
    root: Path, n: int = 4, size: int = 32, splits: tuple[str, ...] = ("train", "val"), same_halves: bool = False
) -> Path:
    """A dataset folder in the pix2pix layout: `n` images per split, each A|B side by side (2 * size wide).

    With `same_halves`, the right half (B) repeats the left half (A) pixel for pixel.
    """
    rng = np.random.default_rng(0)
    for split in splits:
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            b = a if same_halves else rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, b], axis=1)).save(root / split / f"{i:03d}.png")
    return root


def make_single(root: Path, n: int = 4, size: int = 40, splits: tuple[str, ...] = ()) -> Path:
    """A folder of `n` images for mode single: directly in `root` (and a nested subfolder) without `splits`,
    else `n` images in each of `root/<split>`."""
    if not splits:
        write_images(root, n - n // 2, size, seed=0)
        write_images(root / "nested", n // 2, size, seed=1, ext="jpg")
    for i, split in enumerate(splits):
        write_images(root / split, n, size, seed=i)
    return root


def make_domains(root: Path, n: int = 4, size: int = 40, domains: tuple[str, ...] = ("cat", "dog", "wild")) -> Path:
    """A dataset folder in StarGAN v2's layout (data mode domains): `n` images in train/<domain>/ and val/<domain>/."""
    for i, domain in enumerate(domains):
        for j, split in enumerate(("train", "val")):
            write_images(root / split / domain, n, size, seed=10 * i + j)
    return root


def make_single_image(root: Path, size: int = 40, counts: tuple[int, int] = (1, 1)) -> Path:
    """A folder for mode single_image: `trainA/` and `trainB/` holding `counts` random images of `size` px (one each
    by default)."""
    for i, (domain, n) in enumerate(zip("AB", counts)):
        (root / f"train{domain}").mkdir(parents=True, exist_ok=True)
        write_images(root / f"train{domain}", n, size, seed=10 + i)
    return root


def write_problem_images(folder: Path, size: int = 40, small: int = 20) -> dict[str, Path | list[Path]]:
    """Good and bad files in `folder`, by kind: "good" PNGs and JPEGs (a list), a "corrupt" JPEG (valid header,
    truncated data), an "empty" zero-byte .jpg, a "text" file named .png, a 16-bit grayscale PNG ("deep"), an image
    of `small` x `small + 4` px ("small"), and "notes.txt" (no image extension)."""
    good = write_images(folder, 3, size, seed=5) + write_images(folder / "jpegs", 2, size, seed=6, ext="jpg")
    jpeg = good[-1].read_bytes()
    files = {"corrupt": folder / "corrupt.jpg", "empty": folder / "empty.jpg", "text": folder / "text.png"}
    files["corrupt"].write_bytes(jpeg[: len(jpeg) // 2])
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not a picture\n")
    files["deep"] = folder / "deep16.png"
    Image.fromarray((np.arange(size * size).reshape(size, size) * 40).astype(np.uint16)).save(files["deep"])
    files["small"] = folder / "small.png"
    Image.fromarray(np.full((small + 4, small, 3), 128, np.uint8)).save(files["small"])
    files["notes"] = folder / "notes.txt"
    files["notes"].write_text("dataset notes")
    return {"good": good, **files}


class TinyExtractor(nn.Module):
    """A deterministic stand-in for InceptionV3 with torch-fidelity's interface: uint8 (B, 3, H, W) images of any
    size -> (features (B, num_features), logits (B, num_classes)), or features alone with `logits` False.

    Counts the images it encodes in `images_seen`, so tests can tell cached real images from encoded ones.
    """

    def __init__(self, num_features: int = 16, num_classes: int = 10, logits: bool = True) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("project", torch.randn(3 * 8 * 8, num_features, generator=g) / 8)
        self.register_buffer("classify", torch.randn(num_features, num_classes, generator=g))
        self.features_list = ["2048", "logits_unbiased"] if logits else ["2048"]
        self.images_seen = 0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.images_seen += len(x)
        pooled = F.adaptive_avg_pool2d(x.float() / 127.5 - 1, 8).flatten(1)  # (B, 192)
        features = torch.tanh(pooled @ self.project)  # (B, num_features)
        return (features, features @ self.classify)[: len(self.features_list)]
