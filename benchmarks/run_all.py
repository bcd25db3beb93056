"""Every benchmark of this folder in one run, then the results tables (`RESULTS.md`) from their JSON files.

    python benchmarks/run_all.py [--out-dir benchmarks/results] [--device cpu|cuda] [--only NAME ...] [--report-only]

The suite (`SUITE`) names each measurement, its script and its arguments; each writes `<out-dir>/<name>.json`, and
`<out-dir>/RESULTS.md` is rendered from all of them, so the tables in benchmarks/README.md are what this command
printed. Steps and repeats are set per measurement so that the whole suite takes about 80 minutes on a 2-core CPU:
5 rounds of 10 timed iterations where an iteration takes under 4 s (CycleGAN at 128 px, the acceptance
configuration, with and without the speed options, among them), fewer for the slow ones. `--only` reruns some of
them (the report still covers every JSON file present); `--report-only` renders the tables from the JSON files
already there.
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OPTIMIZED = ["--adam", "fused", "--precision", "bf16-mixed"]  # what helps on CPUs with bf16 support (see README)
MODELS = ["cyclegan", "pix2pix", "dcgan", "cut", "fastcut", "progan"]
TINY = ["--models", *MODELS, *"--sizes 32 --ngf 4 --ndf 4 --n-blocks 1 --batch-size 4 --threads 1".split()]
PROBE = ["--models", "cyclegan", "--sizes", "128", "--steps", "4", "--warmup", "2", "--repeats", "3"]


def budget(steps: int, warmup: int, repeats: int) -> list[str]:
    return ["--steps", str(steps), "--warmup", str(warmup), "--repeats", str(repeats)]


SUITE: dict[str, tuple[str, list[str]]] = {
    # (a) framework overhead at 64, 128 (the acceptance configuration: 5 rounds of 10 timed iterations) and 256 px
    "cyclegan_64": ("train_speed", ["--models", "cyclegan", "--sizes", "64", *budget(10, 3, 5)]),
    "cyclegan_128": ("train_speed", ["--models", "cyclegan", "--sizes", "128", *budget(10, 3, 5)]),
    "cyclegan_256": ("train_speed", ["--models", "cyclegan", "--sizes", "256", *budget(2, 1, 3)]),  # ~15 s/it on CPU
    # what the framework adds per iteration: tiny networks (ngf/ndf 4, 1 residual block) at 32 px, where the
    # networks take milliseconds and everything else (trainer, hooks, logging, optimizer wrappers) is visible
    # (batch 4, one thread: the least noise; 7 paired rounds of 150 iterations, then one profiled round per side)
    # what lit_gan adds per iteration, every Lightning iteration paired with a plain one right after it
    "overhead_tiny": ("train_speed", [*TINY, *budget(150, 10, 7), "--interleave", "--profile", "--lightning-side"]),
    "overhead_tiny_log10": (
        "train_speed",
        [*TINY, *budget(150, 10, 7), "--interleave", "--profile", "--lightning-side", "--log-every-n-steps", "10"],
    ),
    # the run's journal (lit_gan.journal): its write per logged step, timed on the lit_gan side of the same interleaved
    # rounds at every-step logging, its worst case (two models: a few minutes; overhead_tiny times it for all six)
    "journal_tiny": (
        "train_speed",
        ["--models", "cyclegan", "cut", *TINY[len(MODELS) + 1 :], *budget(150, 10, 7), "--interleave"],
    ),
    # (b) pix2pix and DCGAN (batch 128)
    "pix2pix_64_128": ("train_speed", ["--models", "pix2pix", "--sizes", "64", "128", *budget(10, 3, 5)]),
    "pix2pix_256": ("train_speed", ["--models", "pix2pix", "--sizes", "256", *budget(3, 1, 3)]),
    "dcgan_32": ("train_speed", ["--models", "dcgan", "--sizes", "32", *budget(5, 2, 3)]),
    "dcgan_64": ("train_speed", ["--models", "dcgan", "--sizes", "64", *budget(3, 1, 3)]),
    # the speed options at 128 px: those that help here together (5 rounds), then each one alone (short probes)
    "cyclegan_128_optimized": (
        "train_speed",
        ["--models", "cyclegan", "--sizes", "128", *OPTIMIZED, *budget(10, 3, 5)],
    ),
    "probe_fused_adam": ("train_speed", [*PROBE, "--adam", "fused"]),
    "probe_bf16": ("train_speed", [*PROBE, "--precision", "bf16-mixed"]),
    "probe_channels_last": ("train_speed", [*PROBE, "--channels-last"]),
    "probe_bf16_channels_last": ("train_speed", [*PROBE, "--precision", "bf16-mixed", "--channels-last"]),
    "probe_compile": ("train_speed", [*PROBE, "--compile"]),
    "adam_impl": ("adam_impl", ["--repeats", "5", "--steps", "10"]),  # the optimizer update alone
    # (c) FID evaluation against torch-fidelity
    "fid_eval": ("fid_eval", []),
    # (d) the quickstart's wall time, peak memory and evaluations, and the CycleGAN quickstart's, one after the other
    "quickstart": ("quickstart", ["--config", "configs/quickstart.yaml", "configs/quickstart_cyclegan.yaml"]),
    # data loading (decode, items, workers) against the training step
    "data_loading": ("data_loading", []),
    # activation checkpointing (speed.checkpoint_activations): peak memory and s/it with and without it, at 256 and
    # 512 px, each configuration in a fresh process (1 warm-up + 2 timed iterations: ~1 min/it at 512 px on a CPU)
    "activation_memory": ("activation_memory", ["--models", "cyclegan", "pix2pix", "--sizes", "256", "512"]),
}
DEVICE_SCRIPTS = {"train_speed", "data_loading", "adam_impl", "activation_memory"}  # take --device


def run(names: list[str], out_dir: Path, device: str) -> None:
    for name in names:
        script, extra = SUITE[name]
        command = [sys.executable, str(HERE / f"{script}.py"), *extra, "--out", str(out_dir / f"{name}.json")]
        if script in DEVICE_SCRIPTS:
            command += ["--device", device]
        print(f"\n## {name}: python {' '.join(command[1:])}\n", flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=HERE.parent)
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)


# -- the report --------------------------------------------------------------------------------------------------------


def options_text(options: dict) -> str:
    parts = []
    if options.get("adam", "default") != "default":
        parts.append(f"{options['adam']} Adam")
    if options.get("precision", "32-true") != "32-true":
        parts.append(options["precision"])
    if options.get("channels_last"):
        parts.append("channels_last")
    if options.get("compile"):
        parts.append("compile")
    return ", ".join(parts) or "none"


def logging_text(options: dict) -> str:
    every = options.get("log_every_n_steps", 1)
    return "every step" if every == 1 else f"every {every} steps"


def median_range(values: list[float] | None) -> str:
    """Per-round differences in ms per iteration as "median [min to max]"; "-" when the JSON has none."""
    if not values:
        return "-"
    return f"{statistics.median(values):+.2f} [{min(values):+.2f} to {max(values):+.2f}]"


def extra_ms(result: dict) -> str:
    """Milliseconds per iteration lit_gan takes beyond the plain loop: each round's 1/lit_gan - 1/plain (paired, like
    the ratios; computed from the rates, which every result has)."""
    return median_range([1e3 / lit - 1e3 / plain for lit, plain in zip(result["lit_gan_its"], result["plain_its"])])


def cpu_ms(result: dict) -> str:
    """Training-thread CPU time per iteration, lit_gan - plain, per round (`time.thread_time`, which time spent
    waiting for a core does not inflate)."""
    return median_range(result.get("added_cpu_ms"))


def lightning_ms(result: dict) -> str:
    """Milliseconds per iteration a bare manual-optimization LightningModule running the plain loop's iteration adds
    to the plain loop, per round (`train_speed --lightning-side`): Lightning's own share of lit_gan's figure."""
    return median_range(result.get("lightning_added_ms"))


def profiled_ms(result: dict) -> str:
    """Host time per iteration outside torch's operators under cProfile, lit_gan - plain (`train_speed --profile`)."""
    profiled = result.get("profiled")
    if not profiled:
        return "-"
    lit, plain = profiled["lit_gan"]["host_ms"], profiled["plain"]["host_ms"]
    text = f"{profiled['added']['host_ms']:+.2f} ({lit:.1f} vs {plain:.1f})"
    if "lightning_added" in profiled:
        text += f"; bare Lightning {profiled['lightning_added']['host_ms']:+.2f}"
    return text


