"""Small builders shared by the tests: tiny networks, tiny configs, image folders."""

from pathlib import Path

import numpy as np
from PIL import Image

TINY_MODEL = [
    "--model=lit_gan.models.CycleGAN",
    "--model.generator=lit_gan.networks.ResnetGenerator",
    "--model.generator.ngf=4",
    "--model.generator.n_blocks=1",
    "--model.discriminator=lit_gan.networks.PatchGANDiscriminator",
    "--model.discriminator.ndf=4",
    "--model.discriminator.n_layers=2",
    "--model.pool_size=3",
]
TINY_DATA = [
    "--data.name=synthetic",
    "--data.load_size=36",
    "--data.crop_size=32",
    "--data.num_workers=0",
    "--data.synthetic_train_size=6",
    "--data.synthetic_test_size=2",
]
QUIET_TRAINER = [
    "--trainer.accelerator=cpu",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--samples.num_images=2",
]


def tiny_args(*extra: str, data: list[str] | None = None) -> list[str]:
    """CLI arguments for a tiny CycleGAN on tiny synthetic data, plus `extra`."""
    return [*TINY_MODEL, *(TINY_DATA if data is None else data), *QUIET_TRAINER, "--seed_everything=0", *extra]


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
