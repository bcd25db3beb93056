"""Training speed: lit_gan's LightningModules under `pl.Trainer` against plain PyTorch loops, as paired ratios.

For each model (CycleGAN, pix2pix, DCGAN) and image size, every round builds a fresh LightningModule from the
networks and hyperparameters of the model's shipped config (configs/<model>.yaml) and times two sides on the same
in-memory batches of fixed random images:

- lit_gan: `Trainer.fit` of the module with what a user run has that matters for speed: every loss term and both
  learning rates logged at every step (`log_every_n_steps` 1) to a W&B offline run (`--logger csv`: Lightning's
  CSVLogger) and the divergence guard; no progress bar, checkpoints, sample grids or FID (pure training).
- plain: a hand-written loop over deep copies of the module's networks (same architecture and initial weights), the
  same `lit_gan.losses` GAN loss, L1 terms and lambdas, Adam settings, image pools, `requires_grad` freezing and
  order of the G and D steps; at the same steps it reads every loss term back with `.item()`, checks it is finite
  and writes the same metrics to a logger of the same class, as a user's loop that logs would.

Both sides iterate a `DataLoader` (batch size of the config, no workers) over the same tensors. The time of
`--steps` iterations after `--warmup` is taken between the starts of two iterations, so every timed iteration
includes its data fetch, host-to-device copy, optimizer steps and logging (CUDA synchronised at both marks). The
two sides alternate, and which goes first alternates by round, so drift on a shared machine hits both alike; each
round's ratio (lit_gan it/s / plain it/s) is paired. Reported: median [min-max] over `--repeats` rounds.

`--interleave` pairs closer, for the milliseconds lit_gan adds per iteration: within each round, every iteration of
the Lightning side is followed by one iteration of the plain loop in the same process (a callback runs it, on the
loop's own networks, data and random-number stream, so each side computes what it computes alone; the weights are
still compared). Each side's time is the sum of its own iterations, so a machine whose speed drifts during a round
(on the shared 2-core CPU here, 1.7x within a few minutes) slows both alike.

    python benchmarks/train_speed.py [--models M ...] [--sizes S ...] [--steps N] [--warmup W] [--repeats R]
        [--batch-size B] [--device cpu|cuda] [--threads T] [--logger wandb|csv] [--interleave] [--out FILE]
        [--adam IMPL] [--channels-last] [--compile] [--precision P]   (speed options, on the lit_gan side only)
"""

import argparse
import copy
import cProfile
import gc
import importlib
import json
import logging
import math
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml
from plain_loops import PLAIN_LOOPS, InLightning, PlainLoop  # this folder (the script's directory is on sys.path)
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import CSVLogger, Logger
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lit_gan.callbacks import DivergenceGuard, SpeedOptions
from lit_gan.callbacks.speed import ADAM_OPTIONS
from lit_gan.loggers import WandbLogger

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_SIZES = {
    "cyclegan": [64, 128, 256], "pix2pix": [64, 128, 256], "dcgan": [32, 64], "cut": [64, 128, 256],
    "fastcut": [64, 128, 256], "progan": [32, 64],
}  # fmt: skip
DOMAINS = {"cyclegan": ("A", "B"), "pix2pix": ("A", "B"), "dcgan": ("A",), "cut": ("A", "B"), "fastcut": ("A", "B")}
DOMAINS["progan"] = ("A",)
DISTINCT_IMAGES = 256  # distinct random images per domain; longer runs cycle over them


# -- the model, as its shipped config builds it ---------------------------------------------------------------------