def python_calls(result: dict) -> str:
    """Python function calls per iteration that lit_gan and a bare LightningModule make beyond the plain loop (cProfile
    counts them exactly: the one figure here that the machine's noise does not move)."""
    profiled = result.get("profiled")
    if not profiled:
        return "-"
    text = f"+{profiled['added']['calls']:.0f}"
    if "lightning_added" in profiled:
        text += f" (Lightning alone +{profiled['lightning_added']['calls']:.0f})"
    return text


def training_table(reports: dict[str, dict]) -> list[str]:
    from train_speed import cell  # this folder

    rows = [
        "| measurement | model | size | batch | networks | speed options (lit_gan side) | logging | "
        "rounds x timed its | lit_gan it/s | plain it/s | lit_gan / plain | ms per it, lit_gan - plain | "
        "thread CPU ms per it, lit_gan - plain | of which Lightning's (bare module - plain, ms per it) | "
        "host ms per it outside torch ops (cProfile), lit_gan - plain | Python calls per it, lit_gan - plain | "
        "weight diff. |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, report in reports.items():
        options = report["options"]
        for r in report["results"]:
            rows.append(
                f"| {name} | {r['model']} | {r['size']} | {r['batch_size']} | {r['networks']} | "
                f"{options_text(options)} | {logging_text(options)} | {options['repeats']} x {options['steps']} | "
                f"{cell(r['lit_gan'])} | "
                f"{cell(r['plain'])} | **{cell(r['ratio_summary'], '.3f')}** | {extra_ms(r)} | {cpu_ms(r)} | "
                f"{lightning_ms(r)} | {profiled_ms(r)} | {python_calls(r)} | "
                f"{r['max_weight_difference']:.1g} |"
            )
    return rows


def journal_table(reports: dict[str, dict]) -> list[str]:
    """The run's journal (`lit_gan.journal`), on the lit_gan side of the measurements that timed it: microseconds per
    line (one line per logged step), and its share of lit_gan's time per iteration."""
    rows = []
    for name, report in reports.items():
        every = report["options"].get("log_every_n_steps", 1)
        for r in report["results"]:
            if not r.get("journal_us"):
                continue
            us = statistics.median(r["journal_us"])
            share = [j / every / (1e6 / lit) for j, lit in zip(r["journal_us"], r["lit_gan_its"])]
            rows.append(
                f"| {name} | {r['model']} | {logging_text(report['options'])} | {us:.1f} "
                f"[{min(r['journal_us']):.1f}-{max(r['journal_us']):.1f}] | {1e3 / r['lit_gan']['median']:.1f} | "
                f"{100 * statistics.median(share):.2f}% [{100 * min(share):.2f}-{100 * max(share):.2f}%] |"
            )
    if not rows:
        return []
    header = [
        "## The run's journal: its cost per logged step",
        "",
        "Timed on the lit_gan side of the same interleaved rounds (every journal line's write and flush, summed; "
        "median [min-max] over rounds). The plain loop and bare Lightning keep no journal, so their difference above "
        "includes it.",
        "",
        "| measurement | model | logging | journal us per logged step | lit_gan ms per it | share of lit_gan's "
        "time per iteration |",
        "|---|---|---|---|---|---|",
    ]
    return [*header, *rows, ""]


def render(out_dir: Path) -> str:
    reports = {path.stem: json.loads(path.read_text()) for path in sorted(out_dir.glob("*.json"))}
    training = {name: reports[name] for name in SUITE if name in reports and SUITE[name][0] == "train_speed"}
    lines = ["# Benchmark results", "", "Written by `python benchmarks/run_all.py`; every figure below is in the JSON "
             "file of its measurement, beside this file.", ""]  # fmt: skip
    if training:
        machine = next(iter(training.values()))["machine"]
        lines += [
            f"Machine: {machine['cpu']}, {machine['cpu_count']} cores, {machine['torch_threads']} torch threads, "
            f"device {machine['device']}; {machine['versions']}.",
            "",
            "## Training iterations per second: lit_gan against a plain PyTorch loop",
            "",
            "Median [min-max] over paired rounds. Without speed options both sides compute the same thing (weight "
            "diff. 0); with them only the lit_gan side uses them, against the plain float32 loop.",
            "",
            *training_table(training),
            "",
            *journal_table(training),
        ]
    if "adam_impl" in reports:
        from adam_impl import markdown_table as adam_table  # this folder

        lines += ["## Adam's implementations (the update alone)", "", adam_table(reports["adam_impl"]), ""]
    if "fid_eval" in reports:
        r = reports["fid_eval"]
        all_ours, all_tf = r["ours_images_per_s_all"], r["torch_fidelity_images_per_s_all"]
        lines += [
            "## FID/KID evaluation throughput: lit_gan's metrics callback against torch-fidelity",
            "",
            f"{r['images_per_evaluation']} images per evaluation, {r['repeats']} repeats; {r['machine']}.",
            "",
            "| | lit_gan | torch-fidelity | lit_gan / torch-fidelity |",
            "|---|---|---|---|",
            f"| images/s (median [min-max]) | {r['ours_images_per_s']:.2f} [{min(all_ours):.2f}-{max(all_ours):.2f}]"
            f" | {r['torch_fidelity_images_per_s']:.2f} [{min(all_tf):.2f}-{max(all_tf):.2f}] | **{r['ratio']:.3f}** |",
            f"| FID | {r['fid_ours']:.4f} | {r['fid_torch_fidelity']:.4f} | |",
            f"| KID | {r['kid_ours']:.6f} | {r['kid_torch_fidelity']:.6f} | |",
            f"| second evaluation, real features cached | {r['cached_second_evaluation_s']:.1f} s, "
            f"{r['cached_second_evaluation_encoded']} images encoded | | |",
            "",
            "| at equal set sizes (50 vs 50) | FID | KID |",
            "|---|---|---|",
            f"| source (first 50) vs target (last 50): two domains | {r['fid_source_first50_vs_target_last50']:.1f} | "
            f"{r['kid_source_first50_vs_target_last50']:.4f} |",
            f"| target (first 50) vs target (last 50): one domain | {r['fid_target_first50_vs_target_last50']:.1f} | "
            f"{r['kid_target_first50_vs_target_last50']:.4f} |",
            "",
        ]
    if "quickstart" in reports:
        from quickstart import evaluation_table  # this folder
        from quickstart import markdown_table as quickstart_table

        runs = reports["quickstart"]  # one config's results, or a list of them (run one after the other)
        lines += ["## Quickstart cost and evaluations", ""]
        for results in runs if isinstance(runs, list) else [runs]:
            lines += [quickstart_table(results), evaluation_table(results), ""]
    if "data_loading" in reports:
        from data_loading import markdown_table  # this folder

        lines += ["## Data loading against the training step", "", markdown_table(reports["data_loading"]), ""]
    if "activation_memory" in reports:
        from activation_memory import markdown_table as memory_table  # this folder

        lines += [
            "## Activation checkpointing: peak memory and time per iteration",
            "",
            memory_table(reports["activation_memory"]),
            "",
        ]
    lines += [f"Rendered with python {platform.python_version()}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=HERE / "results", help="where the JSON files go")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="for the training measurements")
    parser.add_argument("--only", nargs="+", choices=list(SUITE), help="run these measurements only")
    parser.add_argument("--report-only", action="store_true", help="render RESULTS.md from the JSON files there")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        run(args.only or list(SUITE), args.out_dir, args.device)
    text = render(args.out_dir)
    target = args.out_dir / "RESULTS.md"
    tmp = target.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(target)
    print(text)


if __name__ == "__main__":
    main()
