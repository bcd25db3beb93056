"""Data loading: does lit_gan's training loader keep the step loop fed?

Measures, on a dataset folder in the CycleGAN layout (default: `../shared/datasets/summer2winter_yosemite`, 256 px
JPEG photos; without it, `--images` random-texture JPEGs of 256 px written to a temporary folder):

- decode: opening and decoding one image file (PIL, RGB), ms per image;
- item: one training item as the data module builds it (decode of an A and a B image, resize to `load_size`, random
  crop to `crop_size`, flip, to tensor), ms per item, in this process;
- loader: training batches/s through `StyleDataModule.train_dataloader()` (the sampler, per-item seeds, collation),
  for each `--workers` count, after the first batch (whose time, the workers' start-up, is reported apart);
- the consumer: training iterations/s of CycleGAN (configs/cyclegan.yaml's networks) at `crop_size` on this
  machine's `--device`, a plain PyTorch loop over in-memory images.

"headroom" is the loader's batch rate over the training step rate: above 1 the loader keeps up, and with
workers it loads the next batches while the step runs (the step waits only when headroom < 1). Each figure is the
median of `--repeats` passes.

    python benchmarks/data_loading.py [--root DIR] [--workers 0 1 2] [--batches N] [--device cpu|cuda] [--out FILE]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from plain_loops import PLAIN_LOOPS  # this folder
from train_speed import FixedImages, build_module, machine_info, model_config, quiet

from lit_gan.data import StyleDataModule

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "datasets" / "summer2winter_yosemite"


def texture_dataset(folder: Path, n: int, size: int = 256) -> Path:
    """A CycleGAN-layout folder of `n` smooth random-texture JPEGs per domain (photo-like file sizes)."""
    rng = np.random.default_rng(0)
    for domain in ("trainA", "trainB", "testA", "testB"):
        (folder / domain).mkdir(parents=True)
        for i in range(n if domain.startswith("train") else 2):
            small = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
            image = Image.fromarray(small).resize((size, size), Image.BICUBIC)
            image.save(folder / domain / f"{i:04d}.jpg", quality=90)
    return folder


def decode_ms(files: list[Path]) -> float:
    start = time.perf_counter()
    for path in files:
        with Image.open(path) as image:
            image.convert("RGB").load()
    return (time.perf_counter() - start) / len(files) * 1e3


def item_ms(data: StyleDataModule, n: int) -> float:
    loader = data.train_dataloader()
    keys = list(loader.sampler)[:n]  # (index, item seed) pairs
    start = time.perf_counter()
    for key in keys:
        loader.dataset[key]  # SeededItems over the training set: what each worker calls
    return (time.perf_counter() - start) / n * 1e3


def loader_rate(data: StyleDataModule, batches: int) -> tuple[float, float]:
    """(batches/s after the first, seconds to the first batch) of a fresh training loader."""
    start = time.perf_counter()
    iterator = iter(data.train_dataloader())
    next(iterator)
    first = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    end = time.perf_counter()
    del iterator
    return batches / (end - first), first - start


def step_rate(size: int, device: str, steps: int) -> float:
    """CycleGAN training iterations/s (plain loop, configs/cyclegan.yaml's networks, batch 1) at `size` px."""
    args = argparse.Namespace(ngf=None, ndf=None, n_blocks=None)
    spec, _ = model_config("cyclegan", size, args)
    loop = PLAIN_LOOPS["cyclegan"](build_module(spec, 0), device)
    data = FixedImages(("A", "B"), size, steps + 1)
    batches = [{k: v[None].to(device) for k, v in data[i].items()} for i in range(steps + 1)]
    loop.step(batches[0])  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in batches[1:]:
        loop.step(batch)
    if device == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help=f"CycleGAN-layout dataset (default {DEFAULT_ROOT} if present)")
    parser.add_argument("--images", type=int, default=200, help="texture JPEGs per domain when there is no --root")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="data.num_workers values")
    parser.add_argument("--batches", type=int, default=60, help="timed batches per loader pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load-size", type=int, default=286)
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="for the training step rate")
    parser.add_argument("--steps", type=int, default=3, help="timed training iterations for the step rate")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        quiet(Path(tmp))
        root = args.root or (DEFAULT_ROOT if DEFAULT_ROOT.is_dir() else None)
        source = os.path.relpath(root, REPO) if root else f"{args.images} random-texture 256 px JPEGs per domain"
        if root is None:
            root = texture_dataset(Path(tmp) / "textures", args.images)
        if not (root / "trainA").is_dir():
            sys.exit(f"--root {root}: no trainA folder (the CycleGAN layout: trainA, trainB, testA, testB)")

        def datamodule(workers: int) -> StyleDataModule:
            data = StyleDataModule(
                root=str(root), load_size=args.load_size, crop_size=args.crop_size, num_workers=workers
            )
            data.setup("fit")
            return data

        files = sorted((root / "trainA").iterdir())[:100]
        decode = [decode_ms(files) for _ in range(args.repeats)]
        items = [item_ms(datamodule(0), 100) for _ in range(args.repeats)]
        loaders = {}
        for workers in args.workers:
            passes = [loader_rate(datamodule(workers), args.batches) for _ in range(args.repeats)]
            loaders[workers] = {
                "batches_per_s": statistics.median(rate for rate, _ in passes),
                "first_batch_s": statistics.median(first for _, first in passes),
                "passes": passes,
            }
        steps = step_rate(args.crop_size, args.device, args.steps)

    report = {
        "machine": machine_info(args),
        "command": " ".join(["python", *sys.argv]),
        "source": source,
        "decode_ms": statistics.median(decode),
        "item_ms": statistics.median(items),
        "loaders": loaders,
        "training_its": steps,
        "crop_size": args.crop_size,
        "load_size": args.load_size,
    }
    print(markdown_table(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")


def markdown_table(report: dict) -> str:
    rows = [
        f"Images: {report['source']}; load {report['load_size']}, crop {report['crop_size']} px. Decode "
        f"{report['decode_ms']:.1f} ms per image; a training item (A and B images) {report['item_ms']:.1f} ms. "
        f"CycleGAN training at {report['crop_size']} px: {report['training_its']:.3g} it/s "
        f"({report['machine']['device']}).",
        "",
        "| workers | batches/s | first batch (s) | headroom (loader / training step rate) |",
        "|---|---|---|---|",
    ]
    for workers, loader in report["loaders"].items():
        rate = loader["batches_per_s"]
        headroom = rate / report["training_its"]
        rows.append(f"| {workers} | {rate:.1f} | {loader['first_batch_s']:.2f} | {headroom:.0f}x |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