def instantiate(spec: dict) -> object:
    """The object a config's {class_path, init_args} describes."""
    module, _, name = spec["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**spec.get("init_args", {}))


def network_args(model: str, size: int, args: argparse.Namespace) -> tuple[dict, dict]:
    """Overrides of the config's generator and discriminator init args: those the image size fixes, and the
    scaling flags (--ngf, --ndf, --n-blocks) when given."""
    g, d = {}, {}
    if model == "pix2pix":
        if size < 32 or size & (size - 1):
            raise SystemExit(f"pix2pix: --sizes must be powers of two >= 32 (U-Net num_downs = log2(size)), got {size}")
        g["num_downs"] = size.bit_length() - 1  # unet_256 at 256 px, unet_128 at 128 px, as the reference
    if model in ("dcgan", "progan"):
        g["image_size"] = d["image_size"] = size
    if model in ("cyclegan", "cut", "fastcut") and size % 4:
        raise SystemExit(f"{model}: --sizes must be multiples of 4, got {size}")
    if model == "progan":  # no ngf/ndf: --ngf sets the feature maps of every resolution (fmap_max, fmap_base 8x)
        if args.ngf is not None:
            g.update(fmap_max=args.ngf, fmap_base=8 * args.ngf, nz=args.ngf)
            d.update(fmap_max=args.ngf, fmap_base=8 * args.ngf)
        return g, d
    if args.ngf is not None:
        g["ngf"] = args.ngf
    if args.ndf is not None:
        d["ndf"] = args.ndf
    if args.n_blocks is not None and model in ("cyclegan", "cut", "fastcut"):
        g["n_blocks"] = args.n_blocks
    return g, d


def model_args(model: str, size: int, args: argparse.Namespace) -> dict:
    """Overrides of the model's own init args: ProGAN trains one phase at the benchmark's size (start_resolution =
    image size: no growth, no fade-in), and CUT's PatchNCE layers must exist in a generator of --n-blocks blocks."""
    if model == "progan":
        return {"start_resolution": size}
    if model in ("cut", "fastcut") and args.n_blocks is not None and args.n_blocks < 5:  # a tiny generator ...
        sampler = {"class_path": "lit_gan.networks.patch_sampler.PatchSampler", "init_args": {"channels": 32}}
        layers = [0, 4, 8, 12][: 3 + min(1, args.n_blocks)]  # 12: the first residual block
        return {"nce_layers": layers, "num_patches": 64, "sampler": sampler}  # ... and a tiny patch sampler
    return {}


def model_config(model: str, size: int, args: argparse.Namespace) -> tuple[dict, int]:
    """configs/<model>.yaml's `model` section (or the preset it names) with the size's overrides applied, and its
    data batch size."""
    config = yaml.safe_load((CONFIGS / f"{model}.yaml").read_text())
    spec = copy.deepcopy(config["model"])
    if isinstance(spec, str):  # a model preset, e.g. models/cyclegan.yaml, relative to the config
        spec = yaml.safe_load((CONFIGS / spec).read_text())
    for key, overrides in zip(("generator", "discriminator"), network_args(model, size, args)):
        spec["init_args"][key].setdefault("init_args", {}).update(overrides)
    spec["init_args"].update(model_args(model, size, args))
    return spec, config["data"]["batch_size"]


def build_module(spec: dict, seed: int) -> pl.LightningModule:
    """The LightningModule of `spec`, built after `seed_everything(seed)` as the CLI does (`seed_everything: 0`)."""
    pl.seed_everything(seed, verbose=False)
    init = dict(spec["init_args"])
    for key in ("generator", "discriminator", "sampler"):  # built first, then copied and initialised by the module
        if key in init:
            init[key] = instantiate(init[key])
    return instantiate({"class_path": spec["class_path"], "init_args": init})


def parameter_counts(module: nn.Module) -> str:
    """'G 22.8M, D 5.5M': parameters of all generators and all discriminators."""
    counts = {
        key: sum(p.numel() for p in nets.parameters())
        for key, nets in (("G", module.generators), ("D", module.discriminators))
    }
    return ", ".join(f"{key} {n / 1e6:.1f}M" for key, n in counts.items())


# -- data ------------------------------------------------------------------------------------------------------------


class FixedImages(Dataset):
    """`length` samples {domain: (C, S, S)} cycling over fixed random images in [-1, 1], one set per domain."""

    def __init__(self, domains: tuple[str, ...], size: int, length: int, seed: int = 0) -> None:
        rng = torch.Generator().manual_seed(seed)
        n = min(length, DISTINCT_IMAGES)
        self.images = {d: torch.rand(n, 3, size, size, generator=rng) * 2 - 1 for d in domains}  # (n, 3, S, S)
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {d: images[index % len(images)] for d, images in self.images.items()}


# -- timing ----------------------------------------------------------------------------------------------------------


def clock(device: str) -> tuple[float, float]:
    """(perf_counter, thread_time) now, with the device's queued work finished first."""
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter(), time.thread_time()


class StepMarks:
    """perf_counter() at the start of iteration `first` and of iteration `first + steps`: `steps` whole iterations.
    With a `profiler` (cProfile), it profiles exactly those iterations."""

    def __init__(self, first: int, steps: int, device: str, profiler: cProfile.Profile | None = None) -> None:
        self.first, self.steps, self.device, self.profiler = first, steps, device, profiler
        self.times: dict[int, float] = {}
        self.cpu_times: dict[int, float] = {}

    def at(self, iteration: int) -> None:
        if iteration in (self.first, self.first + self.steps):
            self.times[iteration], self.cpu_times[iteration] = clock(self.device)
            if self.profiler is not None:
                self.profiler.enable() if iteration == self.first else self.profiler.disable()

    def rate(self) -> float:
        """Iterations per second."""
        return self.steps / (self.times[self.first + self.steps] - self.times[self.first])

    def cpu_ms(self) -> float:
        """CPU time of the training thread per iteration, in ms (`time.thread_time`: while the thread runs, not while
        it waits for a core another process holds; with --threads 1 it is all the host's work of the iteration)."""
        return 1000 * (self.cpu_times[self.first + self.steps] - self.cpu_times[self.first]) / self.steps


def host_time(profiler: cProfile.Profile, steps: int) -> dict[str, float]:
    """Per iteration, from a cProfile of `steps` iterations: Python function calls, and milliseconds of host time
    outside torch's operators (the profiled time minus the time inside torch's C++ entry points: operators, autograd's
    backward, optimizer kernels). cProfile slows Python code down, so these are upper bounds on the Python time; the
    difference between two sides profiled alike is what one adds to the other."""
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (primitive calls, calls, own time, cumulative, ...)}
    total = sum(own for _, _, own, _, _ in stats.values())
    in_torch = sum(own for (file, _, name), (_, _, own, _, _) in stats.items() if file == "~" and "torch" in name)
    calls = sum(n for _, n, _, _, _ in stats.values())
    return {"calls": calls / steps, "host_ms": 1000 * (total - in_torch) / steps, "torch_ms": 1000 * in_torch / steps}


