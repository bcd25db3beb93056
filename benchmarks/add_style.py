"""A new style from 25 images (issue 30): fine-tuning a trained model (`python -m lit_gan style train`) against
training the same model from scratch for the same time, and what the fine-tuning does to the styles it knew.

1. Base: `configs/quickstart_stargan_v2.yaml` (seed 0, metrics off) on three of the synthetic styles, photo, cartoon
   and night (`--data.domains`, `--model.domains`).
2. The new style, sketch: 25 sketch scenes the runs never see otherwise (training scenes 80-104), in a folder.
3. Fine-tuned: `style train sketch --ckpt BASE --images FOLDER --minutes M` (configs/presets/add_style.yaml).
4. From scratch: the quickstart config with the four domains (the three styles' data and the folder as
   `--data.extra_domains`), the same preset's augmentation, for the same `--trainer.max_time`.
5. KID (lit_gan's InceptionV3 features, genuine weights, offline) against N held-out images per style (test scenes
   16..16+N) of N held-out photos (for the photo style: cartoons) translated with latent codes 0..N-1 of each style,
   and for the new style also with the style stored by `style train`. Old styles: KID of the base model and of the
   fine-tuned one; the line: at most 10% worse.

Run it alone (the minutes are wall-clock). `--minutes 10` is the issue's setting.

    python benchmarks/add_style.py [--minutes 10] [--photos 100] [--name NAME]

Outputs: benchmarks/results/add_style/NAME.json, NAME.md (also printed), NAME.png (rows: held-out photos; columns:
the photo, sketch fine-tuned (stored style, latent code), sketch from scratch; then cartoon and night before and
after the fine-tuning).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from quickstart import machine  # this folder
from style_bank import FIRST_HELD_OUT, scenes  # this folder
from torchvision.utils import make_grid, save_image

from lit_gan.data.images import SyntheticImages
from lit_gan.metrics.inception import load_inception
from lit_gan.metrics.scores import QualityMetrics, extract, to_uint8
from lit_gan.runs import checkpoint_summary
from lit_gan.style_command import load_style_model
from lit_gan.styles import read_style

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "add_style"
CONFIG = ROOT / "configs" / "quickstart_stargan_v2.yaml"
OLD, NEW = ["photo", "cartoon", "night"], "sketch"
NEW_IMAGES = range(80, 105)


def lit_gan(folder: Path, *args: str) -> float:
    """Run `python -m lit_gan ARGS` in `folder` (W&B offline); its wall time in seconds."""
    start = time.perf_counter()
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(folder)}
    subprocess.run([sys.executable, "-m", "lit_gan", *args], cwd=folder, env=env, check=True)
    return time.perf_counter() - start


def last_checkpoint(folder: Path) -> Path:
    return max(folder.glob("runs/lit_gan/*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--name", default="quickstart_stargan_v2")
    parser.add_argument("--base-args", nargs="*", default=[], help="more `fit` arguments for the base model (e.g. "
                        "--trainer.max_steps=5 for a dry run)")  # fmt: skip
    args = parser.parse_args()
    seconds = round(args.minutes * 60)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        domains = f"[{', '.join(OLD)}]"
        common = ["--metrics.enabled=false", "--trainer.logger.init_args.save_dir=runs"]
        (work / "base").mkdir()
        times = {"base": lit_gan(work / "base", "fit", f"--config={CONFIG}", f"--data.domains={domains}",
                                 f"--model.domains={domains}", *common, *args.base_args)}  # fmt: skip
        base = last_checkpoint(work / "base")
        folder = work / "sketch_images"
        folder.mkdir()
        source = SyntheticImages(0, "train", NEW, 64, NEW_IMAGES.stop)
        for i in NEW_IMAGES:
            source[i].save(folder / f"{i:03d}.png")
        (work / "fine").mkdir()
        times["fine_tuned"] = lit_gan(work / "fine", "style", "train", NEW, f"--ckpt={base}", f"--images={folder}",
                                      f"--minutes={args.minutes}", f"--args={common[1]}")  # fmt: skip
        fine = last_checkpoint(work / "fine")
        (work / "scratch").mkdir()
        times["scratch"] = lit_gan(work / "scratch", "fit", f"--config={CONFIG}", f"--data.domains={domains}",
                                   f"--model.domains=[{', '.join([*OLD, NEW])}]",
                                   f"--data.extra_domains={{{NEW}: {folder}}}", "--model.augment=translation,cutout",
                                   "--trainer.max_epochs=-1", f"--trainer.max_time={{seconds: {seconds}}}",
                                   "--samples.every_n_steps=0", *common)  # fmt: skip
        scratch = last_checkpoint(work / "scratch")
        style = read_style(work / "fine" / "styles" / f"{NEW}.pt")
        report = evaluate({"base": base, "fine_tuned": fine, "scratch": scratch}, style, args.photos)
    report |= {"minutes": args.minutes, "wall_s": times, "photos": args.photos, "machine": machine(),
               "new_style_images": [NEW_IMAGES.start, NEW_IMAGES.stop]}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    save_image(report.pop("grid"), RESULTS / f"{args.name}.png")
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


@torch.no_grad()
def evaluate(checkpoints: dict[str, Path], style, n: int) -> dict:
    models = {name: load_style_model(str(path))[0] for name, path in checkpoints.items()}
    steps = {name: checkpoint_summary(path)["step"] for name, path in checkpoints.items()}
    held_out = range(FIRST_HELD_OUT, FIRST_HELD_OUT + n)
    images = {s: scenes("test", s, held_out, 64) for s in [*OLD, NEW]}
    extractor, _ = load_inception(logits=False)
    features = lambda x: extract(extractor, to_uint8(x))  # noqa: E731
    real = {s: features(x) for s, x in images.items()}
    metrics = QualityMetrics(real[NEW].features.shape[1], inception_score=False)
    kid = lambda target, fake: metrics.compute(real[target], features(fake))["kid_mean"]  # noqa: E731
    index = torch.arange(n)

    def latent(model, target: str, source: str) -> torch.Tensor:
        codes = model.latent_codes(model.domains.index(target), index)
        return model.translator("generator")(images[source], codes)

    shown: dict[str, torch.Tensor] = {"photo": images["photo"]}
    new = {}
    fine = models["fine_tuned"]
    shown["sketch, fine-tuned, stored style"] = fine.translator("generator")(images["photo"], style.code.expand(n, -1))
    new["fine-tuned, stored style"] = kid(NEW, shown["sketch, fine-tuned, stored style"])
    for name in ("fine_tuned", "scratch"):
        shown[f"sketch, {name}, latent"] = latent(models[name], NEW, "photo")
        new[f"{name.replace('_', '-')}, latent codes"] = kid(NEW, shown[f"sketch, {name}, latent"])
    new["photos untranslated"] = kid(NEW, images["photo"])
    old = {}
    for target in OLD:
        source = "cartoon" if target == "photo" else "photo"
        row = {}
        for name in ("base", "fine_tuned", "scratch"):
            fake = latent(models[name], target, source)
            row[name] = kid(target, fake)
            if target != "photo" and name != "scratch":
                shown[f"{target}, {name}"] = fake
        row["fine_tuned_over_base"] = row["fine_tuned"] / row["base"]
        old[target] = row
    grid = torch.stack([x[:4] for x in shown.values()], 1).flatten(0, 1)
    return {
        "steps": steps,
        "kid_new_style": new,
        "kid_old_styles": old,
        "old_styles_within_10_percent": all(row["fine_tuned_over_base"] <= 1.10 for row in old.values()),
        "grid_columns": list(shown),
        "grid": make_grid(grid.clamp(-1, 1), nrow=len(shown), normalize=True, value_range=(-1, 1)),
    }


def markdown(r: dict) -> str:
    steps, wall = r["steps"], r["wall_s"]
    lines = [f"# A new style ({NEW}) from {r['new_style_images'][1] - r['new_style_images'][0]} images: "
             f"{r['minutes']:g} minutes of fine-tuning against training from scratch", "",
             f"Base model: the StarGAN v2 quickstart on {', '.join(OLD)} ({steps['base']} iterations, "
             f"{wall['base']:.0f} s wall). Fine-tuned: {steps['fine_tuned']} iterations; from scratch: "
             f"{steps['scratch']} iterations "
             f"(each command {wall['fine_tuned']:.0f} s and {wall['scratch']:.0f} s wall, start-up and the final "
             "checkpoint included).", "",
             f"KID (x 1e3) of {r['photos']} held-out photos translated into {NEW}, against {r['photos']} held-out "
             f"{NEW} images:", "", "| model, style codes | KID x 1e3 |", "|---|---|"]  # fmt: skip
    lines += [f"| {name} | {value * 1e3:.1f} |" for name, value in r["kid_new_style"].items()]
    lines += ["", "The known styles (latent codes; photo: from cartoons, the others from photos), KID x 1e3:", "",
              "| style | base | fine-tuned | fine-tuned / base | from scratch |", "|---|---|---|---|---|"]  # fmt: skip
    for style, row in r["kid_old_styles"].items():
        lines.append(f"| {style} | {row['base'] * 1e3:.1f} | {row['fine_tuned'] * 1e3:.1f} | "
                     f"{row['fine_tuned_over_base']:.2f} | {row['scratch'] * 1e3:.1f} |")  # fmt: skip
    verdict = "yes" if r["old_styles_within_10_percent"] else "NO"
    lines += ["", f"Known styles at most 10% worse after fine-tuning: {verdict}.", "", f"Machine: {r['machine']}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
