"""The style bank measured on a trained multi-style model (issue 30): does a stored style carry its style, and do
blends and strengths change the output smoothly?

For each style of the built-in `synthetic` dataset, `python -m lit_gan style add` stores a style from 20 images of
that style the model has not seen (training scenes 80-99; the quickstart trains on 0-79). The style is applied to N
held-out photos it has not seen either (test scenes 16..16+N; the quickstart's metrics use 0-15), and the KID of the
translations is taken against N held-out images of every style (test scenes 16..16+N), with lit_gan's InceptionV3
features (genuine weights, offline: see ../shared/FACTS.md). The line: each added style's translations are closest
(lowest KID) to their own style's images.

Smoothness: for every non-photo style, the strength from 0 (each photo's reconstruction with its own code) to 1 in 10
steps, and the blend from one style to the next (weights (1 - w, w), w from 0 to 1 in 10 steps, through 0.5/0.5);
per path, the mean L1 between the translations of neighbouring steps, and the line: no step larger than twice the
median step. Strength 0 is compared with the photos' reconstructions (the generator with their own codes).

    python benchmarks/style_bank.py --ckpt runs/lit_gan/<id>/checkpoints/last.ckpt [--photos N] [--name NAME]
    python benchmarks/style_bank.py --train          # trains configs/quickstart_stargan_v2.yaml first (seed 0)

Outputs: benchmarks/results/style_bank/NAME.json (every number, the machine), NAME.md (the tables, also printed) and
NAME.png (rows: held-out photos; columns: the photo, then each added style; then a strength ramp and a blend).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from quickstart import machine  # this folder
from torchvision.utils import make_grid, save_image

from lit_gan.data.images import SyntheticImages
from lit_gan.metrics.inception import load_inception
from lit_gan.metrics.scores import QualityMetrics, extract, to_uint8
from lit_gan.style_command import load_style_model, style_add
from lit_gan.styles import image_tensor, read_style, with_strength

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "style_bank"
STYLE_IMAGES = range(80, 100)  # training scenes the quickstart does not train on (data.synthetic.train_size 80)
FIRST_HELD_OUT = 16  # test scenes the quickstart's metrics do not use (data.synthetic.test_size 16)
STEPS = 11  # strength / blend weights 0, 0.1, ..., 1


def scenes(split: str, style: str, indices: range, size: int) -> torch.Tensor:
    """(N, 3, size, size) in [-1, 1]: synthetic scenes `indices` of `split` in `style`."""
    source = SyntheticImages(0, split, style, size, indices.stop)
    return torch.cat([image_tensor(source[i], size) for i in indices])


def train_quickstart(folder: Path) -> Path:
    """The last checkpoint of `configs/quickstart_stargan_v2.yaml` (seed 0, metrics off) trained in `folder`."""
    command = [sys.executable, "-m", "lit_gan", "fit", "--config", str(ROOT / "configs/quickstart_stargan_v2.yaml"),
               "--metrics.enabled", "false", "--trainer.logger.init_args.save_dir", str(folder / "runs")]  # fmt: skip
    subprocess.run(command, cwd=folder, check=True, env={"WANDB_MODE": "offline", **os.environ})
    return next(folder.glob("runs/lit_gan/*/checkpoints/last.ckpt"))


def add_styles(ckpt: Path, model, bank: Path, work: Path) -> dict[str, Path]:
    """Store one style per domain from its 20 unseen training scenes; {domain: style file}."""
    files = {}
    for style in model.domains:
        folder = work / "style_images" / style
        folder.mkdir(parents=True, exist_ok=True)
        source = SyntheticImages(0, "train", style, model.image_size, STYLE_IMAGES.stop)
        for i in STYLE_IMAGES:
            source[i].save(folder / f"{i:03d}.png")
        style_add(f"added_{style}", ckpt=str(ckpt), images=str(folder), bank=str(bank))
        files[style] = bank / f"added_{style}.pt"
    return files


def steps_report(outputs: list[torch.Tensor]) -> dict:
    """Mean L1 between neighbouring outputs of a path, and whether no step exceeds twice the median step."""
    steps = [(b - a).abs().mean().item() for a, b in zip(outputs, outputs[1:], strict=False)]
    median = statistics.median(steps)
    return {"steps": steps, "median": median, "max": max(steps), "max_over_median": max(steps) / median,
            "smooth": max(steps) <= 2 * median}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", type=Path, help="a trained StarGANv2 checkpoint on the synthetic styles")
    parser.add_argument("--train", action="store_true", help="train the StarGAN v2 quickstart first (seed 0)")
    parser.add_argument("--photos", type=int, default=100, help="held-out photos (and images per style for KID)")
    parser.add_argument("--name", default="quickstart_stargan_v2")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ckpt = train_quickstart(work) if args.train else args.ckpt
        if ckpt is None:
            parser.error("give --ckpt CHECKPOINT or --train")
        model, identity, _ = load_style_model(str(ckpt))
        files = add_styles(ckpt, model, work / "styles", work)
        styles = {name: read_style(path) for name, path in files.items()}
        report = run(model, styles, args.photos)
    report |= {"checkpoint": str(ckpt), "model": identity, "machine": machine(), "photos": args.photos,
               "style_images": [STYLE_IMAGES.start, STYLE_IMAGES.stop]}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({k: v for k, v in report.items() if k != "grid"}, indent=1))
    save_image(report["grid"], RESULTS / f"{args.name}.png")
    text = markdown(report)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


@torch.no_grad()
def run(model, styles: dict, n: int) -> dict:
    size, G = model.image_size, model.translator("generator")
    held_out = range(FIRST_HELD_OUT, FIRST_HELD_OUT + n)
    photos = scenes("test", model.domains[0], held_out, size)
    extractor, _ = load_inception(logits=False)
    features = lambda x: extract(extractor, to_uint8(x))  # noqa: E731
    real = {style: features(scenes("test", style, held_out, size)) for style in model.domains}
    metrics = QualityMetrics(real[model.domains[0]].features.shape[1], inception_score=False)
    translated = {name: G(photos, style.code.expand(n, -1)) for name, style in styles.items()}
    fakes = {added: features(fake) for added, fake in translated.items()} | {"(photos untranslated)": features(photos)}
    kid = {added: {target: metrics.compute(real[target], fake)["kid_mean"] for target in model.domains}
           for added, fake in fakes.items()}  # fmt: skip
    own = model.translator("style_encoder")(photos, torch.zeros(n, dtype=torch.long))
    reconstruction = G(photos, own)
    strengths = [i / (STEPS - 1) for i in range(STEPS)]
    smooth, ramps = {}, {}
    others = [name for name in styles if name != model.domains[0]]
    for name in others:
        outputs = [G(photos, with_strength(own, styles[name].code[None], s)) for s in strengths]
        smooth[f"strength 0->1 {name}"] = steps_report(outputs)
        ramps[f"strength {name}"] = outputs
    for a, b in zip(others, others[1:] + others[:1], strict=True):
        outputs = [G(photos, ((1 - w) * styles[a].code + w * styles[b].code).expand(n, -1)) for w in strengths]
        smooth[f"blend {a}->{b}"] = steps_report(outputs)
        ramps[f"blend {a}->{b}"] = outputs
    strength0 = G(photos, with_strength(own, styles[others[0]].code[None], 0.0))
    shown = 4
    rows = [torch.stack([photos[:shown], *(t[:shown] for t in translated.values())], 1).flatten(0, 1)]
    grid_main = make_grid(rows[0].clamp(-1, 1), nrow=1 + len(translated), normalize=True, value_range=(-1, 1))
    ramp_rows = torch.stack([torch.stack([o[0] for o in outputs]) for outputs in ramps.values()]).flatten(0, 1)
    grid_ramps = make_grid(ramp_rows.clamp(-1, 1), nrow=STEPS, normalize=True, value_range=(-1, 1))
    width = max(grid_main.shape[-1], grid_ramps.shape[-1])
    pad = lambda g: torch.nn.functional.pad(g, (0, width - g.shape[-1]), value=1.0)  # noqa: E731
    return {
        "kid": kid,
        "own_style_lowest": {a: min(row, key=row.get) == a for a, row in kid.items() if a in model.domains},
        "smoothness": smooth,
        "strength0_vs_reconstruction_max_abs": (strength0 - reconstruction).abs().max().item(),
        "reconstruction_l1_to_photos": (reconstruction - photos).abs().mean().item(),
        "grid": torch.cat([pad(grid_main), torch.ones(3, 8, width), pad(grid_ramps)], 1),
        "domains": list(model.domains),
    }


def markdown(report: dict) -> str:
    domains = report["domains"]
    lines = [f"# Style bank on `{report['checkpoint']}`", "",
             f"KID (x 1e3) of {report['photos']} held-out photos in each added style (rows; 20 unseen images each) "
             f"against {report['photos']} held-out images of each style (columns); lowest per row in bold.", "",
             "| added style | " + " | ".join(domains) + " | own style lowest |",
             "|---|" + "---|" * (len(domains) + 1)]  # fmt: skip
    for added, row in report["kid"].items():
        best = min(row, key=row.get)
        cells = [f"**{v * 1e3:.1f}**" if k == best else f"{v * 1e3:.1f}" for k, v in row.items()]
        mark = {True: "yes", False: "NO"}.get(report["own_style_lowest"].get(added.removeprefix("added_")), "")
        lines.append(f"| {added} | " + " | ".join(cells) + f" | {mark} |")
    lines += ["", "| path (10 steps) | median step (L1) | max step | max / median | smooth (<= 2x) |",
              "|---|---|---|---|---|"]  # fmt: skip
    for name, s in report["smoothness"].items():
        lines.append(f"| {name} | {s['median']:.4f} | {s['max']:.4f} | {s['max_over_median']:.2f} | "
                     f"{'yes' if s['smooth'] else 'NO'} |")  # fmt: skip
    lines += ["", f"Strength 0 against the photos' reconstruction (their own codes): max |difference| "
              f"{report['strength0_vs_reconstruction_max_abs']:.1e}; reconstruction L1 to the photos "
              f"{report['reconstruction_l1_to_photos']:.4f} (images in [-1, 1]).", "",
              f"Machine: {report['machine']}"]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