class StepTimer(Callback):
    """Marks the start of training iterations (after the batch is fetched and moved to the device)."""

    def __init__(self, marks: StepMarks) -> None:
        self.marks = marks

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.marks.at(batch_idx)


class Interleaved(Callback):
    """`--interleave`: after every iteration of the trainer's module, one iteration of a plain loop (on its own copies
    of the networks, its own data loader and its own random-number stream, so that it computes what it computes
    alone). Each timed Lightning iteration (from one `on_train_batch_start` to the next, less the time spent in this
    callback) is paired with the plain iteration right after it, so drift on a shared machine hits both sides alike;
    the difference of the two sums is what the module adds, per iteration, with little of the round-to-round noise
    of timing the sides one after the other."""

    def __init__(self, loop: PlainLoop, loader: DataLoader, logger: Logger, args: argparse.Namespace) -> None:
        self.loop, self.logger, self.args = loop, logger, args
        self.timed = range(args.warmup, args.warmup + args.steps)  # the iterations summed, on both sides
        start = self._rng_state()
        self.batches = iter(loader)  # draws the loader's base seed from the global stream, as run_plain's loop does
        self.batch = self._fetch()
        self.rng = self._rng_state()  # the stream the plain side would have drawn from alone ...
        self._set_rng_state(start)  # ... and the module's, from where it would have started alone
        self.lightning = {"wall": 0.0, "cpu": 0.0}
        self.plain = {"wall": 0.0, "cpu": 0.0}
        self.start: tuple[float, float] | None = None
        self.inside = (0.0, 0.0)  # time spent in this callback during the current Lightning iteration

    def _fetch(self) -> dict[str, Tensor] | None:
        batch = next(self.batches, None)  # None after the last: the module's last iteration gets a partner too
        return None if batch is None else {key: value.to(self.args.device) for key, value in batch.items()}

    def _rng_state(self) -> tuple:
        return (torch.get_rng_state(), torch.cuda.get_rng_state() if self.args.device == "cuda" else None)

    def _set_rng_state(self, state: tuple) -> None:
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        now = clock(self.args.device)
        if self.start is not None and batch_idx - 1 in self.timed:
            self.lightning["wall"] += now[0] - self.start[0] - self.inside[0]
            self.lightning["cpu"] += now[1] - self.start[1] - self.inside[1]
        self.start, self.inside = now, (0.0, 0.0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        enter = clock(self.args.device)
        if self.batch is None:
            raise RuntimeError("the plain partner ran out of batches: give both sides loaders of the same length")
        theirs = self._rng_state()
        self._set_rng_state(self.rng)
        begin = clock(self.args.device)
        losses = self.loop.step(self.batch)  # what run_plain times: the step, its logging, the next batch's fetch
        if (batch_idx + 1) % self.args.log_every_n_steps == 0:
            log_step(self.loop, losses, self.logger, batch_idx)
        self.batch = self._fetch()
        end = clock(self.args.device)
        self.rng = self._rng_state()
        self._set_rng_state(theirs)
        if batch_idx in self.timed:
            self.plain["wall"] += end[0] - begin[0]
            self.plain["cpu"] += end[1] - begin[1]
        leave = clock(self.args.device)
        self.inside = (leave[0] - enter[0], leave[1] - enter[1])


# -- the two sides ---------------------------------------------------------------------------------------------------


def make_logger(kind: str, root: Path, name: str, journal: bool = False) -> Logger:
    """The logger of one side: W&B offline (the run's journal only on the lit_gan side, as users run it: plain loops
    and bare Lightning have none) or CSV."""
    if kind == "wandb":
        # a run of its own even while another side's is active (the interleaved rounds log both at once)
        return WandbLogger(
            project="train_speed", save_dir=str(root), name=name, offline=True, journal=journal, reinit="create_new"
        )
    return CSVLogger(save_dir=str(root), name=name)


class JournalClock:
    """Times the journal writes of a lit_gan side's logger (`WandbLogger._append_to_journal`, one line per logged
    step): their summed wall time and count."""

    def __init__(self, logger: Logger) -> None:
        self.seconds, self.lines = 0.0, 0
        if isinstance(logger, WandbLogger) and logger.keep_journal:
            append = logger._append_to_journal

            def timed(*args, **kwargs) -> None:
                start = time.perf_counter()
                append(*args, **kwargs)
                self.seconds += time.perf_counter() - start
                self.lines += 1

            logger._append_to_journal = timed

    def us_per_line(self) -> float | None:
        return 1e6 * self.seconds / self.lines if self.lines else None


Loaders = Callable[[], DataLoader]
"""Makes a fresh DataLoader over the benchmark's fixed images, one per side and round."""


def run_lit(
    module: pl.LightningModule, loaders: Loaders, logger: Logger, args: argparse.Namespace, profiler=None, extra=()
) -> float:
    marks = StepMarks(args.warmup, args.steps, args.device, profiler)
    callbacks = [DivergenceGuard()] if args.divergence_guard else []
    callbacks += list(extra)
    # The speed options, on the lit_gan side only: "--adam default" and no flags compute what the plain loop does.
    callbacks.append(SpeedOptions(channels_last=args.channels_last, compile=args.compile, adam=args.adam))
    trainer = pl.Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu", devices=1, max_steps=args.warmup + args.steps + 1,
        logger=logger, log_every_n_steps=args.log_every_n_steps, callbacks=[*callbacks, StepTimer(marks)],
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=0, default_root_dir=str(args.work), precision=args.precision,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=loaders())
    return marks.rate(), marks.cpu_ms()


