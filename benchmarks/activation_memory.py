"""Activation checkpointing (`speed.checkpoint_activations`): peak memory and time per training iteration with and
without it, for the generators of CycleGAN, pix2pix and CUT at large image sizes.

Each configuration (model, size, checkpointing off or on) runs in a fresh Python process, so that one's peak memory
cannot hide the next one's: it builds the LightningModule from the networks and hyperparameters of the model's
shipped config (configs/<model>.yaml; pix2pix's U-Net with num_downs = log2(size), as train_speed.py does) and runs
`--warmup` + `--steps` training iterations under `pl.Trainer` (no logger, progress bar or checkpoints) on fixed random
images at the config's batch size. Reported per configuration:

- peak RSS: the process's peak resident memory (`getrusage(RUSAGE_SELF).ru_maxrss`) at the end, and its delta: that
  peak minus the resident memory just before training started (networks and images built), i.e. what training
  added at its peak: activations, gradients, optimizer state;
- seconds per iteration over the `--steps` iterations after the warm-up;
- on CUDA, `torch.cuda.max_memory_allocated` over the training.

    python benchmarks/activation_memory.py [--models cyclegan pix2pix cut] [--sizes 256 512] [--steps 2]
        [--warmup 1] [--device cpu|cuda] [--threads T] [--out FILE]
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from train_speed import FixedImages, StepMarks, StepTimer, instantiate, model_config, quiet  # this folder

from lit_gan.callbacks import SpeedOptions

MODELS = ("cyclegan", "pix2pix", "cut")
DOMAINS = ("A", "B")  # every one of them trains on A and B images
RESULT = "RESULT "  # the child's line of results on stdout


def mib(n_bytes: float) -> float:
    return n_bytes / 2**20


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return mib(peak if sys.platform == "darwin" else peak * 1024)


def current_rss_mib() -> float:
    """The process's resident memory now (/proc/self/statm; where there is none, the peak so far)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return peak_rss_mib()
    return mib(pages * os.sysconf("SC_PAGE_SIZE"))


def build(model: str, size: int, seed: int) -> tuple[pl.LightningModule, int]:
    """The LightningModule of configs/<model>.yaml at `size` px (after `seed_everything(seed)`), and its batch size."""
    spec, batch_size = model_config(model, size, SimpleNamespace(ngf=None, ndf=None, n_blocks=None))
    pl.seed_everything(seed, verbose=False)
    init = {  # the injected networks (generator, discriminator, CUT's patch sampler) built first, as the CLI does
        key: instantiate(value) if isinstance(value, dict) and "class_path" in value else value
        for key, value in spec["init_args"].items()
    }
    return instantiate({"class_path": spec["class_path"], "init_args": init}), batch_size


def measure(model: str, size: int, checkpointing: bool, args: argparse.Namespace) -> dict:
    """One configuration, in this process (the child)."""
    module, batch_size = build(model, size, args.seed)
    iterations = args.warmup + args.steps + 1  # the last one is only started: its start ends the timing
    data = FixedImages(DOMAINS, size, batch_size * iterations, seed=args.seed)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
    marks = StepMarks(args.warmup, args.steps, args.device)
    trainer = pl.Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu", devices=1, max_steps=iterations, logger=False,
        callbacks=[SpeedOptions(checkpoint_activations=checkpointing, adam="default"), StepTimer(marks)],
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=0, default_root_dir=str(args.work),
    )  # fmt: skip
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    before = current_rss_mib()
    trainer.fit(module, train_dataloaders=loader)
    peak = peak_rss_mib()
    return {
        "model": model,
        "size": size,
        "batch_size": batch_size,
        "checkpointing": checkpointing,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
        "peak_rss_delta_mib": peak - before,
        "s_per_it": 1.0 / marks.rate(),
        "cuda_max_allocated_mib": mib(torch.cuda.max_memory_allocated()) if args.device == "cuda" else None,
    }


def run_child(model: str, size: int, checkpointing: bool, args: argparse.Namespace) -> dict:
    """`measure` in a fresh Python process: its result."""
    command = [sys.executable, __file__, "--child", model, str(size), str(int(checkpointing))]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device]
    command += ["--seed", str(args.seed)] + (["--threads", str(args.threads)] if args.threads else [])
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    (line,) = [line for line in out.splitlines() if line.startswith(RESULT)]
    return json.loads(line[len(RESULT) :])


def ratio(result: dict, off: dict | None, key: str) -> str:
    return f"{result[key] / off[key]:.2f}" if off and result["checkpointing"] and off[key] > 0 else ""


def markdown_table(report: dict) -> str:
    """One row per configuration; the checkpointing rows with their ratios to the same configuration without."""
    cuda = report["options"]["device"] == "cuda"
    rows = [
        f"{report['options']['warmup']} warm-up + {report['options']['steps']} timed iterations per configuration, "
        f"each in a fresh process; {report['machine']}.",
        "",
        "| model | size | batch | checkpointing | peak RSS MiB | RSS delta MiB | s/it | delta on/off | s/it on/off |"
        + (" CUDA max allocated MiB | CUDA on/off |" if cuda else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if cuda else ""),
    ]
    off: dict | None = None
    for r in report["results"]:
        off = off if r["checkpointing"] else r
        row = (
            f"| {r['model']} | {r['size']} | {r['batch_size']} | {'on' if r['checkpointing'] else 'off'} | "
            f"{r['peak_rss_mib']:.0f} | {r['peak_rss_delta_mib']:.0f} | {r['s_per_it']:.3g} | "
            f"{ratio(r, off, 'peak_rss_delta_mib')} | {ratio(r, off, 's_per_it')} |"
        )
        if cuda:
            row += f" {r['cuda_max_allocated_mib']:.0f} | {ratio(r, off, 'cuda_max_allocated_mib')} |"
        rows.append(row)
    return "\n".join(rows)


def machine(args: argparse.Namespace) -> str:
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch "
        f"threads, device {device}; python {platform.python_version()}, torch {torch.__version__}, "
        f"pytorch-lightning {pl.__version__}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["cyclegan", "pix2pix"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512], help="image sizes for every model")
    parser.add_argument("--steps", type=int, default=2, help="timed iterations per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations before them")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "SIZE", "CHECKPOINTING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    for size in args.sizes:
        if "pix2pix" in args.models and (size < 32 or size & (size - 1)):
            parser.error(f"pix2pix: --sizes must be powers of two >= 32 (U-Net num_downs = log2(size)), got {size}")
        if size % 4:
            parser.error(f"--sizes must be multiples of 4 (the ResNet generators' two downsamplings), got {size}")
    return args


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        model, size, checkpointing = args.child
        with tempfile.TemporaryDirectory() as tmp:
            args.work = Path(tmp)
            quiet(args.work)
            result = measure(model, int(size), checkpointing == "1", args)
        print(RESULT + json.dumps(result), flush=True)
        return
    results = []
    for model in args.models:
        for size in args.sizes:
            for checkpointing in (False, True):
                start = time.perf_counter()
                results.append(run_child(model, size, checkpointing, args))
                print(f"{model} {size} px, checkpointing {'on' if checkpointing else 'off'}: "
                      f"{time.perf_counter() - start:.0f} s", file=sys.stderr)  # fmt: skip
    options = {k: v for k, v in vars(args).items() if k not in ("out", "child")}
    report = {"machine": machine(args), "command": " ".join(["python", *sys.argv]), "options": options}
    report["results"] = results
    print(markdown_table(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
