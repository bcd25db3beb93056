"""Quickstart cost and quality: wall time, peak memory and the evaluations of `python -m lit_gan fit --config
configs/quickstart.yaml` (and of other configs, one after the other on the same machine, to compare them).

Each run is a subprocess in an empty working directory, as a new user's first run: W&B offline, and fresh caches
(`LIT_GAN_CACHE`: the real images' Inception features are computed, not read from an earlier run). Reported per run:
the wall time of the whole command (start-up, data, training, sample grids, FID/KID, W&B), the seconds spent in
evaluations (`perf/metrics_seconds`), the peak resident memory of the training process (`os.wait4`'s `ru_maxrss`),
when it trains on a GPU `torch.cuda.max_memory_allocated`, and every evaluation's `val/fid` and `val/kid_mean_AtoB`
(read back from the W&B run with `wandb leet inspect --json`). With several `--config`s the runs alternate.
Arguments after `--` are passed to the CLI (e.g. `-- --trainer.max_steps 5` for a smoke test).

    python benchmarks/quickstart.py [--config FILE ...] [--repeats R] [--out FILE] [-- CLI ARGS]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

ROOT = Path(__file__).resolve().parents[1]
GPU_MEMORY_ENV = "QUICKSTART_GPU_MEMORY_FILE"
# `python -m lit_gan ...`, writing the CUDA allocator's peak to a file at exit (read back by this script).
RUN_LIT_GAN = f"""
import atexit, os, runpy, torch

def _peak():
    if torch.cuda.is_initialized():
        with open(os.environ["{GPU_MEMORY_ENV}"], "w") as f:
            f.write(str(torch.cuda.max_memory_allocated()))

atexit.register(_peak)
runpy.run_module("lit_gan", run_name="__main__", alter_sys=True)
"""


def run_once(config: Path, cli_args: list[str], work: Path) -> dict:
    """One `fit` in `work`: {"wall_s", "peak_rss_mib", "gpu_max_allocated_mib"}; raises with the log's tail on
    failure."""
    work.mkdir(parents=True)
    gpu_file = work / "gpu_max_allocated"
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(work),
        "LIT_GAN_CACHE": str(work / "cache"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        GPU_MEMORY_ENV: str(gpu_file),
    }
    command = [sys.executable, "-c", RUN_LIT_GAN, "fit", "--config", str(config), *cli_args]
    log = work / "output.log"
    with log.open("w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage (ru_maxrss in KiB on Linux)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise SystemExit(f"quickstart run failed (exit code {process.returncode}):\n{tail}")
    gpu = int(gpu_file.read_text()) / 2**20 if gpu_file.exists() else None
    evaluations = read_evaluations(work)
    return {
        "wall_s": wall,
        "evaluation_s": sum(e.get("perf/metrics_seconds", 0.0) for e in evaluations),
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "gpu_max_allocated_mib": gpu,
        "evaluations": [{k: v for k, v in e.items() if k in EVALUATION_KEYS} for e in evaluations],
    }


EVALUATION_KEYS = ("trainer/global_step", "val/fid", "val/kid_mean", "val/kid_mean_AtoB", "val/kid_mean_BtoA")


def read_evaluations(work: Path) -> list[dict]:
    """The history rows of the W&B run under `work` that hold FID/KID, in order."""
    runs = sorted(work.rglob("offline-run-*"))
    if not runs:
        return []
    wandb = Path(sys.executable).with_name("wandb")
    out = subprocess.run([str(wandb), "leet", "inspect", "--json", str(runs[-1])], capture_output=True, text=True)
    rows = []
    for line in out.stdout.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        item = record.get("history", {}).get("item", {}) if record.get("type") == "history" else {}
        if "val/fid" in item:
            rows.append(item)
    return rows


def machine() -> str:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {gpu}"


def main() -> None:
    argv = sys.argv[1:]
    cli_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, nargs="+", default=[ROOT / "configs" / "quickstart.yaml"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)

    all_results = []
    with tempfile.TemporaryDirectory() as tmp:
        runs: dict[Path, list[dict]] = {config: [] for config in args.config}
        for i in range(args.repeats):  # alternating configs: a load change on the machine hits them alike
            for c, config in enumerate(args.config):
                runs[config].append(run_once(config.resolve(), cli_args, Path(tmp) / f"config{c}_run{i}"))
    for config, done in runs.items():
        results = summarize(config, cli_args, done, args.repeats)
        all_results.append(results)
        print(markdown_table(results))
        print(evaluation_table(results))
    print(f"\n{all_results[0]['versions']}; {all_results[0]['machine']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        data = all_results[0] if len(all_results) == 1 else all_results
        args.out.write_text(json.dumps(data, indent=2) + "\n")


def summarize(config: Path, cli_args: list[str], runs: list[dict], repeats: int) -> dict:
    return {
        "command": " ".join(["python -m lit_gan fit --config", os.path.relpath(config.resolve(), ROOT), *cli_args]),
        "repeats": repeats,
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "evaluation_s": statistics.median(r["evaluation_s"] for r in runs),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "gpu_max_allocated_mib": runs[0]["gpu_max_allocated_mib"],
        "runs": runs,
        "machine": machine(),
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, "
        f"pytorch-lightning {pl.__version__}",
    }


def evaluation_table(results: dict) -> str:
    """Each evaluation of the first run: step, FID, KID of A -> B (and B -> A)."""
    rows = results["runs"][0]["evaluations"]
    if not rows:
        return ""
    kid = "val/kid_mean_AtoB" if "val/kid_mean_AtoB" in rows[0] else "val/kid_mean"
    lines = [f"\n| step | val/fid | {kid} |", "|---|---|---|"]
    lines += [f"| {r['trainer/global_step']} | {r['val/fid']:.1f} | {r[kid]:.3f} |" for r in rows]
    return "\n".join(lines)


def markdown_table(results: dict) -> str:
    """The command, its wall time (median over the repeats) and evaluation time, peak memory and machine."""
    gpu = results["gpu_max_allocated_mib"]
    evaluation = results.get("evaluation_s")  # not in results written before it was measured
    evaluation = "-" if evaluation is None else f"{evaluation:.0f} s"
    return "\n".join([
        "| command | wall time | of which evaluations | peak RSS | GPU peak allocated | machine |",
        "|---|---|---|---|---|---|",
        f"| `{results['command']}` | {results['wall_s']:.0f} s | {evaluation} | "
        f"{results['peak_rss_mib']:.0f} MiB | "
        f"{'-' if gpu is None else f'{gpu:.0f} MiB'} | {results['machine']} |",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