def run_in_lightning(
    loop: PlainLoop, loaders: Loaders, logger: Logger, args: argparse.Namespace, profiler=None, extra=()
):
    """The plain loop's iteration inside a bare manual-optimization LightningModule (`InLightning`), under the same
    Trainer settings as the lit_gan side, without lit_gan's callbacks: Lightning's own cost."""
    marks = StepMarks(args.warmup, args.steps, args.device, profiler)
    trainer = pl.Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu", devices=1, max_epochs=1, logger=logger,
        log_every_n_steps=args.log_every_n_steps, callbacks=[*extra, StepTimer(marks)], enable_progress_bar=False,
        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        default_root_dir=str(args.work),
    )  # fmt: skip
    trainer.fit(InLightning(loop), train_dataloaders=loaders())
    return marks.rate(), marks.cpu_ms()


def log_step(loop: PlainLoop, losses: dict[str, Tensor], logger: Logger, step: int) -> None:
    """What a logging loop does: read every term back, stop on a non-finite one, write them with the learning rates
    (the keys lit_gan logs, and the `epoch` Lightning adds) the way Lightning's logger connector does."""
    metrics = {f"train/{name}": value.item() for name, value in losses.items()}
    bad = [name for name, value in metrics.items() if not math.isfinite(value)]
    if bad:
        raise RuntimeError(f"plain loop diverged at step {step}: {bad}")
    lrs = {"train/lr_G": loop.opt_g.param_groups[0]["lr"], "train/lr_D": loop.opt_d.param_groups[0]["lr"]}
    logger.log_metrics({**metrics, **lrs, "epoch": 0}, step=step)
    logger.save()


def run_plain(
    loop: PlainLoop, loaders: Loaders, logger: Logger, args: argparse.Namespace, profiler=None
) -> tuple[float, float]:
    marks = StepMarks(args.warmup, args.steps, args.device, profiler)
    for i, batch in enumerate(loaders()):
        batch = {key: value.to(args.device) for key, value in batch.items()}
        marks.at(i)
        losses = loop.step(batch)
        if (i + 1) % args.log_every_n_steps == 0:
            log_step(loop, losses, logger, i)
    logger.finalize("success")
    return marks.rate(), marks.cpu_ms()


# -- rounds and results ----------------------------------------------------------------------------------------------


def one_round(
    model: str, spec: dict, loaders: Loaders, args: argparse.Namespace, lit_first: bool, profile: bool = False
) -> dict:
    """Both sides once, on a fresh module and fresh copies of its untrained networks: {side: it/s}, and the largest
    difference between the two sides' weights at the end; with `profile`, also {"<side>_profile": `host_time`}."""
    module = build_module(spec, args.seed)
    loop = PLAIN_LOOPS[model](module, args.device)  # copied before the module trains
    bare = PLAIN_LOOPS[model](module, args.device) if args.lightning_side else None
    names = ("lit_gan", "plain", "lightning") if args.lightning_side else ("lit_gan", "plain")
    profilers = {side: cProfile.Profile() if profile else None for side in names}
    sides: dict[str, Callable[[Logger], tuple[float, float]]] = {
        "lit_gan": lambda logger: run_lit(module, loaders, logger, args, profilers["lit_gan"]),
        "plain": lambda logger: run_plain(loop, loaders, logger, args, profilers["plain"]),
        "lightning": lambda logger: run_in_lightning(bare, loaders, logger, args, profilers["lightning"]),
    }
    rates = {}
    order = names if lit_first else tuple(reversed(names))
    for side in order:
        gc.collect()
        torch.manual_seed(args.seed + 1)  # the same noise, dropout and pool draws on both sides
        logger = make_logger(args.logger, args.work, f"{model}-{side}", journal=side == "lit_gan")
        clock = JournalClock(logger)
        rates[side], rates[f"{side}_cpu_ms"] = sides[side](logger)
        if side == "lit_gan":
            rates["journal_us"] = clock.us_per_line()
        if profile:
            rates[f"{side}_profile"] = host_time(profilers[side], args.steps)
    rates["weight_difference"] = loop.max_difference(module)  # the two sides did the same computation
    if bare is not None:
        rates["weight_difference"] = max(rates["weight_difference"], bare.max_difference(module))
    return rates


def interleaved_round(model: str, spec: dict, loaders: Loaders, args: argparse.Namespace) -> dict:
    """`--interleave`: the lit_gan side with a plain loop interleaved iteration by iteration (`Interleaved`), then
    (with --lightning-side) the bare-Lightning side with another. Returns what `one_round` returns, the rates being
    `--steps` over each side's summed iteration times, and the bare-Lightning side's ms per iteration over its own
    plain partner ("lightning_added_ms")."""
    module = build_module(spec, args.seed)
    partner = PLAIN_LOOPS[model](module, args.device)  # copied before the module trains
    bare = PLAIN_LOOPS[model](module, args.device) if args.lightning_side else None
    bare_partner = PLAIN_LOOPS[model](module, args.device) if args.lightning_side else None
    rates: dict[str, float] = {}
    sides = [("lit_gan", partner, lambda logger, extra: run_lit(module, loaders, logger, args, extra=extra))]
    if bare is not None:
        in_lightning = lambda logger, extra: run_in_lightning(bare, loaders, logger, args, extra=extra)  # noqa: E731
        sides.append(("lightning", bare_partner, in_lightning))
    for side, loop, run in sides:
        gc.collect()
        torch.manual_seed(args.seed + 1)  # both start from the stream a side alone starts from
        pairs = Interleaved(loop, loaders(), make_logger(args.logger, args.work, f"{model}-{side}-plain"), args)
        logger = make_logger(args.logger, args.work, f"{model}-{side}", journal=side == "lit_gan")
        clock = JournalClock(logger)
        run(logger, [pairs])
        pairs.logger.finalize("success")
        if side == "lit_gan":
            rates["journal_us"] = clock.us_per_line()
        steps = args.steps
        rates[side], rates[f"{side}_cpu_ms"] = steps / pairs.lightning["wall"], 1000 * pairs.lightning["cpu"] / steps
        if side == "lit_gan":
            rates["plain"], rates["plain_cpu_ms"] = steps / pairs.plain["wall"], 1000 * pairs.plain["cpu"] / steps
        else:  # against its own partner, not the lit_gan side's
            rates["lightning_added_ms"] = 1000 * (pairs.lightning["wall"] - pairs.plain["wall"]) / steps
    rates["weight_difference"] = max(
        loop.max_difference(module) for loop in (partner, bare, bare_partner) if loop is not None
    )  # every side did the same computation
    return rates


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(model: str, size: int, args: argparse.Namespace) -> dict:
    spec, config_batch = model_config(model, size, args)
    batch_size = args.batch_size or config_batch
    iterations = args.warmup + args.steps + 1  # the last one is only started: its start ends the timing
    data = FixedImages(DOMAINS[model], size, batch_size * iterations, seed=args.seed)

    def loaders() -> DataLoader:
        return DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)

    lit, plain, gaps, cpu_added, lightning_ms, journal_us = [], [], [], [], [], []
    for r in range(args.repeats):
        if args.interleave:
            rates = interleaved_round(model, spec, loaders, args)
        else:
            rates = one_round(model, spec, loaders, args, lit_first=r % 2 == 0)
        lit.append(rates["lit_gan"])
        plain.append(rates["plain"])
        gaps.append(rates["weight_difference"])
        cpu_added.append(rates["lit_gan_cpu_ms"] - rates["plain_cpu_ms"])
        if rates.get("journal_us") is not None:  # the run's journal: microseconds per line (per logged step)
            journal_us.append(rates["journal_us"])
        if args.lightning_side:  # ms per iteration Lightning alone adds to the plain loop, this round
            lightning_ms.append(rates.get("lightning_added_ms", 1000 / rates["lightning"] - 1000 / rates["plain"]))
        print(f"{model} {size} px, round {r + 1}/{args.repeats}: lit_gan {rates['lit_gan']:.4g} it/s, plain "
              f"{rates['plain']:.4g} it/s, ratio {rates['lit_gan'] / rates['plain']:.3f}, weights differ by "
              f"{rates['weight_difference']:.1e}; thread CPU ms/it {rates['lit_gan_cpu_ms']:.2f} vs "
              f"{rates['plain_cpu_ms']:.2f}" + (f"; in bare Lightning {rates['lightning']:.4g} it/s"
              if args.lightning_side else ""), file=sys.stderr)  # fmt: skip
    ratios = [a / b for a, b in zip(lit, plain)]
    added_ms = [1000 / a - 1000 / b for a, b in zip(lit, plain)]  # per iteration, lit_gan - plain, each round
    profiled = {}
    if args.profile:  # one more round of each side under cProfile: host time per iteration
        rates = one_round(model, spec, loaders, args, lit_first=True, profile=True)
        profiled = {
            side: rates[f"{side}_profile"] for side in ("lit_gan", "plain", "lightning") if f"{side}_profile" in rates
        }
        profiled["added"] = {k: profiled["lit_gan"][k] - profiled["plain"][k] for k in profiled["plain"]}
        if "lightning" in profiled:
            profiled["lightning_added"] = {
                k: profiled["lightning"][k] - profiled["plain"][k] for k in profiled["plain"]
            }
        print(f"{model} {size} px, profiled: host time outside torch's operators {profiled['lit_gan']['host_ms']:.2f} "
              f"vs {profiled['plain']['host_ms']:.2f} ms per iteration", file=sys.stderr)  # fmt: skip
    return {
        "model": model, "size": size, "batch_size": batch_size,
        "networks": parameter_counts(build_module(spec, args.seed)), "config": spec,
        "lit_gan_its": lit, "plain_its": plain, "ratio": ratios, "max_weight_difference": max(gaps),
        "lit_gan": spread(lit), "plain": spread(plain), "ratio_summary": spread(ratios),
        "added_ms": added_ms, "added_ms_summary": spread(added_ms), "profiled": profiled,
        "added_cpu_ms": cpu_added, "added_cpu_ms_summary": spread(cpu_added),
        "lightning_added_ms": lightning_ms,
        "lightning_added_ms_summary": spread(lightning_ms) if lightning_ms else None,
        "journal_us": journal_us, "journal_us_summary": spread(journal_us) if journal_us else None,
    }  # fmt: skip


def cell(summary: dict[str, float], digits: str = ".3g") -> str:
    return f"{summary['median']:{digits}} [{summary['min']:{digits}}-{summary['max']:{digits}}]"


def markdown_table(results: list[dict]) -> str:
    rows = [
        "| model | size | batch | networks | lit_gan it/s | plain it/s | lit_gan / plain | weight diff. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['model']} | {r['size']} | {r['batch_size']} | {r['networks']} | {cell(r['lit_gan'])} | "
            f"{cell(r['plain'])} | **{cell(r['ratio_summary'], '.3f')}** | {r['max_weight_difference']:.1g} |"
        )
    return "\n".join(rows)


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_info(args: argparse.Namespace) -> dict:
    import wandb

    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "load_average": os.getloadavg(),
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, pytorch-lightning "
        f"{pl.__version__}, wandb {wandb.__version__}",
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(PLAIN_LOOPS), default=list(PLAIN_LOOPS))
    parser.add_argument("--sizes", nargs="+", type=int, help=f"image sizes for every model (default {DEFAULT_SIZES})")
    parser.add_argument("--steps", type=int, default=10, help="timed iterations per side and round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations before them")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; the sides alternate, and so does who starts")
    parser.add_argument("--batch-size", type=int, help="default: the config's data.batch_size")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--logger", choices=["wandb", "csv"], default="wandb", help="wandb: offline, as users run")
    parser.add_argument("--log-every-n-steps", type=int, default=1, help="the CLI's default is 1")
    parser.add_argument(
        "--divergence-guard", action=argparse.BooleanOptionalAction, default=True, help="on in user runs (the CLI)"
    )
    parser.add_argument("--ngf", type=int, help="generator width (default: the config's)")
    parser.add_argument("--ndf", type=int, help="discriminator width (default: the config's)")
    parser.add_argument("--n-blocks", type=int, help="CycleGAN residual blocks (default: the config's, 9)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--profile", action="store_true", help="one more round of each side under cProfile: host time per iteration"
    )
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="pair every Lightning iteration with a plain one run right after it, in the same process (`Interleaved`)",
    )
    parser.add_argument(
        "--lightning-side",
        action="store_true",
        help="a third side: the plain loop inside a bare manual-optimization LightningModule (Lightning's own cost)",
    )
    speed = parser.add_argument_group("lit_gan's speed options (lit_gan side only; the defaults compute as the loop)")
    speed.add_argument("--adam", choices=list(ADAM_OPTIONS), default="default", help="Adam implementation")
    speed.add_argument("--channels-last", action="store_true", help="networks channels-last (NHWC)")
    speed.add_argument("--compile", action="store_true", help="torch.compile the networks")
    speed.add_argument(
        "--precision",
        default="32-true",
        choices=["32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true"],
        help="Lightning's trainer.precision (the loop: float32)",
    )
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 1 or args.repeats < 1:
        parser.error("--steps, --warmup and --repeats must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    return args


def quiet(work: Path) -> None:
    """No Lightning info lines or warnings; W&B offline and silent, its files under `work`."""
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning_fabric").setLevel(logging.ERROR)
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(work))


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        args.work = Path(tmp)
        quiet(args.work)
        for model in args.models:
            for size in args.sizes or DEFAULT_SIZES[model]:
                results.append(measure(model, size, args))
    info = machine_info(args)
    options = {k: v for k, v in vars(args).items() if k not in ("work", "out")}
    report = {"machine": info, "command": " ".join(["python", *sys.argv]), "options": options, "results": results}
    print(markdown_table(results))
    print(f"\n{info['cpu']}, {info['torch_threads']} threads, {info['device']}; {info['versions']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
